import mysql from 'mysql2/promise';
import type { AckedWrite, CounterTally, EndpointSample, ReadBack } from './invariants.ts';

export interface AppAccount {
  user: string;
  password: string;
  database: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client-visible error: what the client was doing, when, and what it was told. */
export interface ClientError {
  at: number;
  op: 'connect' | 'write' | 'read-back' | 'read';
  error: string;
}

/** What the run needs of a write workload (L4: WriteLoad; SQL endpoint: SqlSessionLoad). */
export interface Writes {
  readonly acked: AckedWrite[];
  readonly errors: ClientError[];
  longestGap(from: number, to: number): number;
  stop(): Promise<void>;
}

function gapIn(acked: AckedWrite[], from: number, to: number): number {
  const times = acked.map((a) => a.ackAt).filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let gap = times.length ? times[0]! - from : to - from;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  if (times.length) gap = Math.max(gap, to - times[times.length - 1]!);
  return gap;
}

function errorText(e: unknown): string {
  const x = e as { code?: string; errno?: number; message?: string };
  return x.errno ? `${x.errno} ${x.message ?? ''}` : (x.message ?? String(e));
}

/**
 * Writer sessions, one loop each until stop(): what they saw acknowledged and what they were told
 * went wrong. The subclasses write (`loop`); starting, stopping and the gap measure are shared.
 */
abstract class WriterSessions implements Writes {
  readonly acked: AckedWrite[] = [];
  readonly errors: ClientError[] = [];
  #running = true;
  #loops: Promise<void>[] = [];

  protected get running(): boolean {
    return this.#running;
  }

  /** Called by the subclass once its own fields are set: the loops start at once. */
  protected startLoops(writers: number): void {
    for (let k = 0; k < writers; k++) this.#loops.push(this.loop(k));
  }

  protected abstract loop(k: number): Promise<void>;

  /** Longest gap between consecutive acknowledgements within [from, to] (ms). */
  longestGap(from: number, to: number): number {
    return gapIn(this.acked, from, to);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

/**
 * Writes through the writer endpoint with unique ids (writer k of n uses k, k+n, ...). Each row
 * records the server that executed it; `acked` lists what the client saw succeed. A failed write's
 * id is never reused: it may or may not have committed, and it is never counted.
 */
export class WriteLoad extends WriterSessions {
  constructor(
    readonly port: number,
    readonly app: AppAccount,
    readonly writers: number,
    readonly table: string,
  ) {
    super();
    this.startLoops(writers);
  }

  protected async loop(k: number): Promise<void> {
    let next = k + 1;
    let conn: mysql.Connection | undefined;
    while (this.running) {
      try {
        conn ??= await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: this.app.user, password: this.app.password, database: this.app.database, connectTimeout: 15000 });
        const id = next;
        next += this.writers;
        const sentAt = Date.now();
        await conn.query({ sql: `INSERT INTO ${this.table} (id, server_id, sent_at) VALUES (?, @@server_id, ?)`, values: [id, sentAt], timeout: 15000 });
        this.acked.push({ id, sentAt, ackAt: Date.now() });
      } catch (e) {
        this.errors.push({ at: Date.now(), op: 'write', error: errorText(e) });
        conn?.destroy();
        conn = undefined;
        await sleep(10);
      }
    }
    conn?.destroy();
  }
}

/** Reads through the reader endpoint; counts successes and failures (availability of reads). */
export class ReadLoad {
  ok = 0;
  failed = 0;
  readonly errors: ClientError[] = [];
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
      } catch (e) {
        this.failed++;
        this.errors.push({ at: Date.now(), op: 'read', error: errorText(e) });
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

/**
 * Writer sessions through the SQL endpoint. Writer k (1-based) of n inserts rows with ids k, k+n,
 * ... (as WriteLoad) and increments its own counter row (`UPDATE counter SET n = n + 1 WHERE
 * writer = k`): two statements in autocommit, or every third time both inside one transaction.
 * After each acknowledged increment it reads back, in the same endpoint session, its counter and
 * the row it inserted, with an autocommit SELECT the endpoint routes to a replica (read-your-writes
 * must make the replica have the session's writes first). An increment whose answer never came
 * (the UPDATE in autocommit, the COMMIT of a transaction) is unknown; one whose transaction failed
 * before its COMMIT was sent is not counted at all (the server rolls it back).
 */
export class SqlSessionLoad extends WriterSessions {
  readonly tallies: CounterTally[];
  readonly readBacks: ReadBack[] = [];
  /** Transactions committed, and transactions abandoned before their COMMIT was sent. */
  transactions = 0;
  abandoned = 0;

  constructor(
    readonly port: number,
    readonly app: AppAccount,
    readonly writers: number,
    readonly table: string,
    readonly counter: string,
  ) {
    super();
    this.tallies = Array.from({ length: writers }, (_, k) => ({ writer: k + 1, acked: 0, unknown: 0 }));
    this.startLoops(writers);
  }

  protected async loop(k: number): Promise<void> {
    const tally = this.tallies[k]!;
    let next = k + 1;
    let round = 0;
    let conn: mysql.Connection | undefined;
    while (this.running) {
      let op: ClientError['op'] = 'connect';
      // Whether an error now leaves the increment's fate unknown (its statement or COMMIT was sent).
      let incrementSent = false;
      let inTransaction = false;
      try {
        conn ??= await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: this.app.user, password: this.app.password, database: this.app.database, connectTimeout: 15000 });
        const c = conn;
        const q = (sql: string, values?: unknown[]) => c.query({ sql, values, timeout: 15000 });
        op = 'write';
        const id = next;
        next += this.writers;
        const insert = `INSERT INTO ${this.table} (id, server_id, sent_at) VALUES (?, @@server_id, ?)`;
        const increment = `UPDATE ${this.counter} SET n = n + 1 WHERE writer = ?`;
        const sentAt = Date.now();
        if (round++ % 3 === 2) {
          inTransaction = true;
          await q('START TRANSACTION');
          await q(insert, [id, sentAt]);
          await q(increment, [tally.writer]);
          incrementSent = true;
          await q('COMMIT');
          inTransaction = false;
          this.transactions++;
          this.acked.push({ id, sentAt, ackAt: Date.now() });
        } else {
          await q(insert, [id, sentAt]);
          this.acked.push({ id, sentAt, ackAt: Date.now() });
          incrementSent = true;
          await q(increment, [tally.writer]);
        }
        incrementSent = false;
        tally.acked++;
        op = 'read-back';
        const [rows] = (await q(`SELECT (SELECT n FROM ${this.counter} WHERE writer = ?) AS n, (SELECT server_id FROM ${this.table} WHERE id = ?) AS w, @@server_id AS s`, [tally.writer, id])) as unknown as [{ n: number | null; w: number | null; s: number }[]];
        const r = rows[0]!;
        this.readBacks.push({
          writer: tally.writer,
          at: Date.now(),
          id,
          minExpected: tally.acked,
          maxExpected: tally.acked + tally.unknown,
          seen: r.n === null ? null : Number(r.n),
          rowSeen: r.w !== null,
          serverId: Number(r.s),
          writeServerId: r.w === null ? null : Number(r.w),
        });
      } catch (e) {
        if (incrementSent) tally.unknown++;
        else if (inTransaction) this.abandoned++;
        this.errors.push({ at: Date.now(), op, error: errorText(e) });
        conn?.destroy();
        conn = undefined;
        await sleep(10);
      }
    }
    conn?.destroy();
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
