import type { ClusterView } from '../analysis/cluster-view.ts';
import type { ClusterConfig, InstanceConfig } from '../config/load.ts';
import type { Coordinator, JournalEntry } from '../coordination/coordinator.ts';
import type { DecisionRecord } from '../decision/record.ts';
import type { ClusterMonitor } from '../monitor/cluster-monitor.ts';
import type { AdminPool } from '../sql/admin-pool.ts';
import type { DbConnection } from '../sql/connection.ts';
import type { Flavor, ReplicationStart } from '../sql/flavor.ts';
import type { GtidState } from '../gtid/index.ts';
import { foldVariables, text } from '../sql/row-values.ts';
import type { Logger } from '../util/log.ts';
import { failpoint } from '../util/failpoint.ts';
import { StepFailed } from '../errors.ts';


export type StepEvent = { planId: string; kind: string; step: string; phase: 'start' | 'end'; ok?: boolean; durationMs?: number; detail?: string };

export interface RecoveryContext {
  cluster: ClusterConfig;
  monitor: ClusterMonitor;
  admin: AdminPool;
  coordinator: Coordinator;
  log: Logger;
  /** What Regent decided about the cluster: recoveries change it only through its verbs. */
  decision: DecisionRecord;
  /** The latest observations judged against the current decision. */
  view(): ClusterView;
  /** Progress for live displays (dashboard, SSE): called when a step starts and ends. */
  onStep?: (e: StepEvent) => void;
  /**
   * Asks the data plane to report when no SQL session has a transaction open or a command running
   * on `primary`, waiting at most `timeoutMs`: how many still do (undefined: no answer, or no data plane).
   */
  drainSessions?: (primary: string, timeoutMs: number) => Promise<number | undefined>;
  /** Test-only: stop after this step and wait forever (a manager killed mid-recovery). */
  pauseAfterStep?: string;
  /** Test-only: skip the relay-log drain (the chaos suite proves its checker catches the loss). */
  skipDrain?: boolean;
  /** Test-only: wait this long before a step (to inject a fault at a known point). */
  delayBeforeStep?: { step: string; ms: number };
}

export interface StepRecord {
  name: string;
  ok: boolean;
  durationMs: number;
  detail: string;
}


/**
 * Steps whose start must be on record before they run: after them the cluster has a new primary,
 * and a successor resuming the plan must know that it may have happened. Waiting for that write
 * also stops a manager whose leadership was taken away (the coordinator's writes are fenced).
 */
const RECORDED_BEFORE_RUNNING = new Set(['promote']);

/**
 * Runs the named steps of one plan: each is journaled before and after (with its duration and
 * what it did), logged, and reported to live displays. A failing step throws StepFailed.
 *
 * Journal entries go out in order, several per write, and a step does not wait for its own
 * entries, except where a successor needs them (the plan, the start of a step in
 * RECORDED_BEFORE_RUNNING, a step's end that carries resume data, a failure, the plan's end): with
 * etcd each write is a fenced transaction, and ~20 of them one after the other were most of a
 * failover's time when three managers shared a loaded machine (10 clusters killed at once: the
 * last new primary writable after 1.7-2.1 s). A queued write that fails (leadership lost) fails
 * the next step.
 */
export class StepRunner {
  readonly steps: StepRecord[] = [];
  /** Entries not yet handed to the coordinator; all of them go in the next write. */
  #buffer: JournalEntry[] = [];
  #writing?: Promise<void>;
  #failed?: Error;

  constructor(
    private readonly ctx: RecoveryContext,
    readonly planId: string,
    readonly kind: string,
    private readonly log: Logger,
  ) {}

  /** Writes an entry after every queued one, and waits until it (and they) are on record. */
  async journal(entry: JournalEntry): Promise<void> {
    this.#enqueue(entry);
    while (this.#writing) await this.#writing;
    if (this.#failed) throw this.#failed;
  }

  /**
   * Queues an entry. One write at a time, each taking everything queued meanwhile: with etcd,
   * one fenced transaction for a run of steps instead of one per entry.
   */
  #enqueue(entry: JournalEntry): void {
    this.#buffer.push(entry);
    if (this.#writing || this.#failed) return;
    this.#writing = (async () => {
      while (this.#buffer.length > 0 && !this.#failed) {
        const batch = this.#buffer.splice(0);
        await this.ctx.coordinator.appendJournal(...batch).catch((e: Error) => {
          this.#failed ??= e;
        });
      }
    })().finally(() => {
      this.#writing = undefined;
    });
  }

  /**
   * Runs a step; `data` (optional) is journaled with its end, for a successor resuming the plan.
   * A step that finds nothing to do says so with `skipped` (journaled as done, with the reason).
   */
  async run<T>(name: string, fn: () => Promise<{ detail: string; value: T; data?: unknown; skipped?: boolean }>): Promise<T> {
    const { ctx, planId, kind } = this;
    const cluster = ctx.cluster.name;
    if (this.#failed) throw new StepFailed(`${name}: not started: the journal could not be written (${this.#failed.message})`);
    if (ctx.delayBeforeStep?.step === name) await new Promise((r) => setTimeout(r, ctx.delayBeforeStep!.ms));
    const t0 = Date.now();
    const start: JournalEntry = { type: 'step', planId, cluster, at: t0, step: name, phase: 'start' };
    if (RECORDED_BEFORE_RUNNING.has(name)) await this.journal(start).catch((e: Error) => {
      throw new StepFailed(`${name}: not started: the journal could not be written (${e.message})`);
    });
    else this.#enqueue(start);
    ctx.onStep?.({ planId, kind, step: name, phase: 'start' });
    try {
      const { detail: said, value, data, skipped } = await fn();
      const detail = skipped ? `skipped: ${said}` : said;
      const durationMs = Date.now() - t0;
      this.steps.push({ name, ok: true, durationMs, detail });
      const end: JournalEntry = { type: 'step', planId, cluster, at: Date.now(), step: name, phase: 'end', ok: true, detail, durationMs, data };
      if (data !== undefined) await this.journal(end);
      else this.#enqueue(end);
      this.log.info({ event: `${kind}_step`, step: name, durationMs, detail }, `${name}: ${detail}`);
      ctx.onStep?.({ planId, kind, step: name, phase: 'end', ok: true, durationMs, detail });
      if (ctx.pauseAfterStep === name) {
        while (this.#writing) await this.#writing;
        this.log.warn({ event: 'test_pause', step: name }, `paused after ${name} (test pause point)`);
        await new Promise(() => {});
      }
      return value;
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      const durationMs = Date.now() - t0;
      // A step that ran but whose resume data could not be journaled is on the list as done already.
      if (!this.steps.some((x) => x.name === name && x.ok)) this.steps.push({ name, ok: false, durationMs, detail });
      await this.journal({ type: 'step', planId, cluster, at: Date.now(), step: name, phase: 'end', ok: false, detail, durationMs }).catch(() => undefined);
      this.log.error({ event: `${kind}_step_failed`, step: name, durationMs, detail }, `${name} failed: ${detail}`);
      ctx.onStep?.({ planId, kind, step: name, phase: 'end', ok: false, durationMs, detail });
      throw new StepFailed(`${name}: ${detail}`);
    }
  }
}

export function flavorOf(monitor: ClusterMonitor, id: string): Flavor {
  const f = monitor.probers.get(id)?.flavor ?? [...monitor.probers.values()].find((p) => p.flavor)?.flavor;
  if (!f) throw new Error(`server family of ${id} unknown (never reached)`);
  return f;
}

/** Stops replication, points the server at `source` by GTID, sets its semi-sync replica role, starts. */
export async function replicateFrom(conn: DbConnection, flavor: Flavor, cluster: ClusterConfig, source: InstanceConfig, startFrom: ReplicationStart): Promise<void> {
  await conn.query(flavor.stopReplica());
  const change = flavor.changeSource({
    host: source.host,
    port: source.port,
    user: cluster.accounts.replication.user,
    password: cluster.accounts.replication.password,
    heartbeatPeriodSeconds: cluster.replication.heartbeatPeriodSeconds,
    startFrom,
  });
  await conn.query(change.sql, change.params);
  if (cluster.replication.semiSync) for (const sql of flavor.semiSyncRole('replica', cluster.replication.semiSyncTimeoutMs)) await conn.query(sql);
  await conn.query(flavor.startReplica());
}

/** Makes a server the primary: no replication of its own, semi-sync primary side, writable. */
export async function promote(conn: DbConnection, flavor: Flavor, cluster: ClusterConfig): Promise<void> {
  await conn.query(flavor.stopReplica());
  await conn.query(flavor.resetReplica());
  if (cluster.replication.semiSync) for (const sql of flavor.semiSyncRole('primary', cluster.replication.semiSyncTimeoutMs)) await conn.query(sql);
  failpoint('promote:before-writable');
  for (const sql of flavor.setReadOnly(false)) await conn.query(sql);
}

/** MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET: true when reached within the timeout. */
export async function waitForGtid(conn: DbConnection, flavor: Flavor, gtid: ReturnType<Flavor['parseGtid']>, timeoutSeconds: number): Promise<boolean> {
  // MariaDB's MASTER_GTID_WAIT compares with gtid_slave_pos only. A former primary re-pointed by
  // current_pos has the position in its own binlog, but not in gtid_slave_pos until a new event
  // arrives, so it would wait out the timeout for something it already has (a switchover straight
  // back to the previous primary did exactly that).
  if (flavor.parseGtids(foldVariables(await conn.query(flavor.variablesQuery))).executed.contains(gtid)) return true;
  const w = flavor.waitForGtid(gtid, timeoutSeconds);
  const row = await conn.queryOne(w.sql, w.params, (timeoutSeconds + 5) * 1000);
  return Number(text(row?.['result'])) === 0;
}

/** Probes the given instances until each replicates from `source` with both threads running; returns those that never did. */
export async function waitUntilReplicating(monitor: ClusterMonitor, ids: string[], source: string, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(ids);
  while (pending.size > 0 && Date.now() < deadline) {
    await Promise.all(
      [...pending].map(async (id) => {
        const r = (await monitor.probers.get(id)?.probeNow())?.replica;
        if (r && r.ioThread === 'yes' && r.sqlThread && `${r.sourceHost}:${r.sourcePort}` === source) pending.delete(id);
      }),
    );
    if (pending.size > 0) await new Promise((res) => setTimeout(res, 50));
  }
  return [...pending];
}

/**
 * Waits until a replica's SQL thread applied everything its IO thread received, judged by source
 * binlog coordinates (executed == read). This holds whatever the GTID mode: MASTER_GTID_WAIT on the
 * received GTID position can wait forever on a former primary replicating by current_pos, whose own
 * GTIDs never enter gtid_slave_pos.
 */
export async function waitRelayLogApplied(conn: DbConnection, flavor: Flavor, received: GtidState, timeoutSeconds: number): Promise<boolean> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const r = flavor.parseReplicaStatus(await conn.query(flavor.replicaStatusQuery));
    if (!r) return true;
    if (r.execSourceLogFile === r.readSourceLogFile && r.execSourceLogPos === r.readSourceLogPos) return true;
    // The GTID view, when it is conclusive, answers sooner than the next poll.
    if (!received.isEmpty()) {
      const w = flavor.waitForGtid(received, 0.05);
      const row = await conn.queryOne(w.sql, w.params, 5000);
      if (Number(text(row?.['result'])) === 0) return true;
    }
    if (!r.sqlThread || Date.now() > deadline) return false;
    await new Promise((res) => setTimeout(res, 20));
  }
}
