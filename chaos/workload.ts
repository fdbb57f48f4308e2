import mysql from 'mysql2/promise';
import type { AckedWrite, EndpointSample } from './invariants.ts';

export interface AppAccount {
  user: string;
  password: string;
  database: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Writes through the writer endpoint with unique ids (writer k of n uses k, k+n, ...). Each row
 * records the server that executed it; `acked` lists what the client saw succeed. A failed write's
 * id is never reused: it may or may not have committed, and it is never counted.
 */
export class WriteLoad {
  readonly acked: AckedWrite[] = [];
  readonly errors: { at: number; error: string }[] = [];
  #running = true;
  #loops: Promise<void>[] = [];

  constructor(
    readonly port: number,
    readonly app: AppAccount,
    readonly writers: number,
    readonly table: string,
  ) {
    for (let k = 0; k < writers; k++) this.#loops.push(this.#loop(k));
  }

  async #loop(k: number): Promise<void> {
    let next = k + 1;
    let conn: mysql.Connection | undefined;
    while (this.#running) {
      try {
        conn ??= await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: this.app.user, password: this.app.password, database: this.app.database, connectTimeout: 15000 });
        const id = next;
        next += this.writers;
        const sentAt = Date.now();
        await conn.query({ sql: `INSERT INTO ${this.table} (id, server_id, sent_at) VALUES (?, @@server_id, ?)`, values: [id, sentAt], timeout: 15000 });
        this.acked.push({ id, sentAt, ackAt: Date.now() });
      } catch (e) {
        this.errors.push({ at: Date.now(), error: (e as Error).message });
        conn?.destroy();
        conn = undefined;
        await sleep(10);
      }
    }
    conn?.destroy();
  }

  /** Longest gap between consecutive acknowledgements within [from, to] (ms). */
  longestGap(from: number, to: number): number {
    const times = this.acked.map((a) => a.ackAt).filter((t) => t >= from && t <= to).sort((a, b) => a - b);
    let gap = times.length ? times[0]! - from : to - from;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    if (times.length) gap = Math.max(gap, to - times[times.length - 1]!);
    return gap;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

/** Reads through the reader endpoint; counts successes and failures (availability of reads). */
export class ReadLoad {
  ok = 0;
  failed = 0;
  #running = true;
  #loop: Promise<void>;
  constructor(
    readonly port: number,
    readonly app: AppAccount,
    readonly table: string,
  ) {
    this.#loop = this.#run();
  }
  async #run(): Promise<void> {
    let conn: mysql.Connection | undefined;
    while (this.#running) {
      try {
        conn ??= await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: this.app.user, password: this.app.password, database: this.app.database, connectTimeout: 5000 });
        await conn.query({ sql: `SELECT COUNT(*) FROM ${this.table}`, timeout: 5000 });
        this.ok++;
        // A new connection now and then, so the reader pool's changes are exercised.
        if (this.ok % 20 === 0) {
          await conn.end().catch(() => undefined);
          conn = undefined;
        }
        await sleep(50);
      } catch {
        this.failed++;
        conn?.destroy();
        conn = undefined;
        await sleep(50);
      }
    }
    conn?.destroy();
  }
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** Asks the writer endpoint, on a fresh connection every `everyMs`, which server answers. */
export class EndpointSampler {
  readonly samples: EndpointSample[] = [];
  #running = true;
  #loop: Promise<void>;
  constructor(
    readonly port: number,
    readonly app: AppAccount,
    readonly everyMs = 200,
  ) {
    this.#loop = this.#run();
  }
  async #run(): Promise<void> {
    while (this.#running) {
      const sentAt = Date.now();
      try {
        const c = await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: this.app.user, password: this.app.password, connectTimeout: 15000 });
        const [rows] = (await c.query({ sql: 'SELECT @@server_id AS s, @@read_only AS ro', timeout: 5000 })) as unknown as [{ s: number; ro: number }[]];
        this.samples.push({ sentAt, ackAt: Date.now(), serverId: Number(rows[0]!.s), readOnly: Number(rows[0]!.ro) === 1 });
        c.destroy();
      } catch {
        // held too long or refused: availability is measured by the writers
      }
      await sleep(this.everyMs);
    }
  }
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}
