import { MalformedPacket, PayloadReader, PayloadWriter, frame } from './packets.ts';

/** Capability flags (both families; MariaDB calls bit 0 CLIENT_MYSQL). */
export const CAP = {
  LONG_PASSWORD: 1,
  FOUND_ROWS: 2,
  LONG_FLAG: 4,
  CONNECT_WITH_DB: 8,
  NO_SCHEMA: 16,
  COMPRESS: 32,
  ODBC: 64,
  LOCAL_FILES: 128,
  IGNORE_SPACE: 256,
  PROTOCOL_41: 512,
  INTERACTIVE: 1024,
  SSL: 2048,
  IGNORE_SIGPIPE: 4096,
  TRANSACTIONS: 8192,
  RESERVED: 16384,
  SECURE_CONNECTION: 32768,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS: 1 << 22,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
  OPTIONAL_RESULTSET_METADATA: 1 << 25,
  QUERY_ATTRIBUTES: 1 << 27,
} as const;

/**
 * What the endpoint offers clients. Everything here is relayed unchanged or handled by the router.
 * Left out on purpose, because each changes the format of what is relayed and the router would have
 * to translate: DEPRECATE_EOF (result sets end with an EOF packet, which is unambiguous even with
 * cursors), QUERY_ATTRIBUTES and OPTIONAL_RESULTSET_METADATA (MySQL 8), and MariaDB's extended
 * capabilities (metadata caching, bulk execution, progress reports). SSL is added when TLS is
 * configured; SESSION_TRACK the router always asks of backends (for last_gtid and session state)
 * and strips from OK packets for clients that did not ask for it.
 */
export const ENDPOINT_CAPS =
  CAP.LONG_PASSWORD |
  CAP.FOUND_ROWS |
  CAP.LONG_FLAG |
  CAP.CONNECT_WITH_DB |
  CAP.NO_SCHEMA |
  CAP.COMPRESS |
  CAP.ODBC |
  CAP.LOCAL_FILES |
  CAP.IGNORE_SPACE |
  CAP.PROTOCOL_41 |
  CAP.INTERACTIVE |
  CAP.IGNORE_SIGPIPE |
  CAP.TRANSACTIONS |
  CAP.RESERVED |
  CAP.SECURE_CONNECTION |
  CAP.MULTI_STATEMENTS |
  CAP.MULTI_RESULTS |
  CAP.PS_MULTI_RESULTS |
  CAP.PLUGIN_AUTH |
  CAP.CONNECT_ATTRS |
  CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CAP.CAN_HANDLE_EXPIRED_PASSWORDS |
  CAP.SESSION_TRACK;

/** Capabilities that only concern one hop and are never copied from the client to a backend. */
export const HOP_CAPS = CAP.COMPRESS | CAP.SSL;

export const STATUS = {
  IN_TRANS: 1,
  AUTOCOMMIT: 2,
  MORE_RESULTS_EXISTS: 8,
  CURSOR_EXISTS: 64,
  LAST_ROW_SENT: 128,
  IN_TRANS_READONLY: 0x2000,
  SESSION_STATE_CHANGED: 0x4000,
} as const;

export const COM = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  RESET_CONNECTION: 0x1f,
} as const;

export const CHARSET_UTF8MB4_GENERAL_CI = 45;
export const NATIVE_PLUGIN = 'mysql_native_password';

/** Server error codes the router answers with itself (the servers' own codes and SQL states). */
export const ER = {
  ACCESS_DENIED: { code: 1045, state: '28000' },
  NOT_SUPPORTED_AUTH_MODE: { code: 1251, state: '08004' },
  UNKNOWN_COM: { code: 1047, state: '08S01' },
  NET_PACKET_TOO_LARGE: { code: 1153, state: '08S01' },
  HANDSHAKE: { code: 1043, state: '08S01' },
  UNKNOWN_STMT_HANDLER: { code: 1243, state: 'HY000' },
  NO_SUCH_THREAD: { code: 1094, state: 'HY000' },
  UNKNOWN: { code: 1105, state: 'HY000' },
  SECURE_TRANSPORT_REQUIRED: { code: 3159, state: 'HY000' },
  MALFORMED: { code: 1835, state: 'HY000' },
} as const;

export interface ServerGreeting {
  protocol: number;
  version: string;
  connectionId: number;
  scramble: Buffer;
  caps: number;
  charset: number;
  status: number;
  plugin: string;
  /** MariaDB's extended capabilities (0 when the server is MySQL or sets CLIENT_MYSQL). */
  mariadbCaps: number;
}

export function parseGreeting(payload: Buffer): ServerGreeting {
  const r = new PayloadReader(payload);
  const protocol = r.u8('protocol version');
  if (protocol === 0xff) {
    const e = parseErr(payload);
    throw new MalformedPacket(`server refused the connection: ${e.code} ${e.message}`);
  }
  if (protocol !== 10) throw new MalformedPacket(`server speaks handshake protocol ${protocol}, not 10`);
  const version = r.nulBytes('server version').toString('utf8');
  const connectionId = r.u32('connection id');
  const s1 = r.bytes(8, 'scramble');
  r.u8('filler');
  let caps = r.u16('capabilities');
  const charset = r.u8('character set');
  const status = r.u16('status');
  caps |= r.u16('capabilities') << 16;
  caps >>>= 0;
  const authLen = r.u8('auth data length');
  r.bytes(6, 'reserved');
  const mariadbCaps = r.u32('extended capabilities');
  const n2 = Math.max(13, authLen - 8);
  const s2 = r.left >= n2 ? r.bytes(n2, 'scramble') : r.rest();
  // The scramble is 20 bytes; the 13th byte of part 2 is its NUL terminator.
  const scramble = Buffer.concat([s1, s2.subarray(0, Math.min(12, s2.length))]);
  const plugin = r.left > 0 ? r.nulBytesOrRest() : NATIVE_PLUGIN;
  return { protocol, version, connectionId, scramble, caps, charset, status, plugin, mariadbCaps: caps & CAP.LONG_PASSWORD ? 0 : mariadbCaps };
}


export function buildGreeting(g: { version: string; connectionId: number; scramble: Buffer; caps: number; charset: number; status: number; plugin: string }): Buffer {
  return new PayloadWriter()
    .u8(10)
    .nulString(g.version)
    .u32(g.connectionId)
    .bytes(g.scramble.subarray(0, 8))
    .u8(0)
    .u16(g.caps & 0xffff)
    .u8(g.charset)
    .u16(g.status)
    .u16((g.caps >>> 16) & 0xffff)
    .u8(g.scramble.length + 1)
    .zeros(10)
    .bytes(g.scramble.subarray(8))
    .u8(0)
    .nulString(g.plugin)
    .build();
}

export interface HandshakeResponse {
  caps: number;
  maxPacket: number;
  charset: number;
  user: string;
  authResponse: Buffer;
  database?: string;
  plugin?: string;
  /** Connection attributes as sent (length-encoded key/value pairs), relayed to backends. */
  attrs?: Buffer;
  /** Only the first 32 bytes came: the client asks for TLS before the rest. */
  sslRequest: boolean;
}

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  if (payload.length < 32) throw new MalformedPacket(`handshake response of ${payload.length} bytes is shorter than 32`);
  const r = new PayloadReader(payload);
  const caps = r.u32('capabilities') >>> 0;
  if (!(caps & CAP.PROTOCOL_41)) throw new MalformedPacket('client does not speak protocol 4.1 (CLIENT_PROTOCOL_41 not set)');
  const maxPacket = r.u32('max packet');
  const charset = r.u8('character set');
  r.bytes(23, 'filler');
  if (payload.length === 32) return { caps, maxPacket, charset, user: '', authResponse: Buffer.alloc(0), sslRequest: true };
  const user = r.nulBytes('user name').toString('utf8');
  let authResponse: Buffer;
  if (caps & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = Buffer.from(r.lenencBytes('auth response'));
  else if (caps & CAP.SECURE_CONNECTION) authResponse = Buffer.from(r.bytes(r.u8('auth response length'), 'auth response'));
  else authResponse = Buffer.from(r.nulBytes('auth response'));
  let database: string | undefined;
  if (caps & CAP.CONNECT_WITH_DB && r.left > 0) {
    database = r.nulBytes('database').toString('utf8');
    if (database === '') database = undefined;
  }
  let plugin: string | undefined;
  if (caps & CAP.PLUGIN_AUTH && r.left > 0) plugin = r.nulBytesOrRest();
  let attrs: Buffer | undefined;
  if (caps & CAP.CONNECT_ATTRS && r.left > 0) attrs = Buffer.from(r.lenencBytes('connection attributes'));
  return { caps, maxPacket, charset, user, authResponse, database, plugin, attrs, sslRequest: false };
}

export function buildSslRequest(caps: number, charset: number): Buffer {
  return new PayloadWriter().u32(caps).u32(0x40000000).u8(charset).zeros(23).build();
}

export function buildHandshakeResponse(h: { caps: number; charset: number; user: string; authResponse: Buffer; database?: string; plugin: string; attrs?: Buffer }): Buffer {
  const w = new PayloadWriter().u32(h.caps).u32(0x40000000).u8(h.charset).zeros(23).nulString(h.user);
  if (h.caps & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) w.lenencString(h.authResponse);
  else w.u8(h.authResponse.length).bytes(h.authResponse);
  if (h.caps & CAP.CONNECT_WITH_DB) w.nulString(h.database ?? '');
  if (h.caps & CAP.PLUGIN_AUTH) w.nulString(h.plugin);
  if (h.caps & CAP.CONNECT_ATTRS) w.lenencString(h.attrs ?? Buffer.alloc(0));
  return w.build();
}

/** COM_CHANGE_USER's payload (after the command byte). */
export interface ChangeUser {
  user: string;
  authResponse: Buffer;
  database?: string;
  charset?: number;
  plugin?: string;
  attrs?: Buffer;
}

export function parseChangeUser(payload: Buffer, caps: number): ChangeUser {
  const r = new PayloadReader(payload);
  r.u8('command');
  const user = r.nulBytes('user name').toString('utf8');
  const authResponse = Buffer.from(caps & CAP.SECURE_CONNECTION ? r.bytes(r.u8('auth response length'), 'auth response') : r.nulBytes('auth response'));
  const database = r.left > 0 ? r.nulBytes('database').toString('utf8') || undefined : undefined;
  const charset = r.left >= 2 ? r.u16('character set') : undefined;
  const plugin = caps & CAP.PLUGIN_AUTH && r.left > 0 ? r.nulBytesOrRest() : undefined;
  const attrs = caps & CAP.CONNECT_ATTRS && r.left > 0 ? Buffer.from(r.lenencBytes('connection attributes')) : undefined;
  return { user, authResponse, database, charset, plugin, attrs };
}

export function buildAuthSwitch(plugin: string, data: Buffer): Buffer {
  return new PayloadWriter().u8(0xfe).nulString(plugin).bytes(data).u8(0).build();
}

export interface ErrInfo {
  code: number;
  state: string;
  message: string;
}

export function parseErr(payload: Buffer): ErrInfo {
  if (payload.length < 3) return { code: 0, state: 'HY000', message: 'malformed error packet' };
  const code = payload.readUInt16LE(1);
  if (payload[3] === 0x23 && payload.length >= 9) return { code, state: payload.toString('latin1', 4, 9), message: payload.toString('utf8', 9) };
  return { code, state: 'HY000', message: payload.toString('utf8', 3) };
}

export function errPayload(e: { code: number; state: string }, message: string): Buffer {
  return new PayloadWriter().u8(0xff).u16(e.code).u8(0x23).bytes(Buffer.from(e.state.padEnd(5, '0').slice(0, 5), 'latin1')).bytes(Buffer.from(message, 'utf8')).build();
}

export function errPacket(e: { code: number; state: string }, message: string, seq: number): Buffer {
  return frame(errPayload(e, message), seq);
}

export function okPacket(seq: number, status: number, opts: { affectedRows?: number; insertId?: number; sessionTrack?: boolean } = {}): Buffer {
  const w = new PayloadWriter().u8(0).lenenc(opts.affectedRows ?? 0).lenenc(opts.insertId ?? 0).u16(status & ~STATUS.SESSION_STATE_CHANGED).u16(0);
  return frame(w.build(), seq);
}

export function eofPayload(status: number): Buffer {
  return new PayloadWriter().u8(0xfe).u16(0).u16(status).build();
}

/** What an OK packet's session-state information says (MariaDB and MySQL trackers). */
export interface SessionTrack {
  /** System variables whose value changed, in order. */
  vars?: [string, string][];
  schema?: string;
  /** MySQL session_track_gtids. */
  gtids?: string;
}

export interface OkInfo {
  affectedRows: number;
  insertId: number;
  status: number;
  warnings: number;
  track?: SessionTrack;
  /** Byte offset where the info string starts (for rewriting). */
  infoAt: number;
}

export function parseOk(payload: Buffer, sessionTrack: boolean): OkInfo {
  const r = new PayloadReader(payload);
  r.u8('header');
  const affectedRows = r.lenenc('affected rows');
  const insertId = r.lenenc('last insert id');
  const status = r.left >= 2 ? r.u16('status') : 0;
  const warnings = r.left >= 2 ? r.u16('warnings') : 0;
  const infoAt = r.at;
  let track: SessionTrack | undefined;
  if (sessionTrack && r.left > 0) {
    r.lenencBytes('info');
    if (status & STATUS.SESSION_STATE_CHANGED && r.left > 0) track = parseSessionTrack(r.lenencBytes('session state'));
  }
  return { affectedRows, insertId, status, warnings, track, infoAt };
}

export function parseSessionTrack(data: Buffer): SessionTrack {
  const r = new PayloadReader(data);
  const out: SessionTrack = {};
  while (r.left > 0) {
    const type = r.u8('session state type');
    const entry = new PayloadReader(r.lenencBytes('session state entry'));
    if (type === 0) {
      const name = entry.lenencBytes('variable name').toString('utf8');
      const value = entry.lenencBytes('variable value').toString('utf8');
      (out.vars ??= []).push([name, value]);
    } else if (type === 1) out.schema = entry.lenencBytes('schema').toString('utf8');
    else if (type === 3) {
      entry.u8('gtid encoding');
      out.gtids = entry.lenencBytes('gtids').toString('utf8');
    }
  }
  return out;
}

/**
 * An OK packet from a backend with session tracking, rewritten for a client that did not ask for
 * it: the same counters and flags, the info text as the rest of the packet, no state changes.
 */
export function stripSessionTrack(payload: Buffer): Buffer {
  const r = new PayloadReader(payload);
  r.u8();
  r.lenenc();
  r.lenenc();
  if (r.left < 4) return payload;
  const status = r.u16();
  r.u16();
  const head = payload.subarray(0, r.at);
  const info = r.left > 0 ? r.lenencBytes('info') : Buffer.alloc(0);
  const out = Buffer.concat([head, info]);
  out.writeUInt16LE(status & ~STATUS.SESSION_STATE_CHANGED, head.length - 4);
  return out;
}

/** COM_QUERY payload. */
export function queryPayload(sql: string): Buffer {
  const b = Buffer.allocUnsafe(1 + Buffer.byteLength(sql));
  b[0] = COM.QUERY;
  b.write(sql, 1, 'utf8');
  return b;
}
