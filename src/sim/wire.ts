import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The few pieces of the MySQL/MariaDB client/server protocol the simulator speaks: packet framing,
 * length-encoded values, the v10 handshake with mysql_native_password, OK/ERR/EOF, column
 * definitions and text-protocol rows. Only the server side, only what Regent's client (mysql2) and
 * the `mariadb` command-line client need.
 */

/** Capability flags (CLIENT_*), as the protocol numbers them. */
export const CAP = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  DEPRECATE_EOF: 0x1000000,
} as const;

/**
 * What the simulator offers. Not SSL, compression, session tracking or query attributes: a client
 * only uses what both sides announce, so without them every packet keeps its plain layout.
 */
export const SERVER_CAPABILITIES =
  CAP.LONG_PASSWORD |
  CAP.FOUND_ROWS |
  CAP.LONG_FLAG |
  CAP.CONNECT_WITH_DB |
  CAP.PROTOCOL_41 |
  CAP.TRANSACTIONS |
  CAP.SECURE_CONNECTION |
  CAP.MULTI_STATEMENTS |
  CAP.MULTI_RESULTS |
  CAP.PLUGIN_AUTH |
  CAP.CONNECT_ATTRS |
  CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CAP.DEPRECATE_EOF;

/** SERVER_STATUS_AUTOCOMMIT: the status of every simulated session. */
export const STATUS_AUTOCOMMIT = 0x0002;
/** SERVER_MORE_RESULTS_EXISTS: another result of the same multi-statement query follows. */
export const STATUS_MORE_RESULTS = 0x0008;

export const COM = { QUIT: 0x01, INIT_DB: 0x02, QUERY: 0x03, PING: 0x0e } as const;

/** Column types used in the answers (MYSQL_TYPE_*). */
export const TYPE = { LONG: 0x03, DOUBLE: 0x05, LONGLONG: 0x08, VAR_STRING: 0xfd } as const;

/** Column flags (NOT_NULL, UNSIGNED, BINARY, NUM...). */
export const FLAG = { NOT_NULL: 0x1, UNSIGNED: 0x20, BINARY: 0x80, NO_DEFAULT_VALUE: 0x1000, NUM: 0x8000 } as const;

export const CHARSET = { UTF8_GENERAL_CI: 33, UTF8MB4_GENERAL_CI: 45, BINARY: 63 } as const;

/**
 * An append-only byte builder that writes packets with their 4-byte header. One is reused for a
 * whole response (many packets), and `take()` copies the result out once, so a response costs
 * one allocation however many packets it holds.
 */
export class PacketWriter {
  #buf: Buffer;
  #len = 0;
  #packetStart = -1;

  constructor(initialSize = 16384) {
    this.#buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.#len;
  }

  reset(): this {
    this.#len = 0;
    this.#packetStart = -1;
    return this;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  /** Starts a packet with sequence id `seq`; its length is filled in by `end()`. */
  begin(seq: number): this {
    this.#room(4);
    this.#packetStart = this.#len;
    this.#buf[this.#len + 3] = seq & 0xff;
    this.#len += 4;
    return this;
  }

  end(): this {
    const size = this.#len - this.#packetStart - 4;
    // Payloads are far below 16 MiB here; a larger one would need splitting into several packets.
    if (size >= 0xffffff) throw new Error('packet too large for the simulator');
    this.#buf.writeUIntLE(size, this.#packetStart, 3);
    this.#packetStart = -1;
    return this;
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v;
    return this;
  }

  u16(v: number): this {
    this.#room(2);
    this.#buf.writeUInt16LE(v, this.#len);
    this.#len += 2;
    return this;
  }

  u32(v: number): this {
    this.#room(4);
    this.#buf.writeUInt32LE(v >>> 0, this.#len);
    this.#len += 4;
    return this;
  }

  zeros(n: number): this {
    this.#room(n);
    this.#buf.fill(0, this.#len, this.#len + n);
    this.#len += n;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** A length-encoded integer. */
  lenenc(n: number): this {
    if (n < 251) return this.u8(n);
    if (n < 0x10000) return this.u8(0xfc).u16(n);
    if (n < 0x1000000) {
      this.#room(4);
      this.#buf[this.#len] = 0xfd;
      this.#buf.writeUIntLE(n, this.#len + 1, 3);
      this.#len += 4;
      return this;
    }
    this.#room(9);
    this.#buf[this.#len] = 0xfe;
    this.#buf.writeBigUInt64LE(BigInt(n), this.#len + 1);
    this.#len += 9;
    return this;
  }

  /** A length-encoded string (every value the simulator sends is ASCII or UTF-8). */
  lenencString(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.lenenc(n);
    this.#room(n);
    this.#buf.write(s, this.#len, n, 'utf8');
    this.#len += n;
    return this;
  }

  /** A row value in the text protocol: the string, or 0xFB for NULL. */
  value(v: string | null): this {
    return v === null ? this.u8(0xfb) : this.lenencString(v);
  }

  nulString(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.#room(n + 1);
    this.#buf.write(s, this.#len, n, 'utf8');
    this.#buf[this.#len + n] = 0;
    this.#len += n + 1;
    return this;
  }

  setByte(at: number, v: number): this {
    this.#buf[at] = v;
    return this;
  }

  /** Copies what was written into a buffer of its own (the writer is reused for the next response). */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.#len);
    this.#buf.copy(out, 0, 0, this.#len);
    this.reset();
    return out;
  }
}

export function okPacket(w: PacketWriter, seq: number, opts: { affectedRows?: number; header?: 0x00 | 0xfe; status?: number } = {}): PacketWriter {
  return w
    .begin(seq)
    .u8(opts.header ?? 0x00)
    .lenenc(opts.affectedRows ?? 0)
    .lenenc(0)
    .u16(opts.status ?? STATUS_AUTOCOMMIT)
    .u16(0)
    .end();
}

export function errPacket(w: PacketWriter, seq: number, errno: number, sqlState: string, message: string): PacketWriter {
  w.begin(seq).u8(0xff).u16(errno).u8(0x23);
  w.bytes(Buffer.from(sqlState.padEnd(5, '0').slice(0, 5), 'latin1'));
  w.bytes(Buffer.from(message.slice(0, 500), 'utf8'));
  return w.end();
}

export function eofPacket(w: PacketWriter, seq: number, status = STATUS_AUTOCOMMIT): PacketWriter {
  return w.begin(seq).u8(0xfe).u16(0).u16(status).end();
}

export interface ColumnDef {
  name: string;
  type: number;
  length: number;
  flags?: number;
  /** MariaDB sends 39 for computed strings (SHOW ... STATUS, @@vars), 0 for table columns and integers. */
  decimals?: number;
  charset?: number;
  schema?: string;
  table?: string;
  orgTable?: string;
  orgName?: string;
}

function columnDefinition(w: PacketWriter, seq: number, c: ColumnDef): void {
  const isString = c.type === TYPE.VAR_STRING;
  w.begin(seq)
    .lenencString('def')
    .lenencString(c.schema ?? '')
    .lenencString(c.table ?? '')
    .lenencString(c.orgTable ?? '')
    .lenencString(c.name)
    .lenencString(c.orgName ?? '')
    .u8(0x0c)
    .u16(c.charset ?? (isString ? CHARSET.UTF8_GENERAL_CI : CHARSET.BINARY))
    .u32(c.length)
    .u8(c.type)
    .u16(c.flags ?? (isString ? FLAG.NOT_NULL : FLAG.NOT_NULL | FLAG.BINARY | FLAG.NUM))
    .u8(c.decimals ?? (isString ? 0x27 : 0))
    .u16(0)
    .end();
}

/**
 * The fixed part of a result set (column count, column definitions and, without DEPRECATE_EOF,
 * the EOF after them), built once per statement shape with sequence ids from 1. A result set
 * further into a multi-statement reply gets its sequence ids patched while copied.
 */
export class ResultHeader {
  readonly columns: readonly ColumnDef[];
  /** Indexed by "client asked for DEPRECATE_EOF" (0 no, 1 yes): the bytes and where each packet starts. */
  readonly #variants: [{ bytes: Buffer; starts: number[] }, { bytes: Buffer; starts: number[] }];

  constructor(columns: readonly ColumnDef[]) {
    this.columns = columns;
    const build = (deprecateEof: boolean) => {
      const w = new PacketWriter(columns.length * 80 + 64);
      const starts: number[] = [];
      let seq = 1;
      starts.push(w.length);
      w.begin(seq++).lenenc(columns.length).end();
      for (const c of columns) {
        starts.push(w.length);
        columnDefinition(w, seq++, c);
      }
      if (!deprecateEof) {
        starts.push(w.length);
        eofPacket(w, seq++);
      }
      return { bytes: w.take(), starts };
    };
    this.#variants = [build(false), build(true)];
  }

  /** Writes the header starting at sequence id `seq`; returns the sequence id of the first row. */
  write(w: PacketWriter, seq: number, deprecateEof: boolean): number {
    const v = this.#variants[deprecateEof ? 1 : 0];
    const base = w.length;
    w.bytes(v.bytes);
    if (seq !== 1) for (let i = 0; i < v.starts.length; i++) w.setByte(base + v.starts[i]! + 3, (seq + i) & 0xff);
    return seq + v.starts.length;
  }
}

/**
 * One reply to one command, possibly several results (a multi-statement query): keeps the
 * sequence id running across them and marks every result but the last with MORE_RESULTS.
 */
export class Reply {
  seq = 1;
  deprecateEof = false;
  /** More results follow the one being written. */
  more = false;
  /** An ERR was written (a multi-statement query stops there). */
  failed = false;

  constructor(readonly w: PacketWriter) {}

  start(deprecateEof: boolean): this {
    this.seq = 1;
    this.deprecateEof = deprecateEof;
    this.more = false;
    this.failed = false;
    return this;
  }

  get status(): number {
    return STATUS_AUTOCOMMIT | (this.more ? STATUS_MORE_RESULTS : 0);
  }

  ok(affectedRows = 0): void {
    okPacket(this.w, this.seq++, { affectedRows, status: this.status });
  }

  err(errno: number, sqlState: string, message: string): void {
    this.failed = true;
    errPacket(this.w, this.seq++, errno, sqlState, message);
  }

  /** The header of a result set; rows follow with `row()`, then `endRows()`. */
  beginRows(header: ResultHeader): void {
    this.seq = header.write(this.w, this.seq, this.deprecateEof);
  }

  /** Starts a row packet; the caller writes its values and calls `w.end()`. */
  row(): PacketWriter {
    return this.w.begin(this.seq++);
  }

  endRows(): void {
    if (this.deprecateEof) okPacket(this.w, this.seq++, { header: 0xfe, status: this.status });
    else eofPacket(this.w, this.seq++, this.status);
  }

  resultSet(header: ResultHeader, rows: Iterable<readonly (string | null)[]>): void {
    this.beginRows(header);
    for (const r of rows) {
      const w = this.row();
      for (const v of r) w.value(v);
      w.end();
    }
    this.endRows();
  }
}

/** Scramble bytes kept printable: some clients treat the scramble as a C string. */
export function newScramble(random: Buffer): Buffer {
  const out = Buffer.allocUnsafe(20);
  for (let i = 0; i < 20; i++) out[i] = 0x21 + ((random[i] ?? 0) % 94);
  return out;
}

export const SERVER_VERSION = '10.11.19-MariaDB-regent-sim';

export function handshakePacket(w: PacketWriter, connectionId: number, scramble: Buffer): PacketWriter {
  return w
    .begin(0)
    .u8(10)
    .nulString(SERVER_VERSION)
    .u32(connectionId)
    .bytes(scramble.subarray(0, 8))
    .u8(0)
    .u16(SERVER_CAPABILITIES & 0xffff)
    .u8(CHARSET.UTF8MB4_GENERAL_CI)
    .u16(STATUS_AUTOCOMMIT)
    .u16(SERVER_CAPABILITIES >>> 16)
    .u8(21)
    .zeros(10)
    .bytes(scramble.subarray(8, 20))
    .u8(0)
    .nulString('mysql_native_password')
    .end();
}

export interface HandshakeResponse {
  capabilities: number;
  user: string;
  authResponse: Buffer;
  database?: string;
  authPlugin?: string;
}

/** Parses HandshakeResponse41. Returns undefined for anything else (an SSL request, protocol 3.20). */
export function parseHandshakeResponse(p: Buffer): HandshakeResponse | undefined {
  if (p.length < 32) return undefined;
  const capabilities = p.readUInt32LE(0);
  if (!(capabilities & CAP.PROTOCOL_41)) return undefined;
  let o = 32;
  const nul = (from: number): number => {
    const i = p.indexOf(0, from);
    return i < 0 ? p.length : i;
  };
  let end = nul(o);
  const user = p.toString('utf8', o, end);
  o = end + 1;
  let authResponse: Buffer;
  if (capabilities & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) {
    const { value, size } = readLenenc(p, o);
    authResponse = p.subarray(o + size, o + size + value);
    o += size + value;
  } else if (capabilities & CAP.SECURE_CONNECTION) {
    const n = p[o] ?? 0;
    authResponse = p.subarray(o + 1, o + 1 + n);
    o += 1 + n;
  } else {
    end = nul(o);
    authResponse = p.subarray(o, end);
    o = end + 1;
  }
  let database: string | undefined;
  if (capabilities & CAP.CONNECT_WITH_DB && o < p.length) {
    end = nul(o);
    database = p.toString('utf8', o, end) || undefined;
    o = end + 1;
  }
  let authPlugin: string | undefined;
  if (capabilities & CAP.PLUGIN_AUTH && o < p.length) {
    end = nul(o);
    authPlugin = p.toString('utf8', o, end);
  }
  return { capabilities, user, authResponse, database, authPlugin };
}

export function readLenenc(p: Buffer, o: number): { value: number; size: number } {
  const first = p[o] ?? 0;
  if (first < 0xfb) return { value: first, size: 1 };
  if (first === 0xfc) return { value: p.readUInt16LE(o + 1), size: 3 };
  if (first === 0xfd) return { value: p.readUIntLE(o + 1, 3), size: 4 };
  return { value: Number(p.readBigUInt64LE(o + 1)), size: 9 };
}

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1');
  for (const x of parts) h.update(x);
  return h.digest();
};

/** What a server stores for mysql_native_password: SHA1(SHA1(password)). */
export function nativePasswordHash(password: string): Buffer {
  return sha1(sha1(Buffer.from(password, 'utf8')));
}

/**
 * Checks a mysql_native_password answer: the client sent SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))),
 * so XOR with SHA1(scramble + stored) gives SHA1(pw), whose SHA1 must be the stored hash. An empty
 * password is an empty answer.
 */
export function verifyNativePassword(stored: Buffer | undefined, scramble: Buffer, token: Buffer): boolean {
  if (stored === undefined) return token.length === 0;
  if (token.length !== 20) return false;
  const mask = sha1(scramble, stored);
  const stage1 = Buffer.allocUnsafe(20);
  for (let i = 0; i < 20; i++) stage1[i] = token[i]! ^ mask[i]!;
  return timingSafeEqual(sha1(stage1), stored);
}
