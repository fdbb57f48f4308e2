import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../util/log.ts';
import { pipeSockets, type Backend } from './pipe.ts';
import type { FromPipeProcess, ToPipeProcess } from './pipe-protocol.ts';

type OnClose = (bytesFromClient: number, bytesToClient: number) => void;

interface PipeProcess {
  child: ChildProcess;
  ready: boolean;
  conns: Set<number>;
}

interface Conn {
  proc?: PipeProcess;
  /** In-process pipes only. */
  end?: () => void;
  onClose: OnClose;
}

const PIPE_PROCESS = fileURLToPath(new URL('./pipe-process.mjs', import.meta.url));
const CLOSE_TIMEOUT_MS = 1000;

/**
 * Where proxied bytes flow. The manager's event loop accepts every router connection and decides
 * where it goes (so fencing and holding never wait for anyone); the connection is then handed,
 * socket and all, to one of `processes` pipe processes, which copy bytes on cores of their own.
 * With `processes: 0` the manager pipes them itself. A pipe process that dies takes its
 * connections with it and is started again; new connections go to the others meanwhile.
 */
export class DataPlane extends EventEmitter<{ ready: [] }> {
  #procs: PipeProcess[] = [];
  #conns = new Map<number, Conn>();
  #nextConn = 1;
  #nextReq = 1;
  #replies = new Map<number, { proc: PipeProcess; asked: number; resolve: (closed: number) => void }>();
  #stopping = false;
  #restarts = 0;

  constructor(
    readonly processes: number,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Starts the pipe processes and waits (10 s at most) until they can take connections. */
  async start(): Promise<void> {
    const ready = Array.from({ length: this.processes }, () => this.#spawn());
    await Promise.race([Promise.all(ready), new Promise((r) => setTimeout(r, 10000).unref())]);
  }

  /** PIDs of the running pipe processes (for status and tests). */
  get pids(): number[] {
    return this.#procs.flatMap((p) => (p.child.pid ? [p.child.pid] : []));
  }

  /** True when a connection handed over now would be piped at once. */
  get available(): boolean {
    return this.processes === 0 || this.#procs.some((p) => p.ready);
  }

  /**
   * Hands an accepted, paused client socket over to be piped to `backend`. Returns the connection
   * id, or undefined when no pipe process is ready (the caller holds the client meanwhile).
   */
  pipe(client: Socket, backend: Backend, onClose: OnClose): number | undefined {
    const id = this.#nextConn++;
    if (this.processes === 0) {
      const conn: Conn = { onClose };
      this.#conns.set(id, conn);
      conn.end = pipeSockets(client, backend, (a, b) => this.#closed(id, a, b));
      return id;
    }
    const proc = this.#leastBusy();
    if (!proc) return undefined;
    this.#conns.set(id, { proc, onClose });
    proc.conns.add(id);
    const msg: ToPipeProcess = { op: 'pipe', conn: id, host: backend.host, port: backend.port };
    proc.child.send(msg, client, { keepOpen: false }, (err) => {
      if (err) {
        client.destroy();
        this.#closed(id, 0, 0);
      }
    });
    return id;
  }

  /** Ends the given connections; resolves once every pipe process has, with how many it ended. */
  async close(ids: number[]): Promise<number> {
    const byProc = new Map<PipeProcess, number[]>();
    let closed = 0;
    for (const id of ids) {
      const c = this.#conns.get(id);
      if (!c) continue;
      if (c.end) {
        c.end();
        closed++;
      } else if (c.proc) {
        const list = byProc.get(c.proc) ?? [];
        list.push(id);
        byProc.set(c.proc, list);
      }
    }
    const counts = await Promise.all([...byProc].map(([proc, conns]) => this.#closeIn(proc, conns)));
    return closed + counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Asks one pipe process to end connections. This is part of fencing, so it cannot wait forever:
   * a process that does not answer within CLOSE_TIMEOUT_MS (hung, stopped) is killed, which ends
   * its connections just as surely.
   */
  #closeIn(proc: PipeProcess, conns: number[]): Promise<number> {
    return new Promise<number>((resolve) => {
      const id = this.#nextReq++;
      const timer = setTimeout(() => {
        if (!this.#replies.delete(id)) return;
        this.log.error({ event: 'pipe_process_unresponsive', pid: proc.child.pid }, `a router pipe process did not close ${conns.length} connection(s) within ${CLOSE_TIMEOUT_MS} ms: killing it`);
        proc.child.kill('SIGKILL');
        resolve(conns.length);
      }, CLOSE_TIMEOUT_MS);
      const done = (closed: number) => {
        clearTimeout(timer);
        resolve(closed);
      };
      this.#replies.set(id, { proc, asked: conns.length, resolve: done });
      if (!proc.child.connected) {
        // Exiting already: its connections end with it.
        this.#replies.delete(id);
        proc.child.kill('SIGKILL');
        return done(conns.length);
      }
      proc.child.send({ op: 'close', id, conns } satisfies ToPipeProcess);
    });
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const c of this.#conns.values()) c.end?.();
    await Promise.all(
      this.#procs.map(async (p) => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) return;
        const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
        if (p.child.connected) p.child.send({ op: 'stop' } satisfies ToPipeProcess);
        const timer = setTimeout(() => p.child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
    this.#procs = [];
  }

  #leastBusy(): PipeProcess | undefined {
    let best: PipeProcess | undefined;
    for (const p of this.#procs) if (p.ready && p.child.connected && (!best || p.conns.size < best.conns.size)) best = p;
    return best;
  }

  #closed(id: number, bytesFromClient: number, bytesToClient: number): void {
    const c = this.#conns.get(id);
    if (!c) return;
    this.#conns.delete(id);
    c.proc?.conns.delete(id);
    c.onClose(bytesFromClient, bytesToClient);
  }

  #spawn(): Promise<void> {
    const child = fork(PIPE_PROCESS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    const proc: PipeProcess = { child, ready: false, conns: new Set() };
    this.#procs.push(proc);
    return new Promise((resolve) => {
      child.on('message', (m: FromPipeProcess) => {
        if ('reply' in m) {
          this.#replies.get(m.reply)?.resolve(m.closed);
          this.#replies.delete(m.reply);
        } else if (m.ev === 'closed') this.#closed(m.conn, m.bytesFromClient, m.bytesToClient);
        else if (m.ev === 'ready') {
          proc.ready = true;
          this.#restarts = 0;
          resolve();
          this.emit('ready');
        }
      });
      child.on('error', (e) => this.log.error({ event: 'pipe_process_error', pid: child.pid, err: e.message }, `pipe process: ${e.message}`));
      child.once('exit', (code, signal) => {
        resolve();
        this.#exited(proc, code, signal);
      });
    });
  }

  #exited(proc: PipeProcess, code: number | null, signal: string | null): void {
    this.#procs = this.#procs.filter((p) => p !== proc);
    for (const id of [...proc.conns]) this.#closed(id, 0, 0);
    // Connections a pending close asked for ended with the process.
    for (const [id, r] of this.#replies) {
      if (r.proc !== proc) continue;
      this.#replies.delete(id);
      r.resolve(r.asked);
    }
    if (this.#stopping) return;
    const delay = Math.min(5000, 100 * 2 ** Math.min(this.#restarts++, 6));
    this.log.error({ event: 'pipe_process_exited', pid: proc.child.pid, code, signal, restartInMs: delay }, `a router pipe process exited (${signal ?? `code ${code}`}); its connections are closed, a new one starts in ${delay} ms`);
    setTimeout(() => {
      if (!this.#stopping) void this.#spawn();
    }, delay).unref();
  }
}
