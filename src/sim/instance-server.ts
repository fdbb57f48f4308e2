import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { ReplicationModel, SimInstance } from './replication-model.ts';
import type { Session, StatementCache, StatementHost } from './statements.ts';
import { CAP, COM, errPacket, handshakePacket, newScramble, okPacket, PacketWriter, parseHandshakeResponse, Reply, SERVER_CAPABILITIES, verifyNativePassword } from './wire.ts';

/** Counters shared by every instance of a simulator (the bench reads probes done from them). */
export interface SimStats {
  connectionsAccepted: number;
  authFailures: number;
  /** Statements answered, by kind (probe:replica-status is one per Regent probe). */
  statements: Map<string, number>;
  /** The last statements answered with "not simulated", newest last. */
  unknown: string[];
}

export function newStats(): SimStats {
  return { connectionsAccepted: 0, authFailures: 0, statements: new Map(), unknown: [] };
}

export interface ServerContext {
  model: ReplicationModel;
  statements: StatementCache;
  stats: SimStats;
  /** user -> SHA1(SHA1(password)), or undefined for an account without a password. */
  accounts: Map<string, Buffer | undefined>;
  /** Every query is answered this much later (network and server time); 0 answers at once. */
  latencyMs: number;
}

/** One response buffer builder for the whole process: responses are built synchronously, one at a time. */
const writer = new PacketWriter(64 * 1024);
const reply = new Reply(writer);

/**
 * The network side of one simulated instance: a listener on its own loopback address, and its
 * client sessions. A crash closes every session and the listener (new connections are refused);
 * a hang stops reading every socket and greets nobody (TCP stays open, nothing is answered, as
 * with SIGSTOP), and recovery from it answers what queued up meanwhile.
 */
export class InstanceServer implements StatementHost {
  #server?: Server;
  readonly #conns = new Set<Connection>();
  #nextConnectionId = 100;

  constructor(
    readonly inst: SimInstance,
    readonly ctx: ServerContext,
  ) {}

  get model(): ReplicationModel {
    return this.ctx.model;
  }

  get openSessions(): number {
    return this.#conns.size;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
      server.once('error', reject);
      server.listen({ host: this.inst.host, port: this.inst.port, backlog: 128 }, () => {
        server.off('error', reject);
        server.on('error', () => undefined);
        this.#server = server;
        resolve();
      });
    });
  }

  /** Closes the listener and every session (kill -9). */
  crash(): void {
    this.#server?.close();
    this.#server = undefined;
    for (const c of this.#conns) c.socket.destroy();
    this.#conns.clear();
  }

  /** Stops answering, keeps every socket open (SIGSTOP). */
  hang(): void {
    for (const c of this.#conns) c.socket.pause();
  }

  /** Back from a crash (listening again) or a hang (answers what queued up). Model state changes first. */
  async recover(wasCrashed: boolean): Promise<void> {
    if (wasCrashed) {
      await this.listen();
      return;
    }
    for (const c of this.#conns) {
      if (!c.greeted) c.greet();
      c.socket.resume();
    }
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.crash();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  sessions(): Iterable<Session> {
    return this.#conns;
  }

  kill(id: number): boolean {
    for (const c of this.#conns)
      if (c.id === id) {
        c.socket.destroy();
        this.#conns.delete(c);
        return true;
      }
    return false;
  }

  #accept(socket: Socket): void {
    this.ctx.stats.connectionsAccepted++;
    const c = new Connection(this, socket, this.#nextConnectionId++);
    this.#conns.add(c);
    socket.on('close', () => this.#conns.delete(c));
    if (this.inst.liveness === 'hung') socket.pause();
    else c.greet();
  }
}

type Phase = 'greeting' | 'auth' | 'auth-switch' | 'command';

class Connection implements Session {
  user = '';
  greeted = false;
  #phase: Phase = 'greeting';
  #scramble = newScramble(randomBytes(20));
  #deprecateEof = false;
  #multiStatements = false;
  #pending?: Buffer;

  constructor(
    readonly server: InstanceServer,
    readonly socket: Socket,
    readonly id: number,
  ) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  greet(): void {
    this.greeted = true;
    this.#phase = 'auth';
    this.socket.write(handshakePacket(writer, this.id, this.#scramble).take());
  }

  #onData(chunk: Buffer): void {
    const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    let o = 0;
    while (buf.length - o >= 4) {
      const len = buf.readUIntLE(o, 3);
      if (buf.length - o - 4 < len) break;
      const seq = buf[o + 3]!;
      const payload = buf.subarray(o + 4, o + 4 + len);
      o += 4 + len;
      this.#packet(seq, payload);
      if (this.socket.destroyed) return;
      if (this.socket.isPaused()) {
        // Hung in the middle of a burst: the rest waits, like bytes in a frozen server's socket.
        this.#pending = buf.subarray(o);
        return;
      }
    }
    if (o < buf.length) this.#pending = Buffer.from(buf.subarray(o));
  }

  #packet(seq: number, payload: Buffer): void {
    const { ctx } = this.server;
    if (this.#phase === 'auth') {
      const r = parseHandshakeResponse(payload);
      if (!r) {
        this.#fail(seq + 1, 1043, '08S01', 'Bad handshake');
        return;
      }
      this.user = r.user;
      this.#deprecateEof = Boolean(r.capabilities & SERVER_CAPABILITIES & CAP.DEPRECATE_EOF);
      this.#multiStatements = Boolean(r.capabilities & SERVER_CAPABILITIES & CAP.MULTI_STATEMENTS);
      if (r.authPlugin && r.authPlugin !== 'mysql_native_password') {
        // Ask the client to answer with mysql_native_password instead (AuthSwitchRequest).
        this.#phase = 'auth-switch';
        this.socket.write(writer.begin(seq + 1).u8(0xfe).nulString('mysql_native_password').bytes(this.#scramble).u8(0).end().take());
        return;
      }
      this.#authenticate(seq + 1, r.authResponse);
      return;
    }
    if (this.#phase === 'auth-switch') {
      this.#authenticate(seq + 1, payload);
      return;
    }
    if (this.#phase !== 'command') return;
    const command = payload[0];
    if (command === COM.QUERY) {
      const sql = payload.toString('utf8', 1);
      const statements = ctx.statements.get(sql);
      reply.start(this.#deprecateEof);
      if (statements.length > 1 && !this.#multiStatements) {
        reply.err(1064, '42000', 'You have an error in your SQL syntax (several statements, and the client did not ask for CLIENT_MULTI_STATEMENTS)');
      } else {
        for (let i = 0; i < statements.length; i++) {
          const st = statements[i]!;
          ctx.stats.statements.set(st.kind, (ctx.stats.statements.get(st.kind) ?? 0) + 1);
          if (st.kind === 'unknown') {
            ctx.stats.unknown.push(sql.slice(0, 300));
            if (ctx.stats.unknown.length > 20) ctx.stats.unknown.shift();
          }
          reply.more = i < statements.length - 1;
          // An error ends a multi-statement query: the statements after it do not run.
          st.run(reply, this.server, this);
          if (reply.failed || this.socket.destroyed) break;
        }
      }
      if (this.socket.destroyed) {
        writer.reset();
        return;
      }
      const answer = writer.take();
      // Timers of equal duration fire in order: answers keep the order of their queries.
      if (ctx.latencyMs > 0) setTimeout(() => this.socket.destroyed || this.socket.write(answer), ctx.latencyMs);
      else this.socket.write(answer);
      return;
    }
    if (command === COM.QUIT) {
      this.socket.end();
      return;
    }
    if (command === COM.PING || command === COM.INIT_DB) {
      this.socket.write(okPacket(writer, 1).take());
      return;
    }
    this.socket.write(errPacket(writer, 1, 1047, '08S01', `command ${command} not simulated`).take());
  }

  #authenticate(seq: number, token: Buffer): void {
    const { accounts, stats } = this.server.ctx;
    const known = accounts.has(this.user);
    if (!known || !verifyNativePassword(accounts.get(this.user), this.#scramble, token)) {
      stats.authFailures++;
      this.#fail(seq, 1045, '28000', `Access denied for user '${this.user}'@'127.0.0.1' (using password: ${token.length > 0 ? 'YES' : 'NO'})`);
      return;
    }
    this.#phase = 'command';
    this.socket.write(okPacket(writer, seq).take());
  }

  #fail(seq: number, errno: number, state: string, message: string): void {
    this.socket.end(errPacket(writer, seq, errno, state, message).take());
  }
}
