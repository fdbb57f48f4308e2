import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { nativeToken, sha1 } from '../../src/router/sql/auth.ts';
import { frame, PacketReader, PayloadReader, type Packet } from '../../src/router/sql/packets.ts';
import { buildHandshakeResponse, CAP, COM, parseErr, parseGreeting, parseOk, STATUS, type ErrInfo } from '../../src/router/sql/protocol.ts';

/**
 * A bare MySQL-protocol client for the commands mysql2 cannot send (cursors, COM_STMT_FETCH,
 * COM_STMT_SEND_LONG_DATA, COM_STMT_RESET) and for malformed input. Logs in with
 * mysql_native_password; decodes just enough of text and binary rows for tests (integers and
 * strings).
 */

export interface Column {
  name: string;
  type: number;
  flags: number;
}

export interface ResultSet {
  columns: Column[];
  rows: (string | null)[][];
  /** Status flags of the EOF that ended the column definitions or rows. */
  status: number;
}

export interface OkResult {
  affectedRows: number;
  insertId: number;
  status: number;
}

export class WireError extends Error {
  constructor(readonly err: ErrInfo) {
    super(`${err.code} (${err.state}): ${err.message}`);
  }
}

const TYPE = { TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, LONGLONG: 8, INT24: 9, YEAR: 13, VAR_STRING: 253 } as const;
export const CURSOR_TYPE_READ_ONLY = 1;

export class WireClient {
  #reader = new PacketReader(1 << 30);
  #packets: Packet[] = [];
  #waiters: ((p: Packet) => void)[] = [];
  closed = false;
  threadId = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.#reader.push(c);
      for (let p = this.#reader.next(); p; p = this.#reader.next()) {
        const w = this.#waiters.shift();
        if (w) w(p);
        else this.#packets.push(p);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w({ seq: -1, lastSeq: -1, payload: Buffer.alloc(0), raw: Buffer.alloc(0) });
    });
    socket.on('error', () => {});
  }

  static async login(opts: { port: number; user: string; password: string; database?: string; host?: string }): Promise<WireClient> {
    const socket = connect({ host: opts.host ?? '127.0.0.1', port: opts.port });
    const c = new WireClient(socket);
    const g = parseGreeting((await c.next()).payload);
    c.threadId = g.connectionId;
    const caps = CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.TRANSACTIONS | CAP.MULTI_RESULTS | CAP.PS_MULTI_RESULTS | (opts.database ? CAP.CONNECT_WITH_DB : 0);
    const token = opts.password === '' ? Buffer.alloc(0) : nativeToken(sha1(Buffer.from(opts.password)), g.scramble);
    socket.write(frame(buildHandshakeResponse({ caps, charset: 45, user: opts.user, authResponse: token, database: opts.database, plugin: 'mysql_native_password' }), 1));
    const ok = await c.next();
    if (ok.payload[0] === 0xff) {
      socket.destroy();
      throw new WireError(parseErr(ok.payload));
    }
    assert.equal(ok.payload[0], 0x00, 'login answered with neither OK nor ERR');
    return c;
  }

  /** The next packet from the server (a closed connection yields an empty payload with seq -1). */
  next(): Promise<Packet> {
    const p = this.#packets.shift();
    if (p) return Promise.resolve(p);
    if (this.closed) return Promise.resolve({ seq: -1, lastSeq: -1, payload: Buffer.alloc(0), raw: Buffer.alloc(0) });
    return new Promise((r) => this.#waiters.push(r));
  }

  /** Sends one command (a fresh sequence) without waiting for anything. */
  send(payload: Buffer): void {
    this.socket.write(frame(payload, 0));
  }

  /** Sends a command answered by one packet (OK, ERR, EOF). */
  async command(payload: Buffer): Promise<Packet> {
    this.send(payload);
    return this.next();
  }

  async ping(): Promise<void> {
    const p = await this.command(Buffer.from([COM.PING]));
    if (p.payload[0] === 0xff) throw new WireError(parseErr(p.payload));
    assert.equal(p.payload[0], 0x00, 'COM_PING answered with neither OK nor ERR');
  }

  /** COM_QUERY; every result of a multi-result answer, in order. */
  async query(sql: string): Promise<(ResultSet | OkResult)[]> {
    this.send(Buffer.concat([Buffer.from([COM.QUERY]), Buffer.from(sql, 'utf8')]));
    return this.#results('text');
  }

  /** The first result set of a query's answer. */
  async rows(sql: string): Promise<(string | null)[][]> {
    const r = (await this.query(sql)).find((x): x is ResultSet => 'rows' in x);
    assert.ok(r, `no result set from ${sql}`);
    return r.rows;
  }

  async #results(protocol: 'text' | 'binary'): Promise<(ResultSet | OkResult)[]> {
    const out: (ResultSet | OkResult)[] = [];
    for (;;) {
      const first = await this.next();
      if (first.seq < 0) throw new Error('connection closed');
      const h = first.payload[0];
      if (h === 0xff) throw new WireError(parseErr(first.payload));
      let status: number;
      if (h === 0x00) {
        const ok = parseOk(first.payload, false);
        out.push({ affectedRows: ok.affectedRows, insertId: ok.insertId, status: ok.status });
        status = ok.status;
      } else {
        const rs = await this.#resultSet(first, protocol);
        out.push(rs);
        status = rs.status;
        if (status & STATUS.CURSOR_EXISTS) return out;
      }
      if (!(status & STATUS.MORE_RESULTS_EXISTS)) return out;
    }
  }

  async #columns(n: number): Promise<Column[]> {
    const cols: Column[] = [];
    for (let i = 0; i < n; i++) cols.push(parseColumn((await this.next()).payload));
    return cols;
  }

  async #resultSet(first: Packet, protocol: 'text' | 'binary'): Promise<ResultSet> {
    const n = new PayloadReader(first.payload).lenenc();
    const columns = await this.#columns(n);
    const eof = await this.next();
    assert.equal(eof.payload[0], 0xfe, 'column definitions end with EOF');
    const status = eof.payload.readUInt16LE(3);
    if (status & STATUS.CURSOR_EXISTS) return { columns, rows: [], status };
    const { rows, status: end } = await this.#rows(columns, protocol);
    return { columns, rows, status: end };
  }

  async #rows(columns: Column[], protocol: 'text' | 'binary'): Promise<{ rows: (string | null)[][]; status: number }> {
    const rows: (string | null)[][] = [];
    for (;;) {
      const p = await this.next();
      if (p.seq < 0) throw new Error('connection closed');
      if (p.payload[0] === 0xfe && p.payload.length < 9) return { rows, status: p.payload.readUInt16LE(3) };
      if (p.payload[0] === 0xff) throw new WireError(parseErr(p.payload));
      rows.push(protocol === 'text' ? textRow(p.payload, columns.length) : binaryRow(p.payload, columns));
    }
  }

  /** COM_STMT_PREPARE: the statement id and its parameter and column counts. */
  async prepare(sql: string): Promise<{ id: number; params: number; columns: number }> {
    this.send(Buffer.concat([Buffer.from([COM.STMT_PREPARE]), Buffer.from(sql, 'utf8')]));
    const ok = await this.next();
    if (ok.payload[0] === 0xff) throw new WireError(parseErr(ok.payload));
    const id = ok.payload.readUInt32LE(1);
    const columns = ok.payload.readUInt16LE(5);
    const params = ok.payload.readUInt16LE(7);
    if (params > 0) {
      await this.#columns(params);
      await this.next();
    }
    if (columns > 0) {
      await this.#columns(columns);
      await this.next();
    }
    return { id, params, columns };
  }

  /**
   * COM_STMT_EXECUTE with integer, string or NULL parameters; `undefined` marks a parameter sent
   * before with COM_STMT_SEND_LONG_DATA. With `cursor`, the answer is column definitions only.
   */
  async execute(id: number, params: (number | string | null | undefined)[], opts: { cursor?: boolean } = {}): Promise<(ResultSet | OkResult)[]> {
    this.send(executePayload(id, params, opts.cursor ? CURSOR_TYPE_READ_ONLY : 0));
    return this.#results('binary');
  }

  /** COM_STMT_FETCH of up to `n` rows of an open cursor. */
  async fetch(id: number, n: number, columns: Column[]): Promise<{ rows: (string | null)[][]; status: number }> {
    const pl = Buffer.alloc(9);
    pl[0] = COM.STMT_FETCH;
    pl.writeUInt32LE(id, 1);
    pl.writeUInt32LE(n, 5);
    this.send(pl);
    return this.#rows(columns, 'binary');
  }

  /** COM_STMT_SEND_LONG_DATA: no answer. */
  sendLongData(id: number, param: number, data: Buffer): void {
    const head = Buffer.alloc(7);
    head[0] = COM.STMT_SEND_LONG_DATA;
    head.writeUInt32LE(id, 1);
    head.writeUInt16LE(param, 5);
    this.send(Buffer.concat([head, data]));
  }

  /** COM_STMT_RESET. */
  async resetStatement(id: number): Promise<void> {
    const pl = Buffer.alloc(5);
    pl[0] = COM.STMT_RESET;
    pl.writeUInt32LE(id, 1);
    const p = await this.command(pl);
    if (p.payload[0] === 0xff) throw new WireError(parseErr(p.payload));
    assert.equal(p.payload[0], 0x00, 'COM_STMT_RESET answered with neither OK nor ERR');
  }

  closeStatement(id: number): void {
    const pl = Buffer.alloc(5);
    pl[0] = COM.STMT_CLOSE;
    pl.writeUInt32LE(id, 1);
    this.send(pl);
  }

  end(): void {
    if (!this.closed) this.socket.end(frame(Buffer.from([COM.QUIT]), 0));
  }
}

function parseColumn(payload: Buffer): Column {
  const r = new PayloadReader(payload);
  for (let i = 0; i < 4; i++) r.lenencBytes(); // catalog, schema, table, org_table
  const name = r.lenencBytes().toString('utf8');
  r.lenencBytes(); // org_name
  r.lenenc(); // length of the fixed fields
  r.u16(); // character set
  r.u32(); // column length
  const type = r.u8();
  const flags = r.u16();
  return { name, type, flags };
}

function textRow(payload: Buffer, n: number): (string | null)[] {
  const r = new PayloadReader(payload);
  const row: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    if (payload[r.at] === 0xfb) {
      r.u8();
      row.push(null);
    } else row.push(r.lenencBytes().toString('utf8'));
  }
  return row;
}

function binaryRow(payload: Buffer, columns: Column[]): (string | null)[] {
  const r = new PayloadReader(payload);
  assert.equal(r.u8(), 0x00, 'binary row header');
  const bitmap = r.bytes((columns.length + 7 + 2) >> 3);
  const row: (string | null)[] = [];
  columns.forEach((c, i) => {
    const bit = i + 2;
    if (bitmap[bit >> 3]! & (1 << (bit & 7))) {
      row.push(null);
      return;
    }
    const unsigned = Boolean(c.flags & 32);
    switch (c.type) {
      case TYPE.TINY:
        row.push(String(unsigned ? r.u8() : (r.u8() << 24) >> 24));
        break;
      case TYPE.SHORT:
      case TYPE.YEAR: {
        const v = r.u16();
        row.push(String(unsigned ? v : (v << 16) >> 16));
        break;
      }
      case TYPE.LONG:
      case TYPE.INT24: {
        const b = r.bytes(4);
        row.push(String(unsigned ? b.readUInt32LE(0) : b.readInt32LE(0)));
        break;
      }
      case TYPE.LONGLONG: {
        const b = r.bytes(8);
        row.push(String(unsigned ? b.readBigUInt64LE(0) : b.readBigInt64LE(0)));
        break;
      }
      case TYPE.FLOAT:
        row.push(String(r.bytes(4).readFloatLE(0)));
        break;
      case TYPE.DOUBLE:
        row.push(String(r.bytes(8).readDoubleLE(0)));
        break;
      default:
        // Strings, decimals, blobs, JSON: length-encoded bytes. (Dates are not decoded here.)
        row.push(r.lenencBytes().toString('utf8'));
    }
  });
  return row;
}

function executePayload(id: number, params: (number | string | null | undefined)[], flags: number): Buffer {
  const head = Buffer.alloc(10);
  head[0] = COM.STMT_EXECUTE;
  head.writeUInt32LE(id, 1);
  head[5] = flags;
  head.writeUInt32LE(1, 6); // iteration count
  if (params.length === 0) return head;
  const nulls = Buffer.alloc((params.length + 7) >> 3);
  const types = Buffer.alloc(params.length * 2);
  const values: Buffer[] = [];
  params.forEach((p, i) => {
    if (p === null) {
      nulls[i >> 3]! |= 1 << (i & 7);
      types.writeUInt16LE(TYPE.VAR_STRING, i * 2);
    } else if (typeof p === 'number') {
      types.writeUInt16LE(TYPE.LONGLONG, i * 2);
      const v = Buffer.alloc(8);
      v.writeBigInt64LE(BigInt(p));
      values.push(v);
    } else {
      // A string, or (undefined) a value that came as long data: the type is still sent here.
      types.writeUInt16LE(TYPE.VAR_STRING, i * 2);
      if (p !== undefined) {
        const s = Buffer.from(p, 'utf8');
        const len = Buffer.alloc(s.length < 251 ? 1 : 9);
        if (s.length < 251) len[0] = s.length;
        else {
          len[0] = 0xfe;
          len.writeBigUInt64LE(BigInt(s.length), 1);
        }
        values.push(len, s);
      }
    }
  });
  return Buffer.concat([head, nulls, Buffer.from([1]), types, ...values]);
}
