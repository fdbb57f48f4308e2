import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { ROOT } from './env.ts';

export interface LogEvent {
  level: string;
  time: string;
  event?: string;
  msg?: string;
  [k: string]: unknown;
}

/**
 * `regent run` as a real child process, its JSON log parsed as it arrives. `gid` runs it under
 * another group so iptables can block only Regent's own connections (owner match).
 */
export class ManagerProcess {
  readonly events: LogEvent[] = [];
  readonly raw: string[] = [];
  #child: ChildProcess;
  #waiters: { pred: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void }[] = [];
  #exited: Promise<number | null>;

  /** `command: 'proxy'` runs `regent proxy` (router only, following the acting manager's decisions). */
  constructor(configFile: string, opts: { gid?: number; env?: Record<string, string>; command?: 'run' | 'proxy' } = {}) {
    this.#child = spawn(process.execPath, [join(ROOT, 'bin/regent.js'), opts.command ?? 'run', '--config', configFile], {
      env: { ...process.env, REGENT_LOG_LEVEL: 'info', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      gid: opts.gid,
    });
    let buf = '';
    this.#child.stderr!.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.raw.push(line);
        if (!line.startsWith('{')) continue;
        try {
          const e = JSON.parse(line) as LogEvent;
          this.events.push(e);
          for (const w of [...this.#waiters]) if (w.pred(e)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(e);
          }
        } catch {
          // partial or non-JSON line
        }
      }
    });
    this.#child.stdout!.resume();
    this.#exited = new Promise((r) => this.#child.on('exit', (code) => r(code)));
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Resolves with the first event (already seen from index `since` on, or future) matching `pred`. */
  waitFor(pred: (e: LogEvent) => boolean, timeoutMs: number, what = 'event', since = 0): Promise<LogEvent> {
    const seen = this.events.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: LogEvent) => (clearTimeout(t), resolve(e)) };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last log lines:\n${this.raw.slice(-15).join('\n')}`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  count(pred: (e: LogEvent) => boolean): number {
    return this.events.filter(pred).length;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(t);
  }

  kill9(): Promise<number | null> {
    this.#child.kill('SIGKILL');
    return this.#exited;
  }
}

/**
 * Continuous writes with unique ids, each recorded with the server_id that acknowledged it. The
 * target is asked for before every connection, so the writer follows whatever the test says the
 * primary is (a router port once routing exists).
 */
export class Writer {
  /** Ids whose INSERT returned OK; each row records the server_id that executed it. */
  readonly acked: { id: number; at: number }[] = [];
  readonly failures: { at: number; error: string }[] = [];
  #running = true;
  #loop: Promise<void>;
  #next = 1;

  constructor(
    readonly sandbox: Sandbox,
    readonly target: () => { host: string; port: number },
    readonly table = 'app.writes',
  ) {
    this.#loop = this.#run();
  }

  static async prepare(sb: Sandbox, table = 'app.writes'): Promise<void> {
    await sb.sql(sb.node(1), [`CREATE TABLE ${table} (id INT PRIMARY KEY, server_id INT NOT NULL, at BIGINT NOT NULL) ENGINE=InnoDB`]);
  }

  async #run(): Promise<void> {
    const app = this.sandbox.appAccount();
    let conn: mysql.Connection | undefined;
    while (this.#running) {
      try {
        if (!conn) {
          const t = this.target();
          conn = await mysql.createConnection({ host: t.host, port: t.port, user: app.user, password: app.password, database: app.database, connectTimeout: 1000 });
        }
        const id = this.#next++;
        await conn.query({ sql: `INSERT INTO ${this.table} VALUES (?, @@server_id, ?)`, values: [id, Date.now()], timeout: 10000 });
        this.acked.push({ id, at: Date.now() });
      } catch (e) {
        this.failures.push({ at: Date.now(), error: (e as Error).message });
        conn?.destroy();
        conn = undefined;
        // The failed id may or may not have committed: it is never reused, and never counted.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    conn?.destroy();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}
