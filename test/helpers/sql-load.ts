import mysql from 'mysql2/promise';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const LOAD_TABLES = [
  'CREATE TABLE IF NOT EXISTS app.ha_counter (sid INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB',
  'CREATE TABLE IF NOT EXISTS app.ha_seq (sid INT NOT NULL, k INT NOT NULL, PRIMARY KEY (sid, k)) ENGINE=InnoDB',
];

export interface LoadError {
  sid: string;
  op: string;
  at: number;
  errno?: number;
  message: string;
  /** When the failing statement was sent. */
  startedAt: number;
  /** The operation had a statement in flight (sent, not answered) at `faultAt`. */
  inFlightAtFault: boolean;
  /** ...and that statement was a COMMIT or an autocommit write. */
  commitInFlight: boolean;
}

/**
 * Client sessions with a mix of autocommit writes (a per-session counter), multi-statement
 * transactions (a sequence row and the counter, with a read inside) and reads, remembering what
 * the server acknowledged, so the final tables can be compared with it: nothing lost, nothing
 * applied twice. A session that gets an error reconnects and goes on.
 */
export class SqlLoad {
  readonly errors: LoadError[] = [];
  /** Per session: acknowledged counter increments, acknowledged sequence rows, operations whose outcome is unknown. */
  readonly acked = new Map<string, { incs: number; rows: Set<number>; doubtIncs: number; doubtRows: Set<number> }>();
  ops = 0;
  /** When each COMMIT and autocommit write was sent and answered (or failed). */
  readonly commitSteps: { start: number; end: number }[] = [];
  acks: number[] = [];
  /** When each autocommit write and COMMIT was acknowledged (reads on replicas do not hide a write pause). */
  writeAcks: number[] = [];
  #running = true;
  #loops: Promise<void>[] = [];
  /** Per session: what is in flight now. */
  #inflight = new Map<string, { op: string; commit: boolean } | undefined>();
  faultAt?: number;
  #atFault = new Map<string, { op: string; commit: boolean } | undefined>();

  constructor(
    private readonly port: number,
    private readonly app: { user: string; password: string; database: string },
    readonly sessions: number,
    readonly tag: string,
    /** First session id in the tables (loads running side by side use distinct ranges). */
    private readonly base = 1,
  ) {}

  async start(): Promise<void> {
    const c = await this.#connect();
    for (let i = 0; i < this.sessions; i++) await c.query('INSERT INTO ha_counter (sid, n) VALUES (?, 0)', [this.#sidNum(i)]);
    await c.end();
    for (let i = 0; i < this.sessions; i++) this.#loops.push(this.#loop(i));
  }

  #sidNum(i: number): number {
    return this.base + i;
  }

  #connect(): Promise<mysql.Connection> {
    return mysql.createConnection({ host: '127.0.0.1', port: this.port, user: this.app.user, password: this.app.password, database: this.app.database, connectTimeout: 15000 });
  }

  /** Marks the moment of a fault: what each session has in flight now is remembered. */
  fault(): void {
    this.faultAt = Date.now();
    this.#atFault = new Map(this.#inflight);
  }

  /** COMMITs and autocommit writes sent at or before `t` and answered (or failed) at or after it. */
  commitsInFlightAt(t: number): number {
    return this.commitSteps.filter((s) => s.start <= t && s.end >= t).length;
  }

  /** Sessions with a statement in flight (sent, not answered) at the last fault. */
  get inFlightAtFault(): number {
    return [...this.#atFault.values()].filter((x) => x !== undefined).length;
  }

  /** COMMITs and autocommit writes in flight at the last fault. */
  get commitsInFlightAtFault(): number {
    return [...this.#atFault.values()].filter((x) => x?.commit).length;
  }

  async #loop(i: number): Promise<void> {
    const sidNum = this.#sidNum(i);
    const sid = `${this.tag}${i}`;
    const a = { incs: 0, rows: new Set<number>(), doubtIncs: 0, doubtRows: new Set<number>() };
    this.acked.set(sid, a);
    let conn: mysql.Connection | undefined;
    let k = 0;
    while (this.#running) {
      const pick = (i + this.ops) % 3;
      const op = pick === 0 ? 'autocommit' : pick === 1 ? 'transaction' : 'read';
      let stage = '';
      let startedAt = 0;
      const step = async <T>(what: string, commit: boolean, f: () => Promise<T>): Promise<T> => {
        stage = what;
        startedAt = Date.now();
        this.#inflight.set(sid, { op: what, commit });
        try {
          return await f();
        } finally {
          this.#inflight.set(sid, undefined);
          if (commit) this.commitSteps.push({ start: startedAt, end: Date.now() });
        }
      };
      const key = ++k;
      try {
        conn ??= await this.#connect();
        const c = conn;
        if (op === 'autocommit') {
          await step('autocommit write', true, () => c.query('UPDATE ha_counter SET n = n + 1 WHERE sid = ?', [sidNum]));
          a.incs++;
          this.writeAcks.push(Date.now());
        } else if (op === 'transaction') {
          await step('BEGIN', false, () => c.query('BEGIN'));
          await step('INSERT', false, () => c.query('INSERT INTO ha_seq (sid, k) VALUES (?, ?)', [sidNum, key]));
          await step('UPDATE', false, () => c.query('UPDATE ha_counter SET n = n + 1 WHERE sid = ?', [sidNum]));
          await step('SELECT in transaction', false, () => c.query('SELECT n FROM ha_counter WHERE sid = ?', [sidNum]));
          await step('COMMIT', true, () => c.query('COMMIT'));
          a.incs++;
          a.rows.add(key);
          this.writeAcks.push(Date.now());
        } else {
          await step('read', false, () => c.query('SELECT COUNT(*) AS n FROM ha_seq WHERE sid = ?', [sidNum]));
        }
        this.acks.push(Date.now());
        this.ops++;
      } catch (e) {
        const err = e as { errno?: number; message: string };
        const at = this.#atFault.get(sid);
        this.errors.push({ sid, op: `${op}/${stage}`, at: Date.now(), startedAt, errno: err.errno, message: err.message, inFlightAtFault: at !== undefined, commitInFlight: at?.commit ?? false });
        // Its outcome is unknown: allowed either way in the final check.
        if (stage === 'autocommit write' || stage === 'COMMIT') {
          a.doubtIncs++;
          if (stage === 'COMMIT') a.doubtRows.add(key);
        }
        conn?.destroy();
        conn = undefined;
        await sleep(20);
      }
      await sleep(2);
    }
    await conn?.end().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** Longest gap between two acknowledged operations within [from, to]. */
  longestGap(from: number, to: number, acks = this.acks): number {
    const xs = acks.filter((t) => t >= from && t <= to).sort((x, y) => x - y);
    let g = 0;
    for (let i = 1; i < xs.length; i++) g = Math.max(g, xs[i]! - xs[i - 1]!);
    return g;
  }

  /** Longest gap between two acknowledged writes (autocommit writes and COMMITs) within [from, to]. */
  longestWriteGap(from: number, to: number): number {
    return this.longestGap(from, to, this.writeAcks);
  }

  /** Compares the tables (read through `query`) with what was acknowledged: lost and duplicated writes. */
  async verify(query: (sql: string) => Promise<Record<string, unknown>[]>): Promise<{ lost: string[]; duplicated: string[] }> {
    const lost: string[] = [];
    const duplicated: string[] = [];
    const counters = new Map((await query('SELECT sid, n FROM app.ha_counter')).map((r) => [Number(r.sid), Number(r.n)]));
    const rows = await query('SELECT sid, k FROM app.ha_seq');
    for (let i = 0; i < this.sessions; i++) {
      const sidNum = this.#sidNum(i);
      const a = this.acked.get(`${this.tag}${i}`)!;
      const n = counters.get(sidNum) ?? 0;
      if (n < a.incs) lost.push(`${this.tag}${i}: counter ${n} < ${a.incs} acknowledged`);
      if (n > a.incs + a.doubtIncs) duplicated.push(`${this.tag}${i}: counter ${n} > ${a.incs} acknowledged + ${a.doubtIncs} in doubt`);
      const have = new Set(rows.filter((r) => Number(r.sid) === sidNum).map((r) => Number(r.k)));
      for (const key of a.rows) if (!have.has(key)) lost.push(`${this.tag}${i}: row ${key}`);
      for (const key of have) if (!a.rows.has(key) && !a.doubtRows.has(key)) duplicated.push(`${this.tag}${i}: row ${key} never acknowledged`);
    }
    return { lost, duplicated };
  }
}
