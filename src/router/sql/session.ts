import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { GtidState } from '../../gtid/index.ts';
import type { EndpointDialect } from '../../sql/flavor.ts';
import { killStatement, rollbackStatement, setSessionVariables, useSchema } from '../../sql/session-sql.ts';
import type { Logger } from '../../util/log.ts';
import type { RoutingTable } from '../routing-table.ts';
import { checkLogin, newScramble, normalizeAddress, type AccountRow, type BackendCredential } from './auth.ts';
import { BackendConnection, BackendFailed, BackendRefused } from './backend.ts';
import { ResultChecksum } from './checksum.ts';
import { classify, type Classification } from './classify.ts';
import { commitOutcome } from './commit-outcome.ts';
import { ReplayLog, type ReplaySettings } from './replay-log.ts';
import type { SqlMetrics, StatementCounts } from './metrics.ts';
import { compressFrames, Decompressor, CompressedStreamError, frame, HEADER, MalformedPacket, PacketReader, PacketTooLarge, PayloadReader, type Packet } from './packets.ts';
import {
  buildAuthSwitch,
  buildGreeting,
  CAP,
  COM,
  ENDPOINT_CAPS,
  ER,
  errPacket,
  HOP_CAPS,
  NATIVE_PLUGIN,
  okPacket,
  parseChangeUser,
  parseHandshakeResponse,
  queryPayload,
  STATUS,
  type ErrInfo,
} from './protocol.ts';
import { ResponseRelay, type Expect, type ResponseSummary } from './response.ts';
import { primaryLeaving, route, type CausalMode, type Route, type RouteReason } from './route.ts';

export interface SqlSessionSettings {
  causalReads: CausalMode;
  causalWaitTimeoutMs: number;
  hints: boolean;
  maxPacketBytes: number;
  holdTimeoutMs: number;
  connectTimeoutMs: number;
  tlsMode?: 'required' | 'optional';
  transactionReplay?: ReplaySettings;
}

const DEFAULT_REPLAY: ReplaySettings = { enabled: true, maxBytes: 1 << 20, maxStatements: 1000, unsafeFunctions: ['RAND', 'UUID', 'UUID_SHORT', 'SYS_GUID', 'SYSDATE', 'CONNECTION_ID', 'GET_LOCK', 'SLEEP'] };

/** What a session did when a backend connection was lost or a switchover moved it (regent_sql_recoveries_total). */
export type RecoveryKind = 'moved' | 'retried_read' | 'retried_unsent' | 'replayed' | 'replay_refused' | 'in_doubt';

/** What a session needs from its endpoint (the endpoint owns routing state and shared caches). */
export interface EndpointContext {
  cluster: string;
  settings: SqlSessionSettings;
  log: Logger;
  metrics: SqlMetrics;
  /** Where this endpoint's statements went (counted in plain numbers, see metrics.ts). */
  statements: StatementCounts;
  /** The servers' family's statements (session tracking, GTID waits). */
  dialect(): EndpointDialect;
  serverVersion(): string;
  serverCharset(): number;
  clientTls?: SecureContext;
  backendTls?: { options: import('node:tls').ConnectionOptions; required: boolean };
  accounts(): AccountRow[];
  /** Re-reads the accounts (after a failed login; at most one read a second, so it may wait); false when the read failed. */
  refreshAccounts(): Promise<boolean>;
  password(user: string): string | undefined;
  address(id: string): { host: string; port: number } | undefined;
  table(): RoutingTable;
  applied(): Map<string, GtidState>;
  lag(): Map<string, number | null>;
  globalWritten(): GtidState | undefined;
  /** Resolves with the writer target once there is one, or undefined after `timeoutMs`. */
  waitWriter(timeoutMs: number): Promise<string | undefined>;
  /**
   * Whether an open transaction on `id` may go on there while writes are held: a switchover (or
   * a primary that missed a probe) holds writes, the instance is not fenced and the decision is
   * fresh. The switchover waits for such transactions before it sets read_only.
   */
  mayFinishOn(id: string): boolean;
  /** The instance is fenced (no command may reach it). */
  isFenced(id: string): boolean;
  /** Counts a recovery (metrics) and logs it. */
  recovered(kind: RecoveryKind, session: number, detail: string): void;
  cursor(next?: number): number;
  learnApplied(id: string, gtid: GtidState): void;
  noteWrite(gtid: GtidState): void;
  parseGtid(text: string): GtidState;
  session(id: number): Session | undefined;
  backendOpened(b: BackendConnection, role: 'primary' | 'replica'): void;
  closed(s: Session): void;
}

/** An error for the client, with the server's code; `fatal` closes the session after sending it. */
class ClientError extends Error {
  constructor(
    readonly err: { code: number; state: string },
    message: string,
    readonly fatal = false,
  ) {
    super(message);
  }
}

interface Prepared {
  id: number;
  sql: string;
  cls: Classification;
  params: number;
  columns: number;
  /** The statement's id on each backend connection it is prepared on. */
  on: Map<BackendConnection, number>;
  /** Last parameter types the client bound (sent again to a backend that has not seen them). */
  types?: Buffer;
  typesOn: Set<BackendConnection>;
  /** COM_STMT_SEND_LONG_DATA payloads since the last execute, for whichever backend executes. */
  longData: Buffer[];
  cursorOn?: BackendConnection;
}

/** A command being relayed to a backend, and what to call when its response is complete or the backend lost. */
interface Relaying {
  b: BackendConnection;
  relay: ResponseRelay;
  done: (summary: ResponseSummary) => void;
  fail: (e: unknown) => void;
}

/** Where a routed command runs, and why (the metrics' route and reason). */
interface Target {
  b: BackendConnection;
  to: 'primary' | 'replica';
  reason: RouteReason;
}

/** A transaction the endpoint could not carry over to the new primary: rolled back, run it again (as after a deadlock). */
const ER_TRX_REPLAY = { code: 1213, state: '40001' };
/** A COMMIT whose outcome is unknown (ER_ERROR_DURING_COMMIT). */
const ER_COMMIT_IN_DOUBT = { code: 1180, state: 'HY000' };

/** How long a login waits for the primary before a replica is asked too (see #loginBackend). */
const LOGIN_HEDGE_MS = 500;

/** Variables the router manages itself or that cannot be set: never replayed. */
const NOT_REPLAYED = new Set(['last_gtid', 'session_track_system_variables', 'session_track_schema', 'session_track_state_change', 'session_track_transaction_info', 'session_track_gtids', 'gtid_seq_no', 'insert_id', 'last_insert_id', 'identity', 'warning_count', 'error_count']);

let nextSessionId = 1;

/**
 * One client session: handshake, authenticated, idle, in statement (and within it, in transaction
 * by the status flags the servers report). It owns a primary connection and, lazily, one replica
 * connection; everything needed to open another backend for the same session (user credential,
 * schema, session variables, SET ROLE, prepared statements with their parameter types) is recorded
 * here, so a backend connection can be replaced under the session.
 */
export class Session {
  readonly id = nextSessionId++;
  readonly remote: string;
  state: 'handshake' | 'authenticating' | 'idle' | 'statement' | 'closed' = 'handshake';
  #socket: Socket;
  #reader: PacketReader;
  #decompress?: Decompressor;
  #cseq = 0;
  #scramble = newScramble();
  #caps = 0;
  #tls = false;
  // Who the client is.
  user = '';
  #credential?: BackendCredential;
  #charset = 45;
  #attrs?: Buffer;
  // Recorded session state.
  #schema?: string;
  #vars = new Map<string, string>();
  #replaySql: string[] = [];
  #setOption?: number;
  #version = 1;
  #prepared = new Map<number, Prepared>();
  #stmtSeq = 0;
  #lastPrepared?: number;
  // Routing state.
  #primary?: BackendConnection;
  #replica?: BackendConnection;
  #last?: BackendConnection;
  #trx: 'none' | 'primary' | { replica: string } = 'none';
  #autocommit = true;
  #pinned?: string;
  #written?: GtidState;
  #blind = false;
  #infile?: { backend: BackendConnection; relay: ResponseRelay };
  #busy = false;
  // Failover and switchover (issue 15).
  /** The statements of the open transaction on the primary, with the checksums of their results. */
  #log?: ReplayLog;
  /** The primary connection of the open transaction was lost: replay it before anything else runs there. */
  #lost = false;
  /** The read-only transaction on a replica was lost with its connection: its next statement gets an error. */
  #lostReadOnly = false;
  /** The running command: its packet, class, the transaction state it started in, whether the client got bytes of its answer. */
  #cmd?: Packet;
  #cmdCls?: Classification;
  #cmdTrx: 'none' | 'primary' | 'replica' = 'none';
  #cmdSent = false;
  #cmdAttempts = 0;
  /** The backend a command is being relayed on right now (none while it waits for a writer). */
  #inflight?: BackendConnection;
  /** The answer was an error proving the command did nothing and the connection is going (withheld from the client). */
  #withheld?: BackendFailed;
  #handshakeWaiter?: (p: Packet) => void;
  /** Sequence id the client expects next during the handshake. */
  #hsSeq = 1;

  constructor(
    socket: Socket,
    private readonly ctx: EndpointContext,
  ) {
    this.#socket = socket;
    this.remote = normalizeAddress(socket.remoteAddress ?? '');
    this.#reader = new PacketReader(ctx.settings.maxPacketBytes);
    this.#attach(socket);
  }

  get primary(): BackendConnection | undefined {
    return this.#primary;
  }
  get replica(): BackendConnection | undefined {
    return this.#replica;
  }
  get pinned(): string | undefined {
    return this.#pinned;
  }
  get inTransaction(): boolean {
    return this.#trx !== 'none';
  }
  get written(): GtidState | undefined {
    return this.#written;
  }

  /**
   * Whether this session keeps the switchover from setting read_only on `id`: a transaction open
   * there, or a command running there right now.
   */
  holdsPrimary(id: string): boolean {
    const p = this.#primary;
    if (!p || p.closed || p.id !== id) return false;
    return (this.#trx === 'primary' && !this.#lost) || this.#inflight === p;
  }

  #attach(s: Socket): void {
    s.on('data', (c: Buffer) => this.#onClientData(c));
    s.on('error', () => this.close('client socket error'));
    s.on('close', () => this.close('client closed the connection'));
  }

  start(): void {
    const caps = ENDPOINT_CAPS | (this.ctx.clientTls ? CAP.SSL : 0);
    this.#write(frame(buildGreeting({ version: this.ctx.serverVersion(), connectionId: this.id, scramble: this.#scramble, caps, charset: this.ctx.serverCharset(), status: STATUS.AUTOCOMMIT, plugin: NATIVE_PLUGIN }), 0));
    void this.#handshake().catch((e) => {
      this.#fail(e, this.#hsSeq);
      this.close('login failed');
    });
  }

  // ---- client I/O ---------------------------------------------------------------------

  #onClientData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    try {
      if (this.#decompress) for (const b of this.#decompress.push(chunk)) this.#reader.push(b);
      else this.#reader.push(chunk);
    } catch (e) {
      this.#protocolError('compression', ER.MALFORMED, `malformed compressed packet: ${(e as Error).message}`, 0);
      return;
    }
    this.#drain();
  }

  #drain(): void {
    for (;;) {
      if (this.state === 'closed') return;
      if (this.#busy && !this.#infile && !this.#handshakeWaiter) {
        // A command is running: keep what comes (pipelined commands) but stop reading past a bound.
        if (this.#reader.buffered > this.ctx.settings.maxPacketBytes * 2) this.#socket.pause();
        return;
      }
      let p: Packet | undefined;
      try {
        p = this.#reader.next();
      } catch (e) {
        if (e instanceof PacketTooLarge) {
          this.#protocolError('too_large', ER.NET_PACKET_TOO_LARGE, `Got a packet bigger than 'max_allowed_packet' bytes (the SQL endpoint's router.sql.maxPacketBytes is ${e.limit})`, 1);
          return;
        }
        throw e;
      }
      if (!p) return;
      if (this.#handshakeWaiter) {
        const w = this.#handshakeWaiter;
        this.#handshakeWaiter = undefined;
        w(p);
        continue;
      }
      if (this.#infile) {
        const { backend, relay } = this.#infile;
        backend.send(p.raw);
        if (p.payload.length === 0) {
          this.#infile = undefined;
          relay.infileSent();
        }
        continue;
      }
      if (this.state !== 'idle') return;
      this.#busy = true;
      this.state = 'statement';
      this.#errorSeq = p.lastSeq + 1;
      this.#cmd = p;
      this.#cmdCls = undefined;
      this.#cmdTrx = this.#trx === 'none' ? 'none' : this.#trx === 'primary' ? 'primary' : 'replica';
      this.#cmdSent = false;
      this.#cmdAttempts = 0;
      let pending: Promise<void> | undefined;
      try {
        pending = this.#dispatch(p);
      } catch (e) {
        this.#commandFailed(e);
        continue;
      }
      pending?.then(this.#commandDone, this.#commandFailed);
    }
  }

  /** Sequence id of an error answering the running command. */
  #errorSeq = 1;

  // Bound once per session (not a closure per command): the end of every command.
  #commandDone = (): void => {
    this.#busy = false;
    if (this.state === 'statement') this.state = 'idle';
    if (this.state === 'closed') return;
    if (this.#socket.isPaused()) this.#socket.resume();
    // Commands the client pipelined are already here: run the next now. Otherwise the next
    // 'data' event does (no extra turn of the event loop per command).
    if (this.#reader.buffered > 0) this.#drain();
  };

  #commandFailed = (e: unknown): void => {
    this.#inflight = undefined;
    if (e instanceof BackendFailed && this.state !== 'closed') {
      let next: 'retry' | ClientError | undefined;
      try {
        next = this.#afterLoss(e);
      } catch (ce) {
        next = ce as ClientError;
      }
      if (next === 'retry') {
        this.#cmdAttempts++;
        const p = this.#cmd!;
        let pending: Promise<void> | undefined;
        try {
          pending = this.#dispatch(p);
        } catch (de) {
          this.#commandFailed(de);
          return;
        }
        pending?.then(this.#commandDone, this.#commandFailed);
        return;
      }
      if (next) e = next;
    }
    this.#fail(e, this.#errorSeq);
    this.#commandDone();
  };

  /**
   * A backend connection was lost (or refused a command in a way that proves it did nothing)
   * while a command ran: 'retry' when the command can run again without the client noticing,
   * an error for this one command when it cannot be known whether it took effect, undefined when
   * the session cannot go on (the caller closes it, as before issue 15).
   */
  #afterLoss(e: BackendFailed): 'retry' | ClientError | undefined {
    if (this.#cmdSent || this.#cmdAttempts >= 3 || this.#pinned || !this.#cmd) return undefined;
    const cmd = this.#cmd.payload[0];
    const lostPrimary = e.detail.connection === undefined || e.detail.connection.id === this.#primary?.id || e.detail.connection === this.#primary || this.#primary === undefined;
    const cls = this.#cmdCls;
    if (this.#cmdTrx === 'replica') {
      // A read-only transaction's snapshot is gone with its replica.
      this.#trx = 'none';
      return new ClientError(ER_TRX_REPLAY, 'Regent SQL endpoint: the replica running this READ ONLY transaction was lost; the transaction was rolled back: run it again');
    }
    if (!lostPrimary || (cls && cls.kind === 'read' && this.#cmdTrx === 'none')) {
      // A read in autocommit mode has no effect: it runs again (a replica, or the new primary).
      this.ctx.recovered('retried_read', this.id, e.message);
      return 'retry';
    }
    if (cmd !== COM.QUERY && cmd !== COM.STMT_EXECUTE) {
      // PING, INIT_DB, PREPARE... change nothing a second run would repeat.
      if (this.#cmdTrx !== 'none' || cmd === COM.CHANGE_USER || cmd === COM.RESET_CONNECTION) return undefined;
      this.ctx.recovered('retried_unsent', this.id, e.message);
      return 'retry';
    }
    const c = cls ?? classify('');
    const commits = this.#cmdTrx === 'primary' ? c.kind === 'end' && !/^\s*ROLLBACK/i.test(this.#sqlOf(this.#cmd)) : c.kind !== 'read' && c.kind !== 'begin' && c.kind !== 'begin-read-only' && c.kind !== 'session';
    if (this.#cmdTrx === 'primary' && !commits) {
      // Inside the transaction, before COMMIT: it is replayed on the new primary (#primaryConn), then this statement runs.
      this.#lost = true;
      return 'retry';
    }
    if (!commits) {
      this.ctx.recovered('retried_unsent', this.id, e.message);
      return 'retry';
    }
    const outcome = commitOutcome({ sent: e.detail.sent !== false, refused: e.detail.refused, unread: e.detail.unread, oldPrimaryGone: true });
    if (outcome.outcome === 'retry' || outcome.outcome === 'not-committed') {
      if (this.#cmdTrx === 'primary') this.#lost = true;
      this.ctx.recovered('retried_unsent', this.id, `${e.message}: ${outcome.why}`);
      return 'retry';
    }
    // Never replayed blindly: it may have committed. The transaction is over either way.
    this.#trx = 'none';
    this.#log = undefined;
    this.#lost = false;
    this.ctx.recovered('in_doubt', this.id, `${e.message}: ${outcome.why}`);
    const what = this.#cmdTrx === 'primary' ? 'this COMMIT' : 'this write';
    return new ClientError(
      this.#cmdTrx === 'primary' ? ER_COMMIT_IN_DOUBT : ER.UNKNOWN,
      `Regent SQL endpoint: the primary was lost before it answered ${what}, and whether it committed cannot be proven (${outcome.why}); check before running it again`,
    );
  }

  #sqlOf(p: Packet): string {
    return p.payload[0] === COM.QUERY ? p.payload.toString('utf8', 1, Math.min(p.payload.length, 200)) : '';
  }

  #nextPacket(): Promise<Packet> {
    return new Promise((resolve) => {
      this.#handshakeWaiter = resolve;
      this.#drain();
    });
  }

  /** Writes to the client, compressed when the client asked for it. Returns false when the socket is full. */
  #write(data: Buffer | Buffer[]): boolean {
    if (this.state === 'closed') return false;
    if (this.#decompress) {
      const joined = Array.isArray(data) ? (data.length === 1 ? data[0]! : Buffer.concat(data)) : data;
      const { out, nextSeq } = compressFrames(joined, this.#cseq);
      this.#cseq = nextSeq;
      return this.#socket.write(out);
    }
    if (!Array.isArray(data)) return this.#socket.write(data);
    if (data.length === 1) return this.#socket.write(data[0]!);
    this.#socket.cork();
    let ok = true;
    for (const d of data) ok = this.#socket.write(d) && ok;
    this.#socket.uncork();
    return ok;
  }

  /**
   * The command being relayed (one at a time per session): its backend, its response and what to
   * call when it ends. One object per session, reused, with the callbacks below bound once: the
   * path of every statement allocates as little as it can.
   */
  #cur: Partial<Relaying> = {};

  /** The sink for the running command's response: backpressure pauses its backend. */
  #sink = (bufs: Buffer[]): void => {
    const cur = this.#cur as Relaying;
    if (!this.#cmdSent && cur.relay.done && cur.relay.summary.error && cur.b === this.#primary && this.#withhold(cur.relay.summary.error.code)) {
      // Not the client's to see: the command did nothing and runs again on the new primary (#relayed).
      this.#withheld = new BackendFailed(`${cur.b.id} answered ${cur.relay.summary.error.code} (${cur.relay.summary.error.message}) during a change of primary`, { sent: true, connection: cur.b, refused: cur.relay.summary.error.code === 1290 });
      return;
    }
    this.#cmdSent = true;
    if (!this.#write(bufs)) {
      const b = cur.b;
      b.pause();
      this.#socket.once('drain', () => b.resume());
    }
    if (cur.relay.awaitingInfile && !this.#infile) {
      this.#infile = { backend: cur.b, relay: cur.relay };
      setImmediate(() => this.#drain());
    }
  };

  #sendError(e: { code: number; state: string }, message: string, seq: number): void {
    this.#write(errPacket(e, message, seq));
  }

  #protocolError(kind: string, e: { code: number; state: string }, message: string, seq: number): void {
    this.ctx.metrics.protocolErrors.inc({ cluster: this.ctx.cluster, kind });
    this.ctx.log.info({ event: 'sql_protocol_error', cluster: this.ctx.cluster, session: this.id, kind, err: message }, `SQL endpoint: session ${this.id}: ${message}`);
    this.#sendError(e, message, seq);
    this.close(kind);
  }

  #fail(e: unknown, seq: number): void {
    if (this.state === 'closed') return;
    if (e instanceof ClientError) {
      this.#sendError(e.err, e.message, seq);
      if (e.fatal) this.close(e.message);
      return;
    }
    if (e instanceof BackendRefused) {
      this.#sendError({ code: e.err.code, state: e.err.state }, e.err.message, seq);
      return;
    }
    if (e instanceof MalformedPacket) {
      this.ctx.metrics.protocolErrors.inc({ cluster: this.ctx.cluster, kind: 'malformed' });
      this.#sendError(ER.MALFORMED, `Malformed communication packet: ${e.message}`, seq);
      return;
    }
    // A backend lost mid-command (or an internal failure): the session cannot go on consistently.
    this.ctx.log.warn({ event: 'sql_session_failed', cluster: this.ctx.cluster, session: this.id, err: (e as Error).message }, `SQL endpoint: session ${this.id} closed: ${(e as Error).message}`);
    this.#sendError(ER.UNKNOWN, `Regent SQL endpoint: ${(e as Error).message}`, seq);
    this.close((e as Error).message);
  }

  close(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#primary?.quit();
    this.#replica?.quit();
    this.#socket.end();
    this.#socket.destroy();
    this.ctx.log.debug({ event: 'sql_session_closed', cluster: this.ctx.cluster, session: this.id, why });
    this.ctx.closed(this);
  }

  // ---- handshake and authentication -------------------------------------------------------

  async #handshake(): Promise<void> {
    let p = await this.#nextPacket();
    let hs = parseHandshakeResponse(p.payload);
    if (hs.sslRequest) {
      if (!this.ctx.clientTls) throw new ClientError(ER.HANDSHAKE, 'TLS is not configured on this endpoint', true);
      await this.#startTls();
      p = await this.#nextPacket();
      hs = parseHandshakeResponse(p.payload);
    }
    this.state = 'authenticating';
    this.#hsSeq = p.lastSeq + 1;
    if (this.ctx.settings.tlsMode === 'required' && !this.#tls) {
      this.ctx.metrics.authFailures.inc({ cluster: this.ctx.cluster, reason: 'tls_required' });
      throw new ClientError(ER.SECURE_TRANSPORT_REQUIRED, 'Connections using insecure transport are prohibited: this endpoint requires TLS (router.sql.tls.mode: required)', true);
    }
    this.#caps = (hs.caps & (ENDPOINT_CAPS | CAP.SSL)) >>> 0;
    this.user = hs.user;
    this.#charset = hs.charset;
    this.#attrs = hs.attrs;
    let seq = p.lastSeq + 1;
    let token = hs.authResponse;
    if (hs.plugin && hs.plugin !== NATIVE_PLUGIN && this.#caps & CAP.PLUGIN_AUTH) {
      // The client answered for another plugin: ask for mysql_native_password on our scramble.
      this.#write(frame(buildAuthSwitch(NATIVE_PLUGIN, this.#scramble), seq));
      const reply = await this.#nextPacket();
      token = Buffer.from(reply.payload);
      seq = reply.lastSeq + 1;
      this.#hsSeq = seq;
    }
    this.#credential = await this.#verify(hs.user, token, seq);
    this.#schema = hs.database;
    const first = await this.#loginBackend(seq).catch((e) => {
      if (e instanceof BackendRefused) {
        this.ctx.metrics.authFailures.inc({ cluster: this.ctx.cluster, reason: 'backend_refused' });
        if (e.err.code === 1045) void this.ctx.refreshAccounts();
        throw new ClientError({ code: e.err.code, state: e.err.state }, e.err.message, true);
      }
      throw e;
    });
    this.#write(okPacket(seq, first.lastStatus || STATUS.AUTOCOMMIT));
    if (this.#caps & CAP.COMPRESS) {
      this.#decompress = new Decompressor();
      // Bytes that came right after the handshake were already compressed.
      const pending = this.#reader.takeAll();
      if (pending.length > 0) for (const b of this.#decompress.push(pending)) this.#reader.push(b);
    }
    this.state = 'idle';
    this.ctx.log.debug({ event: 'sql_session_started', cluster: this.ctx.cluster, session: this.id, user: this.user, remote: this.remote, tls: this.#tls, compress: Boolean(this.#decompress) });
  }

  async #startTls(): Promise<void> {
    const raw = this.#socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    // The client's TLS hello may have come in the same chunk as its SSL request: those bytes are
    // in the packet reader, not the socket. Put them back in front of the stream, where the TLS
    // socket reads what was buffered before it took over (paused, so nothing flows past it).
    raw.pause();
    if (this.#reader.buffered > 0) raw.unshift(this.#reader.takeAll());
    const secure = new TLSSocket(raw, { isServer: true, secureContext: this.ctx.clientTls });
    this.#socket = secure;
    this.#tls = true;
    this.#attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => resolve());
      secure.once('error', reject);
    });
  }

  async #verify(user: string, token: Buffer, seq: number): Promise<BackendCredential> {
    let check = checkLogin(this.ctx.accounts(), user, this.remote, token, this.#scramble, (u) => this.ctx.password(u));
    if (!check.ok && (check.reason === 'unknown_user' || check.reason === 'bad_password')) {
      // The account may be new or its password changed since the cache was read.
      if (await this.ctx.refreshAccounts()) check = checkLogin(this.ctx.accounts(), user, this.remote, token, this.#scramble, (u) => this.ctx.password(u));
    }
    if (check.ok) return check.credential;
    this.ctx.metrics.authFailures.inc({ cluster: this.ctx.cluster, reason: check.reason });
    if (check.reason === 'plugin_unsupported')
      throw new ClientError(
        ER.NOT_SUPPORTED_AUTH_MODE,
        `Account '${user}' authenticates with ${check.plugin ?? 'an unknown plugin'}: Regent's SQL endpoint verifies logins from mysql_native_password hashes only. Configure the account's password as a secret under router.sql.passwords.${user}, or switch the account to mysql_native_password`,
        true,
      );
    if (check.reason === 'account_locked') throw new ClientError({ code: 4151, state: 'HY000' }, `Access denied, this account is locked`, true);
    void seq;
    throw new ClientError(ER.ACCESS_DENIED, `Access denied for user '${user}'@'${this.remote}' (using password: ${token.length > 0 ? 'YES' : 'NO'})`, true);
  }

  // ---- backends ----------------------------------------------------------------------

  #backendCaps(): number {
    // The client's choices, less what only concerns the client's hop, plus session tracking (the
    // router's source of last_gtid and session state) and multi-results (harmless, needed by CALL).
    return ((this.#caps & ~HOP_CAPS) | CAP.SESSION_TRACK | CAP.PROTOCOL_41 | CAP.PLUGIN_AUTH | CAP.SECURE_CONNECTION | CAP.TRANSACTIONS) >>> 0;
  }

  #init(): string[] {
    return [this.ctx.dialect().sessionTracking];
  }

  async #open(id: string, role: 'primary' | 'replica'): Promise<BackendConnection> {
    const addr = this.ctx.address(id);
    if (!addr) throw new BackendFailed(`no address for ${id}`);
    const b = await BackendConnection.open({
      id,
      host: addr.host,
      port: addr.port,
      user: this.user,
      credential: this.#credential!,
      database: this.#schema,
      charset: this.#charset,
      caps: this.#backendCaps(),
      attrs: this.#attrs,
      tls: this.ctx.backendTls,
      connectTimeoutMs: this.ctx.settings.connectTimeoutMs,
      maxPacket: Math.max(this.ctx.settings.maxPacketBytes, 1 << 24),
      init: this.#init(),
    });
    this.ctx.backendOpened(b, role);
    b.onClose(() => {
      for (const p of this.#prepared.values()) {
        p.on.delete(b);
        p.typesOn.delete(b);
        if (p.cursorOn === b) p.cursorOn = undefined;
      }
      if (this.#primary === b) {
        this.#primary = undefined;
        // An open transaction died with the connection: replayed before the next statement runs.
        if (this.#trx === 'primary') this.#lost = true;
      }
      if (this.#replica === b) {
        this.#replica = undefined;
        if (typeof this.#trx === 'object' && this.#trx.replica === b.id && this.#inflight !== b) {
          this.#trx = 'none';
          this.#lostReadOnly = true;
        }
      }
      if (this.#last === b) this.#last = undefined;
    });
    await this.#replay(b);
    return b;
  }

  /** Brings a backend connection up to the session's recorded state. */
  async #replay(b: BackendConnection): Promise<void> {
    if (b.stateVersion === this.#version) return;
    const vars = [...this.#vars].filter(([k]) => !NOT_REPLAYED.has(k));
    // Character sets before collations, as SET NAMES would leave them.
    vars.sort(([a], [c]) => Number(a.startsWith('collation')) - Number(c.startsWith('collation')));
    if (vars.length > 0) await b.run(setSessionVariables(vars));
    if (this.#schema && b.stateVersion > 0) await b.run(useSchema(this.#schema));
    for (const sql of this.#replaySql) await b.run(sql);
    if (this.#setOption !== undefined) {
      const r = await b.exchange(frame(Buffer.from([COM.SET_OPTION, this.#setOption & 0xff, this.#setOption >> 8]), 0), 'ok');
      if (r.summary.error) throw new BackendRefused(r.summary.error);
    }
    b.stateVersion = this.#version;
  }

  /**
   * The backend a login is completed on (the server checks the account and the default schema).
   * The primary, as a rule; while writes are held (the primary unreachable, frozen or being
   * replaced) a replica in the pool instead, so read-only sessions can log in during a primary's
   * outage as through the L4 reader endpoint. The primary connection then opens on the first
   * statement that needs it, waiting for a writer as any statement does. A primary that has not
   * let the login through within LOGIN_HEDGE_MS (frozen or partitioned before anyone decided so:
   * the hang tolerance runs) or failed it gets a replica asked as well, and the first login wins.
   */
  async #loginBackend(seq: number): Promise<BackendConnection> {
    const table = this.ctx.table();
    const replica = () => table.readers[this.ctx.cursor() % Math.max(1, table.readers.length)];
    if (table.writer.mode === 'hold' && replica() !== undefined) {
      try {
        return await this.#loginReplica(replica()!);
      } catch (e) {
        if (e instanceof BackendRefused) throw e;
        return this.#openPrimary(seq);
      }
    }
    if (table.readers.length === 0) return this.#openPrimary(seq);
    const attempt = this.#connectPrimary();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      attempt.then(
        (b) => ({ b }),
        (e: unknown) => ({ e }),
      ),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LOGIN_HEDGE_MS))),
    ]);
    clearTimeout(timer);
    if (first && 'b' in first) return (this.#primary = first.b);
    // The server's refusal of the account is the answer; anything else is the primary's trouble.
    if (first && (first.e instanceof BackendRefused || first.e instanceof ClientError)) throw first.e;
    let b: BackendConnection;
    try {
      b = await this.#loginReplica(replica()!);
    } catch (e) {
      if (e instanceof BackendRefused) throw e;
      return (this.#primary = await attempt);
    }
    // A primary connection that comes later is the session's, unless a statement opened its own meanwhile.
    attempt.then(
      (p) => {
        if (this.#primary === undefined && !this.#busy && this.state !== 'closed') this.#primary = p;
        else p.quit();
      },
      () => undefined,
    );
    return b;
  }

  async #loginReplica(id: string): Promise<BackendConnection> {
    const b = await this.#open(id, 'replica');
    this.#replica = b;
    return b;
  }

  async #openPrimary(seq: number): Promise<BackendConnection> {
    void seq;
    return (this.#primary = await this.#connectPrimary());
  }

  /** A connection to the writer target (waiting while writes are held), not yet the session's. */
  async #connectPrimary(): Promise<BackendConnection> {
    const target = await this.ctx.waitWriter(this.ctx.settings.holdTimeoutMs);
    if (!target) {
      const w = this.ctx.table().writer;
      throw new ClientError(ER.UNKNOWN, `Regent SQL endpoint: no primary within router.holdTimeoutMs (${this.ctx.settings.holdTimeoutMs} ms)${w.mode === 'hold' ? `: ${w.reason}` : ''}`, true);
    }
    return this.#open(target, 'primary');
  }

  /** The primary connection, to the current writer target (waiting while writes are held). */
  async #primaryConn(): Promise<BackendConnection> {
    const p0 = this.#primary;
    if (p0 && !p0.closed && this.#trx === 'primary' && !this.#lost && this.ctx.mayFinishOn(p0.id)) {
      // Writes are held for a switchover: an open transaction finishes where it runs (the
      // switchover waits for it before read_only); new ones wait below.
      if (p0.stateVersion !== this.#version) await this.#replay(p0);
      return p0;
    }
    const deadline = performance.now() + this.ctx.settings.holdTimeoutMs;
    for (;;) {
      const target = await this.ctx.waitWriter(Math.max(0, deadline - performance.now()));
      if (!target) throw new ClientError(ER.UNKNOWN, `Regent SQL endpoint: no primary within router.holdTimeoutMs (${this.ctx.settings.holdTimeoutMs} ms)`);
      const p = this.#primary;
      if (p && !p.closed && p.id === target && !this.#lost) {
        if (p.stateVersion !== this.#version) await this.#replay(p);
        return p;
      }
      if (p) {
        if (this.#pinned) throw new ClientError(ER.UNKNOWN, `Regent SQL endpoint: the primary changed and this session holds state that cannot move (${this.#pinned})`, true);
        // quit() marks an open transaction lost (the close listener): it is replayed below.
        p.quit();
        this.#primary = undefined;
      }
      let b: BackendConnection;
      try {
        b = await this.#open(target, 'primary');
      } catch (e) {
        // The routing table still names a primary that just died: wait for the next decision.
        if (!(e instanceof BackendFailed) || performance.now() >= deadline) throw e;
        await new Promise((r) => setTimeout(r, 25));
        continue;
      }
      this.#primary = b;
      if (p && !this.#lost) this.ctx.recovered('moved', this.id, `${p.id} -> ${b.id}`);
      if (this.#lost) await this.#replayTransaction(b);
      return b;
    }
  }

  /**
   * Replays the interrupted transaction on `b`, statement by statement, comparing each result's
   * checksum with what the client received. Any difference (or a transaction that cannot be
   * replayed) rolls it back and fails the client's command with a clear error; the session goes on.
   */
  async #replayTransaction(b: BackendConnection): Promise<void> {
    const log = this.#log;
    this.#lost = false;
    const refuse = async (why: string): Promise<never> => {
      this.#trx = 'none';
      this.#log = undefined;
      await b.run(rollbackStatement()).catch(() => undefined);
      this.ctx.recovered('replay_refused', this.id, why);
      throw new ClientError(ER_TRX_REPLAY, `Regent SQL endpoint: the primary changed during this transaction and it could not be replayed on ${b.id}: ${why}. The transaction was rolled back: run it again`);
    };
    if (!log) return refuse('its statements were not recorded');
    if (log.refused) return refuse(log.refused);
    if (log.statements.length === 0 && !this.#autocommit) {
      // autocommit=0 with nothing run yet: a new transaction starts by itself.
      this.#trx = 'none';
      return;
    }
    for (let i = 0; i < log.statements.length; i++) {
      const st = log.statements[i]!;
      const sum = new ResultChecksum();
      let raw = st.raw;
      let adHoc: number | undefined;
      if (st.statement !== undefined) {
        // Prepared again on the new primary: the session's statement when the client still has it,
        // else just for this replay (a driver that prepares, executes and closes each time).
        const s = this.#prepared.get(st.statement);
        let id = s && s.sql === st.sql ? await this.#preparedOn(s, b) : undefined;
        if (id === undefined) {
          const r = await b.exchange(frame(Buffer.concat([Buffer.from([COM.STMT_PREPARE]), Buffer.from(st.sql, 'utf8')]), 0), 'prepare');
          id = adHoc = r.summary.prepared?.stmtId;
        }
        if (id === undefined) return refuse(`statement ${i + 1} of ${log.statements.length} could not be prepared again`);
        raw = Buffer.from(st.raw);
        raw.writeUInt32LE(id >>> 0, HEADER + 1);
      }
      const r = await b.exchange(raw, 'result', { checksum: sum });
      if (adHoc !== undefined) b.send(frame(Buffer.from([COM.STMT_CLOSE, adHoc & 0xff, (adHoc >>> 8) & 0xff, (adHoc >>> 16) & 0xff, (adHoc >>> 24) & 0xff]), 0));
      if (sum.digest() !== st.checksum) {
        const text = st.sql.length > 80 ? `${st.sql.slice(0, 77)}...` : st.sql;
        return refuse(`statement ${i + 1} of ${log.statements.length} (${text}) returned ${r.summary.error ? `error ${r.summary.error.code}` : 'a different result'} than the client received before (another session changed the data meanwhile)`);
      }
    }
    this.#trx = 'primary';
    this.ctx.recovered('replayed', this.id, `${log.statements.length} statement(s) on ${b.id}`);
  }

  async #replicaConn(id: string): Promise<BackendConnection | undefined> {
    const r = this.#replica;
    if (r && !r.closed && r.id === id) {
      if (r.stateVersion !== this.#version) await this.#replay(r);
      return r;
    }
    r?.quit();
    this.#replica = undefined;
    try {
      const b = await this.#open(id, 'replica');
      this.#replica = b;
      return b;
    } catch (e) {
      this.ctx.log.info({ event: 'sql_replica_unavailable', cluster: this.ctx.cluster, session: this.id, instance: id, err: (e as Error).message }, `SQL endpoint: replica ${id} unavailable for session ${this.id}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** The routing table changed: connections to a former primary or to a replica out of the pool go. */
  tableChanged(table: RoutingTable, replacing: { fenced: ReadonlySet<string>; changing: boolean }): void {
    if (this.state === 'closed') return;
    const p = this.#primary;
    if (p && primaryLeaving(p.id, table.writer, replacing)) {
      const fenced = replacing.fenced.has(p.id);
      if (fenced) {
        // Nothing may reach a fenced primary: a command in flight there is handled as lost
        // (retried, replayed or reported: #afterLoss), an open transaction replayed later.
        if (this.#pinned && !p.closed) this.close(`primary ${p.id} was fenced and the session holds state on it (${this.#pinned})`);
        else p.close(`${p.id} was fenced`);
      } else if (table.writer.mode === 'route' && this.#inflight !== p) {
        // The switchover was published: the session moves before its next statement (a
        // transaction still open here is replayed there). A statement in flight finishes first.
        if (this.#pinned) this.close(`primary ${p.id} is no longer the writer and the session holds state on it (${this.#pinned})`);
        else {
          p.quit();
          this.#primary = undefined;
        }
      }
      // Otherwise writes are held for a switchover and the server is alive: what runs there finishes.
    }
    const r = this.#replica;
    if (r && !table.readers.includes(r.id) && !(typeof this.#trx === 'object') && !(this.#busy && this.#last === r)) {
      r.quit();
      this.#replica = undefined;
    }
  }

  // ---- commands -----------------------------------------------------------------------

  /**
   * Starts a command. The statements (COM_QUERY, COM_STMT_EXECUTE) return undefined when they
   * started on a connection that was ready, and end through #commandDone / #commandFailed without
   * a promise; everything else returns the promise of its async handler.
   */
  #dispatch(p: Packet): Promise<void> | undefined {
    const payload = p.payload;
    if (payload.length === 0) throw new ClientError(ER.MALFORMED, 'Malformed communication packet: empty command');
    // A new command starts a new sequence; with compression the compressed sequence follows the client's.
    if (this.#decompress) this.#cseq = (this.#decompress.lastSeq + 1) & 0xff;
    const cmd = payload[0]!;
    if (cmd === COM.QUERY) return this.#query(p);
    if (cmd === COM.STMT_EXECUTE) return this.#execute(p);
    return this.#command(p);
  }

  async #command(p: Packet): Promise<void> {
    const payload = p.payload;
    const cmd = payload[0]!;
    switch (cmd) {
      case COM.QUIT:
        this.close('COM_QUIT');
        return;
      case COM.INIT_DB:
        return this.#sessionCommand(p, 'ok');
      case COM.PING:
      case COM.REFRESH:
      case COM.DEBUG:
      case COM.SHUTDOWN:
        await this.#onPrimary(p, 'ok', 'session_command');
        return;
      case COM.STATISTICS:
        await this.#onPrimary(p, 'one', 'session_command');
        return;
      case COM.PROCESS_INFO:
        await this.#onPrimary(p, 'result', 'session_command');
        return;
      case COM.FIELD_LIST:
        await this.#onPrimary(p, 'fieldlist', 'read');
        return;
      case COM.PROCESS_KILL:
        return this.#kill(p, payload.length >= 5 ? payload.readUInt32LE(1) : -1, false);
      case COM.SET_OPTION:
        return this.#setOptionCommand(p);
      case COM.RESET_CONNECTION:
        return this.#resetConnection(p);
      case COM.CHANGE_USER:
        return this.#changeUser(p);
      case COM.STMT_PREPARE:
        return this.#prepare(p);
      case COM.STMT_SEND_LONG_DATA:
        return this.#longData(p);
      case COM.STMT_CLOSE:
        return this.#closeStmt(p);
      case COM.STMT_RESET:
        return this.#resetStmt(p);
      case COM.STMT_FETCH:
        return this.#fetch(p);
      default:
        this.ctx.metrics.protocolErrors.inc({ cluster: this.ctx.cluster, kind: 'unknown_command' });
        throw new ClientError(ER.UNKNOWN_COM, `Unknown command 0x${cmd.toString(16).padStart(2, '0')}: Regent's SQL endpoint does not relay it`);
    }
  }

  /** Runs a client command on `b`, streaming the answer, and learns from what came back. */
  #run(b: BackendConnection, raw: Buffer, expect: Expect, stmtId?: number, checksum?: ResultChecksum): Promise<ResponseSummary> {
    return new Promise((resolve, reject) => this.#relay(b, raw, expect, stmtId, resolve, reject, checksum));
  }

  /** #run with callbacks: `done` once the session has learned from the complete response, `fail` when the backend is lost. */
  #relay(b: BackendConnection, raw: Buffer, expect: Expect, stmtId: number | undefined, done: (s: ResponseSummary) => void, fail: (e: unknown) => void, checksum?: ResultChecksum): void {
    const relay = new ResponseRelay(expect, checksum ? { clientSessionTrack: (this.#caps & CAP.SESSION_TRACK) !== 0, stmtId, checksum } : { clientSessionTrack: (this.#caps & CAP.SESSION_TRACK) !== 0, stmtId });
    this.#last = b;
    this.#inflight = b;
    const cur = this.#cur;
    cur.b = b;
    cur.relay = relay;
    cur.done = done;
    cur.fail = fail;
    b.relay(raw, relay, this.#sink, this.#relayed, this.#relayFailed);
  }

  #relayed = (summary: ResponseSummary): void => {
    const cur = this.#cur as Relaying;
    this.#inflight = undefined;
    const w = this.#withheld;
    if (w) {
      this.#withheld = undefined;
      // The connection goes (a transaction open on it is rolled back there) and the command is
      // handled as if the connection had been lost: refused means it did nothing.
      cur.b.close('left behind by a change of primary');
      cur.fail(w);
      return;
    }
    this.#learn(cur.b, summary);
    cur.done(summary);
  };

  #relayFailed = (e: Error): void => {
    this.#inflight = undefined;
    (this.#cur as Relaying).fail(e);
  };

  /**
   * Errors of the primary that mean "this server is being replaced" rather than anything about the
   * statement: read_only (1290) while writes are held for a change of primary, or the connection
   * killed (1927) / the server shutting down (1053) then. Only a killed or refused command that did
   * nothing is retried (#afterLoss decides).
   */
  #withhold(code: number): boolean {
    const w = this.ctx.table().writer;
    const changing = w.mode === 'hold' || (this.#primary !== undefined && w.target !== this.#primary.id);
    if (!changing) return false;
    if (code === 1290) return true;
    // Killed: only when nothing it did can have committed (a COMMIT or autocommit write killed mid-way is in doubt).
    if (code === 1927 || code === 1053) return true;
    return false;
  }

  #learn(b: BackendConnection, summary: ResponseSummary): void {
    const status = summary.status;
    if (status !== undefined) {
      const inTrans = Boolean(status & STATUS.IN_TRANS);
      if (b === this.#primary) {
        this.#trx = inTrans ? 'primary' : 'none';
        this.#autocommit = Boolean(status & STATUS.AUTOCOMMIT);
        if (!inTrans) this.#log = undefined;
      } else this.#trx = inTrans ? { replica: b.id } : 'none';
    }
    for (const t of summary.track) {
      if (t.schema !== undefined && t.schema !== this.#schema) {
        this.#schema = t.schema || undefined;
        this.#changed(b);
      }
      for (const [k, v] of t.vars ?? []) {
        if (k === 'last_gtid') {
          if (v && b === this.#primary) this.#wrote(v);
          continue;
        }
        if (NOT_REPLAYED.has(k)) continue;
        if (this.#vars.get(k) === v) continue;
        this.#vars.delete(k);
        this.#vars.set(k, v);
        this.#changed(b);
      }
      if (t.gtids && b === this.#primary) this.#wrote(t.gtids);
    }
  }

  /** Session state changed by a statement that ran on `b`: `b` has it, the others need it replayed. */
  #changed(b: BackendConnection): void {
    const upToDate = b.stateVersion === this.#version;
    this.#version++;
    if (upToDate) b.stateVersion = this.#version;
  }

  #wrote(text: string): void {
    let g: GtidState;
    try {
      g = this.ctx.parseGtid(text);
    } catch {
      this.#blind = true;
      return;
    }
    this.#written = this.#written ? this.#written.union(g) : g;
    this.ctx.noteWrite(g);
  }

  #count(to: 'primary' | 'replica', reason: RouteReason): void {
    this.ctx.statements.add(to, reason);
  }

  #route(cls: Classification): Route {
    const cursor = this.ctx.cursor();
    const r = route(
      cls,
      { trx: this.#trx, autocommit: this.#autocommit, pinned: this.#pinned, replica: this.#replica && !this.#replica.closed ? this.#replica.id : undefined, written: this.#written, blind: this.#blind },
      {
        table: this.ctx.table(),
        applied: this.ctx.applied(),
        lag: this.ctx.lag(),
        mode: this.ctx.settings.causalReads,
        globalWritten: this.ctx.settings.causalReads === 'global' ? this.ctx.globalWritten() : undefined,
        waitTimeoutMs: this.ctx.settings.causalWaitTimeoutMs,
        hints: this.ctx.settings.hints,
        cursor,
      },
    );
    if (r.cursor !== cursor) this.ctx.cursor(r.cursor);
    return r.route;
  }

  /**
   * The backend of a route when reaching it needs no I/O: the connection is open, has the
   * session's state, is still where the routing table points, and no causal wait is due. The
   * common case, decided without a promise; `#target` does the rest.
   */
  #ready(r: Route): Target | undefined {
    if (r.to === 'replica') {
      const b = this.#replica;
      return !r.wait && b !== undefined && !b.closed && b.id === r.id && b.stateVersion === this.#version ? { b, to: 'replica', reason: r.reason } : undefined;
    }
    if (r.to === 'primary') {
      const b = this.#primary;
      const w = this.ctx.table().writer;
      return b !== undefined && !b.closed && w.mode === 'route' && w.target === b.id && b.stateVersion === this.#version ? { b, to: 'primary', reason: r.reason } : undefined;
    }
    return undefined;
  }

  /** The backend a routed statement runs on (a replica when it is there and caught up, else the primary). */
  async #target(r: Route): Promise<Target> {
    if (r.to === 'last') {
      const last = this.#last && !this.#last.closed ? this.#last : await this.#primaryConn();
      return { b: last, to: last === this.#primary ? 'primary' : 'replica', reason: r.reason };
    }
    if (r.to === 'replica') {
      const b = await this.#replicaConn(r.id);
      if (b && (!r.wait || (await this.#causalWait(b, r.wait)))) return { b, to: 'replica', reason: r.reason };
      if (b && typeof this.#trx === 'object') return { b, to: 'replica', reason: r.reason };
      return { b: await this.#primaryConn(), to: 'primary', reason: b ? 'causal_wait' : 'no_replica' };
    }
    return { b: await this.#primaryConn(), to: 'primary', reason: r.reason };
  }

  /**
   * Waits (up to the configured time) until the replica has applied `gtid`. A replica connection
   * that breaks or is dropped meanwhile (the replica died, or left the pool) is a failed wait, not
   * the client's error: the statement was not sent there, and goes to the primary instead.
   */
  async #causalWait(b: BackendConnection, gtid: GtidState): Promise<boolean> {
    const started = performance.now();
    const sql = this.ctx.dialect().waitForGtidText(gtid, this.ctx.settings.causalWaitTimeoutMs / 1000);
    let outcome: 'caught_up' | 'timeout' | 'error' = 'error';
    try {
      const { rows } = await b.run(sql);
      outcome = rows[0]?.[0] === '0' ? 'caught_up' : 'timeout';
    } catch {
      outcome = 'error';
    }
    this.ctx.metrics.causalWaits.inc({ cluster: this.ctx.cluster, outcome });
    this.ctx.metrics.causalWaitSeconds.observe({ cluster: this.ctx.cluster }, (performance.now() - started) / 1000);
    if (outcome === 'caught_up') this.ctx.learnApplied(b.id, gtid);
    return outcome === 'caught_up';
  }

  /** COM_QUERY: undefined when it started at once (see #dispatch), else the promise of the rest. */
  #query(p: Packet): Promise<void> | undefined {
    const sql = p.payload.toString('utf8', 1);
    const cls = classify(sql);
    if (cls.kill) return this.#kill(p, cls.kill.id, cls.kill.query);
    this.#cmdCls = cls;
    if (this.#lostReadOnly) {
      this.#lostReadOnly = false;
      throw new ClientError(ER_TRX_REPLAY, 'Regent SQL endpoint: the replica running this READ ONLY transaction was lost; the transaction was rolled back: run it again');
    }
    const r = this.#route(cls);
    // Statements the session replays later need their outcome looked at, and statements of a
    // transaction their result checksummed for a replay: not on the fast path.
    const t = cls.replay || this.#logs(cls) ? undefined : this.#ready(r);
    if (!t) return this.#queryWhenReady(p, sql, cls, r);
    this.#statementStarts(cls, t);
    this.#relay(t.b, p.raw, 'result', undefined, this.#commandDone, this.#commandFailed);
    return undefined;
  }

  async #queryWhenReady(p: Packet, sql: string, cls: Classification, r: Route): Promise<void> {
    const t = await this.#target(r);
    this.#statementStarts(cls, t);
    let checksum: ResultChecksum | undefined;
    if (t.b === this.#primary && this.#logs(cls)) {
      this.#log ??= new ReplayLog(this.ctx.settings.transactionReplay ?? DEFAULT_REPLAY);
      if (this.#log.admits(sql)) checksum = new ResultChecksum();
    }
    const log = this.#log;
    const summary = await this.#run(t.b, p.raw, 'result', undefined, checksum);
    if (checksum && log && this.#log === log && this.#trx === 'primary') {
      if (summary.localInfile) log.refuse('it loaded a client file (LOAD DATA LOCAL INFILE)');
      else log.add({ raw: Buffer.from(p.raw), sql, checksum: checksum.digest() });
    }
    if (!summary.error && cls.replay && t.b === this.#primary) {
      this.#replaySql.push(sql);
      this.#changed(t.b);
    }
  }

  /** Whether a statement belongs to a transaction on the primary that may have to be replayed. */
  #logs(cls: Classification): boolean {
    if (cls.kind === 'end') return false;
    return this.#trx === 'primary' || cls.kind === 'begin' || (!this.#autocommit && this.#trx === 'none');
  }

  #statementStarts(cls: Classification, t: Target): void {
    this.#count(t.to, t.reason);
    if (cls.pin && t.to === 'primary') this.#pinned ??= cls.pin;
    if (cls.trackingChanged) this.#blind = true;
  }

  async #onPrimary(p: Packet, expect: Expect, reason: RouteReason): Promise<ResponseSummary> {
    const b = await this.#primaryConn();
    this.#count('primary', reason);
    return this.#run(b, p.raw, expect);
  }

  async #sessionCommand(p: Packet, expect: Expect): Promise<void> {
    const s = await this.#onPrimary(p, expect, 'session_command');
    if (!s.error && p.payload[0] === COM.INIT_DB) {
      const db = p.payload.toString('utf8', 1);
      if (db !== this.#schema) {
        this.#schema = db;
        this.#changed(this.#primary!);
      }
    }
  }

  async #setOptionCommand(p: Packet): Promise<void> {
    if (p.payload.length < 3) throw new MalformedPacket('COM_SET_OPTION without its option');
    const s = await this.#onPrimary(p, 'ok', 'session_command');
    if (!s.error) {
      this.#setOption = p.payload.readUInt16LE(1);
      this.#changed(this.#primary!);
    }
  }

  async #resetConnection(p: Packet): Promise<void> {
    const b = await this.#primaryConn();
    this.#count('primary', 'session_command');
    const s = await this.#run(b, p.raw, 'ok');
    if (s.error) return;
    // The server forgot the session's state; so does the router (the schema stays, as on the server).
    this.#vars.clear();
    this.#replaySql = [];
    this.#setOption = undefined;
    this.#prepared.clear();
    this.#pinned = undefined;
    this.#blind = false;
    this.#trx = 'none';
    this.#autocommit = true;
    this.#replica?.quit();
    this.#replica = undefined;
    for (const sql of this.#init()) await b.run(sql);
    this.#version++;
    b.stateVersion = this.#version;
  }

  async #changeUser(p: Packet): Promise<void> {
    const cu = parseChangeUser(p.payload, this.#caps);
    let token = cu.authResponse;
    let seq = p.lastSeq + 1;
    if (token.length !== 20 && token.length !== 0) {
      this.#scramble = newScramble();
      this.#write(frame(buildAuthSwitch(NATIVE_PLUGIN, this.#scramble), seq));
      const reply = await this.#nextPacket();
      token = Buffer.from(reply.payload);
      seq = reply.lastSeq + 1;
    }
    const credential = await this.#verify(cu.user, token, seq);
    this.#primary?.quit();
    this.#replica?.quit();
    this.#primary = this.#replica = this.#last = undefined;
    this.user = cu.user;
    this.#credential = credential;
    this.#schema = cu.database;
    if (cu.charset) this.#charset = cu.charset & 0xff;
    if (cu.attrs) this.#attrs = cu.attrs;
    this.#vars.clear();
    this.#replaySql = [];
    this.#setOption = undefined;
    this.#prepared.clear();
    this.#pinned = undefined;
    this.#blind = false;
    this.#trx = 'none';
    this.#autocommit = true;
    this.#version++;
    try {
      await this.#openPrimary(seq);
    } catch (e) {
      if (e instanceof BackendRefused) throw new ClientError({ code: e.err.code, state: e.err.state }, e.err.message, true);
      throw e;
    }
    this.#write(okPacket(seq, this.#primary!.lastStatus || STATUS.AUTOCOMMIT));
  }

  async #kill(p: Packet, id: number, queryOnly: boolean): Promise<void> {
    const target = this.ctx.session(id);
    const thread = target?.primary?.threadId;
    if (!target || thread === undefined) throw new ClientError(ER.NO_SUCH_THREAD, `Unknown thread id: ${id}`);
    const b = await this.#primaryConn();
    this.#count('primary', 'session_bound');
    // The client knows the router's session ids; the primary knows its own thread ids.
    await this.#run(b, frame(queryPayload(killStatement(thread, queryOnly)), 0), 'result');
    if (!queryOnly && target !== this) target.close('killed');
  }

  // ---- prepared statements ----------------------------------------------------------------

  #stmt(payload: Buffer): Prepared {
    if (payload.length < 5) throw new MalformedPacket('statement command without a statement id');
    let id = payload.readUInt32LE(1);
    if (id === 0xffffffff && this.#lastPrepared !== undefined) id = this.#lastPrepared;
    const s = this.#prepared.get(id);
    if (!s) throw new ClientError(ER.UNKNOWN_STMT_HANDLER, `Unknown prepared statement handler (${id}) given to the SQL endpoint`);
    return s;
  }

  async #prepare(p: Packet): Promise<void> {
    const sql = p.payload.toString('utf8', 1);
    const b = await this.#primaryConn();
    const id = ++this.#stmtSeq;
    this.#count('primary', 'session_command');
    const s = await this.#run(b, p.raw, 'prepare', id);
    if (s.error || !s.prepared) return;
    const cls = classify(sql);
    this.#prepared.set(id, { id, sql, cls, params: s.prepared.params, columns: s.prepared.columns, on: new Map([[b, s.prepared.stmtId]]), typesOn: new Set(), longData: [] });
    this.#lastPrepared = id;
  }

  /** The statement's id on `b`, preparing it there first when needed. */
  async #preparedOn(s: Prepared, b: BackendConnection): Promise<number | undefined> {
    const known = s.on.get(b);
    if (known !== undefined) return known;
    const r = await b.exchange(frame(Buffer.concat([Buffer.from([COM.STMT_PREPARE]), Buffer.from(s.sql, 'utf8')]), 0), 'prepare');
    if (r.summary.error || !r.summary.prepared) return undefined;
    s.on.set(b, r.summary.prepared.stmtId);
    s.typesOn.delete(b);
    return r.summary.prepared.stmtId;
  }

  /** COM_STMT_EXECUTE: undefined when it started at once (see #dispatch), else the promise of the rest. */
  #execute(p: Packet): Promise<void> | undefined {
    const s = this.#stmt(p.payload);
    this.#cmdCls = s.cls;
    const r = this.#route(s.cls);
    // In a transaction on the primary the result is checksummed for a replay: not on the fast path.
    const t = this.#logs(s.cls) ? undefined : this.#ready(r);
    const id = t && s.on.get(t.b);
    if (t === undefined || id === undefined) return this.#executeWhenReady(p, s, r, t);
    this.#executeOn(p, s, t, id, this.#commandDone, this.#commandFailed);
    return undefined;
  }

  /** The statement prepared where it runs first (a new replica connection, a new primary), then executed. */
  async #executeWhenReady(p: Packet, s: Prepared, r: Route, ready: Target | undefined): Promise<void> {
    let t = ready ?? (await this.#target(r));
    let backendId = s.on.get(t.b) ?? (await this.#preparedOn(s, t.b));
    if (backendId === undefined && t.b !== this.#primary) {
      t = { b: await this.#primaryConn(), to: 'primary', reason: 'unsure' };
      backendId = await this.#preparedOn(s, t.b);
    }
    if (backendId === undefined) throw new ClientError(ER.UNKNOWN_STMT_HANDLER, `statement ${s.id} could not be prepared again on ${t.b.id}`);
    let checksum: ResultChecksum | undefined;
    let logged: Buffer | undefined;
    if (t.b === this.#primary && this.#logs(s.cls)) {
      const replay = (this.#log ??= new ReplayLog(this.ctx.settings.transactionReplay ?? DEFAULT_REPLAY));
      // A transaction refused for replay already (or replay off) costs no copy and no checksum.
      if (!replay.refused) {
        const why = loggableExecute(p, s);
        if (typeof why === 'string') replay.refuse(why);
        else if (replay.admits(s.sql)) {
          logged = why;
          checksum = new ResultChecksum();
        }
      }
    }
    const log = this.#log;
    const on = t;
    const id = backendId;
    await new Promise<unknown>((resolve, reject) => this.#executeOn(p, s, on, id, resolve, reject, checksum));
    if (checksum && logged && log && this.#log === log && this.#trx === 'primary') log.add({ raw: logged, sql: s.sql, checksum: checksum.digest(), statement: s.id });
  }

  #executeOn(p: Packet, s: Prepared, t: Target, backendId: number, done: (x: ResponseSummary) => void, fail: (e: unknown) => void, checksum?: ResultChecksum): void {
    // Built first: a malformed packet is refused before anything is counted or sent.
    const raw = this.#executePacket(p, s, t.b, backendId);
    this.#count(t.to, t.reason);
    if (s.cls.pin && t.to === 'primary') this.#pinned ??= s.cls.pin;
    if (s.longData.length > 0) {
      for (const ld of s.longData) {
        const copy = Buffer.from(ld);
        copy.writeUInt32LE(backendId >>> 0, 1);
        t.b.send(frame(copy, 0));
      }
      s.longData = [];
    }
    const flags = p.payload.length > 5 ? p.payload[5]! : 0;
    if (flags & 0x07) s.cursorOn = t.b;
    this.#relay(t.b, raw, 'result', undefined, done, fail, checksum);
  }

  /** The client's COM_STMT_EXECUTE for backend `b`: its statement id, and the parameter types when `b` has not seen them. */
  #executePacket(p: Packet, s: Prepared, b: BackendConnection, backendId: number): Buffer {
    const payload = p.payload;
    if (payload.length < 10) throw new MalformedPacket('COM_STMT_EXECUTE shorter than 10 bytes');
    const n = s.params;
    let raw = p.raw;
    if (n > 0) {
      const nullBytes = (n + 7) >> 3;
      const boundAt = 10 + nullBytes;
      if (payload.length <= boundAt) throw new MalformedPacket('COM_STMT_EXECUTE ends before its parameters');
      const bound = payload[boundAt]!;
      if (bound === 1) {
        if (payload.length < boundAt + 1 + 2 * n) throw new MalformedPacket('COM_STMT_EXECUTE ends inside its parameter types');
        const types = payload.subarray(boundAt + 1, boundAt + 1 + 2 * n);
        if (!s.types || !s.types.equals(types)) {
          s.types = Buffer.from(types);
          s.typesOn.clear();
        }
        s.typesOn.add(b);
      } else if (!s.typesOn.has(b)) {
        if (!s.types) throw new MalformedPacket('COM_STMT_EXECUTE without parameter types on its first execution');
        const rebuilt = Buffer.concat([payload.subarray(0, boundAt), Buffer.from([1]), s.types, payload.subarray(boundAt + 1)]);
        rebuilt.writeUInt32LE(backendId >>> 0, 1);
        s.typesOn.add(b);
        return frame(rebuilt, p.seq);
      }
    }
    if (raw.length === HEADER + payload.length) raw.writeUInt32LE(backendId >>> 0, HEADER + 1);
    else {
      // Several frames: rebuild (rare: an execute of 16 MiB or more).
      const copy = Buffer.from(payload);
      copy.writeUInt32LE(backendId >>> 0, 1);
      raw = frame(copy, p.seq);
    }
    return raw;
  }

  /**
   * The statement a command without an answer (COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE) names, or
   * undefined. Nothing may be sent back for these, not even an error: the client reads no answer,
   * and one would be taken as the answer to its next command. The server ignores unknown ids the
   * same way (a client closing statements a COM_RESET_CONNECTION already dropped, as mysql2 does).
   */
  #quietStmt(payload: Buffer, minLength: number): Prepared | undefined {
    if (payload.length < minLength) {
      this.ctx.metrics.protocolErrors.inc({ cluster: this.ctx.cluster, kind: 'malformed' });
      return undefined;
    }
    let id = payload.readUInt32LE(1);
    if (id === 0xffffffff && this.#lastPrepared !== undefined) id = this.#lastPrepared;
    return this.#prepared.get(id);
  }

  async #longData(p: Packet): Promise<void> {
    // Command, statement id, parameter number.
    const s = this.#quietStmt(p.payload, 7);
    // Kept until the statement runs, then sent where it runs.
    s?.longData.push(Buffer.from(p.payload));
  }

  async #closeStmt(p: Packet): Promise<void> {
    const s = this.#quietStmt(p.payload, 5);
    if (!s) return;
    for (const [b, id] of s.on) {
      const pl = Buffer.allocUnsafe(5);
      pl[0] = COM.STMT_CLOSE;
      pl.writeUInt32LE(id >>> 0, 1);
      b.send(frame(pl, 0));
    }
    this.#prepared.delete(s.id);
  }

  async #resetStmt(p: Packet): Promise<void> {
    const s = this.#stmt(p.payload);
    s.longData = [];
    const pl = (id: number) => {
      const b = Buffer.allocUnsafe(5);
      b[0] = COM.STMT_RESET;
      b.writeUInt32LE(id >>> 0, 1);
      return b;
    };
    const main = await this.#primaryConn();
    const mainId = await this.#preparedOn(s, main);
    for (const [b, id] of s.on) if (b !== main) await b.exchange(frame(pl(id), 0), 'ok');
    this.#count('primary', 'session_command');
    await this.#run(main, frame(pl(mainId ?? 0), p.seq), 'ok');
  }

  async #fetch(p: Packet): Promise<void> {
    const s = this.#stmt(p.payload);
    const b = s.cursorOn && !s.cursorOn.closed ? s.cursorOn : await this.#primaryConn();
    const id = s.on.get(b);
    if (id === undefined) throw new ClientError(ER.UNKNOWN_STMT_HANDLER, `statement ${s.id} has no open cursor`);
    const copy = Buffer.from(p.payload);
    copy.writeUInt32LE(id >>> 0, 1);
    this.#count(b === this.#primary ? 'primary' : 'replica', 'read');
    await this.#run(b, frame(copy, p.seq), 'fetch');
  }
}

/**
 * A COM_STMT_EXECUTE as it can be sent again on another connection: with the parameter types
 * bound in it (the client may have bound them on an earlier execute only). A string says why the
 * transaction cannot be replayed instead.
 */
function loggableExecute(p: Packet, s: Prepared): Buffer | string {
  const payload = p.payload;
  if (s.longData.length > 0) return 'it sent a prepared statement parameter as long data';
  if (payload.length > 5 && payload[5]! & 0x07) return 'it opened a cursor';
  if (p.raw.length !== HEADER + payload.length) return 'it executed a prepared statement of 16 MiB or more';
  const n = s.params;
  if (n === 0) return Buffer.from(p.raw);
  const boundAt = 10 + ((n + 7) >> 3);
  if (payload.length <= boundAt) return Buffer.from(p.raw);
  if (payload[boundAt] === 1) return Buffer.from(p.raw);
  if (!s.types) return 'it executed a prepared statement whose parameter types were never sent';
  return frame(Buffer.concat([payload.subarray(0, boundAt), Buffer.from([1]), s.types, payload.subarray(boundAt + 1)]), 0);
}

export type { ErrInfo, CompressedStreamError, PayloadReader };
