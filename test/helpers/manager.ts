import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { dataPlanePaths } from '../../src/router/dataplane.ts';
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
 * another group so iptables can block only Regent's own connections (owner match). The events of
 * its data plane (a process of its own, logging to a file in the state directory) are merged in
 * as they are written, marked `source: 'dataplane'`.
 */
export class ManagerProcess {
  readonly events: LogEvent[] = [];
  readonly raw: string[] = [];
  #child: ChildProcess;
  #waiters: { pred: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void }[] = [];
  #exited: Promise<number | null>;
  #tail?: NodeJS.Timeout;
  /** When the process was seen to exit (ms since epoch): its leadership ended then at the latest. */
  exitedAt?: number;

  /**
   * `command: 'proxy'` runs `regent proxy` (observe and route only) instead of `regent run`;
   * `nodeArgs` go to node itself (e.g. --cpu-prof, which NODE_OPTIONS does not accept).
   */
  constructor(configFile: string, opts: { gid?: number; env?: Record<string, string>; command?: 'run' | 'proxy'; nodeArgs?: string[] } = {}) {
    const command = opts.command ?? 'run';
    this.#child = spawn(process.execPath, [...(opts.nodeArgs ?? []), join(ROOT, 'bin/regent.js'), command, '--config', configFile], {
      env: { ...process.env, REGENT_LOG_LEVEL: 'info', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      gid: opts.gid,
    });
    this.#tailDataPlane(configFile, command);
    let buf = '';
    this.#child.stderr!.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.#line(line);
      }
    });
    this.#child.stdout!.resume();
    this.#exited = new Promise((r) =>
      this.#child.on('exit', (code) => {
        this.exitedAt = Date.now();
        r(code);
      }),
    );
  }

  /** Follows the data plane's log from its current end (what earlier managers' data planes wrote is not ours). */
  #tailDataPlane(configFile: string, role: 'run' | 'proxy'): void {
    let file: string;
    try {
      file = dataPlanePaths(loadConfigFile(configFile), role).logFile;
    } catch {
      return;
    }
    let offset = 0;
    try {
      offset = statSync(file).size;
    } catch {
      // not written yet
    }
    let partial = '';
    this.#tail = setInterval(() => {
      let fd: number;
      try {
        fd = openSync(file, 'r');
      } catch {
        return;
      }
      try {
        const buf = Buffer.alloc(1 << 16);
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, offset);
          if (n <= 0) break;
          offset += n;
          partial += buf.subarray(0, n).toString('utf8');
        }
      } finally {
        closeSync(fd);
      }
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        this.#line(line, 'dataplane');
      }
    }, 25);
    this.#tail.unref();
  }

  #line(line: string, source?: string): void {
    this.raw.push(source ? `[${source}] ${line}` : line);
    if (!line.startsWith('{')) return;
    try {
      const e = JSON.parse(line) as LogEvent;
      if (source) e['source'] = source;
      this.events.push(e);
      for (const w of [...this.#waiters]) if (w.pred(e)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(e);
      }
    } catch {
      // partial or non-JSON line
    }
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
    // The last data plane lines still count (a test may look at them right after).
    await new Promise((r) => setTimeout(r, 60));
    if (this.#tail) clearInterval(this.#tail);
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(t);
  }

  kill9(): Promise<number | null> {
    if (this.#tail) clearInterval(this.#tail);
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
