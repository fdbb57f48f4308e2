import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { backendAuthReply, rsaEncryptPassword, type BackendCredential } from './auth.ts';
import { frame, PacketReader, PayloadReader, readLenenc, type Packet } from './packets.ts';
import { buildHandshakeResponse, buildSslRequest, CAP, COM, NATIVE_PLUGIN, parseErr, parseGreeting, queryPayload, type ErrInfo, type ServerGreeting } from './protocol.ts';
import type { ResultChecksum } from './checksum.ts';
import { ResponseRelay, type Expect, type ResponseSummary } from './response.ts';

/** The backend refused the login or a setup statement: the server's own error, for the client. */
export class BackendRefused extends Error {
  override name = 'BackendRefused';
  constructor(readonly err: ErrInfo) {
    super(`${err.code} (${err.state}): ${err.message}`);
  }
}

/** The backend could not be reached or broke the protocol. */
export class BackendFailed extends Error {
  override name = 'BackendFailed';
  constructor(
    message: string,
    readonly detail: {
      /** The command had been written to a live connection: the server may have run it. */
      sent?: boolean;
      /** The connection that was lost. */
      connection?: BackendConnection;
      /** The server answered with an error proving the command did nothing (read_only during a switchover). */
      refused?: boolean;
      /**
       * The connection was reset (ECONNRESET/EPIPE): the server's kernel had data of ours unread
       * when its process died, or the socket was gone when we wrote. A server that read the whole
       * command and then died closes with a FIN instead. Only one command is ever outstanding, so
       * a reset proves the server never read all of it, and never ran it.
       */
      unread?: boolean;
    } = {},
  ) {
    super(message);
  }
}

export interface BackendOptions {
  /** Instance id (host:port). */
  id: string;
  host: string;
  port: number;
  user: string;
  credential: BackendCredential;
  database?: string;
  charset: number;
  /** Capabilities to ask for (the client's, less the per-hop ones, plus what the router needs). */
  caps: number;
  attrs?: Buffer;
  /** TLS to the backend (undefined: plain). `required`: refuse a server without TLS. */
  tls?: { options: ConnectionOptions; required: boolean };
  connectTimeoutMs: number;
  maxPacket: number;
  /** Statements run once logged in, before anything of the session (session tracking). */
  init: string[];
}

interface Op {
  relay: ResponseRelay;
  sink?: (bufs: Buffer[]) => void;
  done: (summary: ResponseSummary, collected?: Buffer[]) => void;
  fail: (e: Error) => void;
  collected?: Buffer[];
}

let nextBackendId = 1;

/**
 * One connection to a server, logged in as the client's user. It runs one command at a time: a
 * client's (relayed to the client chunk by chunk) or the router's own (setup, replay, causal waits,
 * whose answers are read here and never reach the client).
 */
export class BackendConnection {
  readonly serial = nextBackendId++;
  greeting!: ServerGreeting;
  /** Capabilities in force on this connection. */
  caps = 0;
  /** Version of the session's recorded state this connection has applied (see session.ts). */
  stateVersion = 0;
  #socket: Socket;
  #op?: Op;
  #closed = false;
  #closeListeners: ((why: string) => void)[] = [];
  /** Closed by a reset from the server's side (see BackendFailed.detail.unread). */
  #reset = false;
  lastStatus = 0;

  private constructor(
    readonly opts: BackendOptions,
    socket: Socket,
  ) {
    this.#socket = socket;
  }

  get id(): string {
    return this.opts.id;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get busy(): boolean {
    return this.#op !== undefined;
  }
  /** The server's id for this connection (KILL, CONNECTION_ID()). */
  get threadId(): number {
    return this.greeting.connectionId;
  }
  get tls(): boolean {
    return 'encrypted' in this.#socket;
  }

  onClose(f: (why: string) => void): void {
    this.#closeListeners.push(f);
  }

  static async open(opts: BackendOptions): Promise<BackendConnection> {
    // Half-open allowed: a FIN from the server does not end our side at once, so that the
    // connection can still be asked whether the server reset it (#serverEnded).
    const socket = netConnect({ host: opts.host, port: opts.port, noDelay: true, allowHalfOpen: true });
    const b = new BackendConnection(opts, socket);
    const timer = setTimeout(() => socket.destroy(new BackendFailed(`no login to ${opts.id} within ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
    try {
      await b.#login();
      await b.#init();
    } catch (e) {
      b.close(`login failed: ${(e as Error).message}`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return b;
  }

  async #login(): Promise<void> {
    const reader = new PacketReader(this.opts.maxPacket);
    let socket: Socket = this.#socket;
    let waiting: { resolve: (p: Packet) => void; reject: (e: Error) => void } | undefined;
    let failure: Error | undefined;
    const pump = () => {
      if (!waiting) return;
      let p: Packet | undefined;
      try {
        p = reader.next();
      } catch (e) {
        failure = e as Error;
      }
      const w = waiting;
      if (p) {
        waiting = undefined;
        w.resolve(p);
      } else if (failure) {
        waiting = undefined;
        w.reject(failure);
      }
    };
    const onData = (c: Buffer) => {
      reader.push(c);
      pump();
    };
    const onEnd = (e?: Error) => {
      failure = e instanceof Error ? new BackendFailed(`${this.opts.id}: ${e.message}`) : new BackendFailed(`${this.opts.id} closed the connection during login`);
      pump();
    };
    const onFin = () => onEnd();
    const attach = (s: Socket) => {
      s.on('data', onData);
      s.on('end', onFin);
      s.on('error', onEnd);
      s.on('close', onFin);
    };
    const detach = (s: Socket) => {
      s.off('data', onData);
      s.off('end', onFin);
      s.removeAllListeners('error');
      s.removeAllListeners('close');
    };
    attach(socket);
    const next = () => new Promise<Packet>((resolve, reject) => {
      waiting = { resolve, reject };
      pump();
    });
    const greet = await next();
    this.greeting = parseGreeting(greet.payload);
    const server = this.greeting;
    let caps = (this.opts.caps & server.caps) | CAP.PROTOCOL_41;
    caps &= ~(CAP.COMPRESS | CAP.SSL | CAP.DEPRECATE_EOF | CAP.QUERY_ATTRIBUTES | CAP.OPTIONAL_RESULTSET_METADATA);
    if (this.opts.database) caps |= CAP.CONNECT_WITH_DB & server.caps;
    else caps &= ~CAP.CONNECT_WITH_DB;
    let seq = greet.seq + 1;
    if (this.opts.tls) {
      if (server.caps & CAP.SSL) {
        caps |= CAP.SSL;
        socket.write(frame(buildSslRequest(caps, this.opts.charset), seq++));
        detach(socket);
        // The name the certificate must carry: the instance's host (SNI only for names, never IPs).
        const secure = tlsConnect({ ...this.opts.tls.options, socket, host: this.opts.host, ...(isIP(this.opts.host) ? {} : { servername: this.opts.host }) });
        await new Promise<void>((resolve, reject) => {
          secure.once('secureConnect', () => resolve());
          secure.once('error', (e) => reject(new BackendFailed(`TLS to ${this.opts.id}: ${e.message}`)));
        });
        socket = secure;
        this.#socket = secure;
        attach(socket);
      } else if (this.opts.tls.required) throw new BackendFailed(`${this.opts.id} does not offer TLS and router.sql.backendTls requires it`);
    }
    this.caps = caps;
    const plugin = server.plugin || NATIVE_PLUGIN;
    const first = backendAuthReply(this.opts.credential, plugin, server.scramble, this.tls) ?? Buffer.alloc(0);
    socket.write(frame(buildHandshakeResponse({ caps, charset: this.opts.charset, user: this.opts.user, authResponse: first, database: this.opts.database, plugin, attrs: this.opts.attrs }), seq));
    let scramble = server.scramble;
    let currentPlugin = plugin;
    for (;;) {
      const p = await next();
      const h = p.payload[0];
      if (h === 0x00) {
        this.lastStatus = statusOfOk(p.payload);
        break;
      }
      if (h === 0xff) throw new BackendRefused(parseErr(p.payload));
      if (h === 0xfe) {
        // AuthSwitchRequest: another plugin, a fresh scramble.
        const r = new PayloadReader(p.payload);
        r.u8();
        currentPlugin = r.nulBytesOrRest();
        const data = r.rest();
        scramble = data.length > 0 && data[data.length - 1] === 0 ? data.subarray(0, data.length - 1) : data;
        const reply = backendAuthReply(this.opts.credential, currentPlugin, scramble, this.tls);
        if (!reply) throw new BackendRefused({ code: 1251, state: '08004', message: `the account ${this.opts.user} on ${this.opts.id} uses ${currentPlugin}, which the router can only answer with a configured password (router.sql.passwords)` });
        socket.write(frame(reply, p.lastSeq + 1));
        continue;
      }
      if (h === 0x01) {
        // AuthMoreData: caching_sha2_password says fast auth succeeded (3) or wants the full password (4).
        const what = p.payload[1];
        if (currentPlugin === 'caching_sha2_password' && what === 3) continue;
        if (currentPlugin === 'caching_sha2_password' && what === 4 && this.opts.credential.kind === 'password') {
          if (this.tls) socket.write(frame(Buffer.from(`${this.opts.credential.password}\0`, 'utf8'), p.lastSeq + 1));
          else socket.write(frame(Buffer.from([2]), p.lastSeq + 1));
          continue;
        }
        if (currentPlugin === 'caching_sha2_password' && this.opts.credential.kind === 'password' && p.payload.length > 2) {
          socket.write(frame(rsaEncryptPassword(this.opts.credential.password, scramble, p.payload.subarray(1)), p.lastSeq + 1));
          continue;
        }
        throw new BackendFailed(`${this.opts.id}: unexpected authentication data for ${currentPlugin}`);
      }
      throw new BackendFailed(`${this.opts.id}: unexpected packet 0x${(h ?? 0).toString(16)} during login`);
    }
    detach(socket);
    const leftover = reader.buffered > 0 ? reader.takeAll() : undefined;
    socket.on('data', (c: Buffer) => this.#onData(c));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.#reset = e.code === 'ECONNRESET' || e.code === 'EPIPE';
      this.close(e.message);
    });
    socket.on('end', () => this.#serverEnded());
    socket.on('close', () => this.close('closed by the server'));
    if (leftover) this.#onData(leftover);
  }

  /**
   * The server closed its side (FIN) with a command of ours outstanding. A server that read the
   * command and then died sends only the FIN: the command may have run. But a command written
   * after the process had died (it left the FIN in our socket, unseen yet by this event loop)
   * reached a closed socket, and the server's kernel answered it with a reset. A zero-byte write
   * asks the kernel which happened without sending anything: EPIPE means a reset came, so our
   * command was never read (it counts as `unread`, and a COMMIT is then sent again elsewhere).
   * Under TLS the write would go through the TLS layer, not to the socket: no probe there.
   */
  #serverEnded(): void {
    if (!this.#op || this.tls) return this.close('closed by the server');
    this.#socket.write(Buffer.alloc(0), (e?: NodeJS.ErrnoException | null) => {
      if (e?.code === 'EPIPE' || e?.code === 'ECONNRESET') this.#reset = true;
      this.close('closed by the server');
    });
  }

  async #init(): Promise<void> {
    for (const sql of this.opts.init) await this.run(sql);
  }

  /** Runs a statement of the router's own; throws BackendRefused on an error. Returns text rows. */
  async run(sql: string): Promise<{ summary: ResponseSummary; rows: (string | null)[][] }> {
    const r = await this.exchange(frame(queryPayload(sql), 0), 'result');
    if (r.summary.error) throw new BackendRefused(r.summary.error);
    return { summary: r.summary, rows: textRows(r.collected ?? []) };
  }

  /** Sends an already framed command of the router's own and reads the whole answer here. */
  exchange(raw: Buffer, expect: Expect, opts: { stmtId?: number; checksum?: ResultChecksum } = {}): Promise<{ summary: ResponseSummary; collected?: Buffer[] }> {
    return new Promise((resolve, reject) => this.#start(raw, new ResponseRelay(expect, { clientSessionTrack: true, stmtId: opts.stmtId, checksum: opts.checksum }), undefined, (summary, collected) => resolve({ summary, collected }), reject));
  }

  /**
   * Sends a client's command and streams the answer to `sink` as it arrives; `done` gets what the
   * response said once it is complete, `fail` the reason the connection was lost (either may be
   * called before this returns). Callbacks, not a promise: this is every statement's path.
   */
  relay(raw: Buffer, relay: ResponseRelay, sink: (bufs: Buffer[]) => void, done: (summary: ResponseSummary) => void, fail: (e: Error) => void): void {
    this.#start(raw, relay, sink, done, fail);
  }

  /** Bytes with no answer (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA, LOCAL INFILE data). */
  send(raw: Buffer): boolean {
    if (this.#closed) return false;
    return this.#socket.write(raw);
  }

  pause(): void {
    this.#socket.pause();
  }
  resume(): void {
    this.#socket.resume();
  }

  #start(raw: Buffer, relay: ResponseRelay, sink: ((bufs: Buffer[]) => void) | undefined, done: Op['done'], fail: Op['fail']): void {
    if (this.#closed) return fail(new BackendFailed(`connection to ${this.id} is closed`, { sent: false, connection: this }));
    if (this.#op) return fail(new BackendFailed(`connection to ${this.id} is busy`, { sent: false, connection: this }));
    this.#op = { relay, sink, done, fail, collected: sink ? undefined : [] };
    this.#socket.write(raw);
  }

  #onData(chunk: Buffer): void {
    const op = this.#op;
    if (!op) {
      // Nothing was asked: a server closing the connection says why first (KILL, timeout).
      this.close('unsolicited data from the server');
      return;
    }
    const out: Buffer[] = [];
    let extra: Buffer | undefined;
    try {
      extra = op.relay.feed(chunk, out);
    } catch (e) {
      this.close(`malformed response: ${(e as Error).message}`);
      return;
    }
    if (out.length > 0) {
      if (op.sink) op.sink(out);
      else op.collected!.push(...out);
    }
    if (op.relay.done) {
      this.#op = undefined;
      if (op.relay.summary.status !== undefined) this.lastStatus = op.relay.summary.status;
      if (extra && extra.length > 0) this.close('data after the end of a response');
      op.done(op.relay.summary, op.collected);
    }
  }

  close(why = 'closed by the router'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    const op = this.#op;
    this.#op = undefined;
    op?.fail(new BackendFailed(`connection to ${this.id} lost: ${why}`, { sent: true, connection: this, unread: this.#reset }));
    for (const f of this.#closeListeners) f(why);
  }

  /** Ends the connection politely (COM_QUIT). */
  quit(): void {
    if (this.#closed) return;
    this.#socket.end(frame(Buffer.from([COM.QUIT]), 0));
    this.close('quit');
  }
}

function statusOfOk(payload: Buffer): number {
  const r = new PayloadReader(payload);
  r.u8();
  r.lenenc();
  r.lenenc();
  return r.left >= 2 ? r.u16() : 0;
}

/** Text-protocol rows of a small response the router asked for itself. */
export function textRows(collected: Buffer[]): (string | null)[][] {
  const reader = new PacketReader(1 << 30);
  for (const c of collected) reader.push(c);
  const packets: Buffer[] = [];
  for (let p = reader.next(); p; p = reader.next()) packets.push(p.payload);
  if (packets.length === 0 || packets[0]![0] === 0x00 || packets[0]![0] === 0xff) return [];
  const cols = readLenenc(packets[0]!, 0).value;
  const rows: (string | null)[][] = [];
  // column count, definitions, EOF, rows..., EOF
  for (let i = 1 + cols + 1; i < packets.length; i++) {
    const p = packets[i]!;
    if (p[0] === 0xfe && p.length < 9) break;
    const r = new PayloadReader(p);
    const row: (string | null)[] = [];
    for (let c = 0; c < cols; c++) {
      if (p[r.at] === 0xfb) {
        r.u8();
        row.push(null);
      } else row.push(r.lenencBytes().toString('utf8'));
    }
    rows.push(row);
  }
  return rows;
}

export type { TLSSocket };
