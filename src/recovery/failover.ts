import { randomUUID } from 'node:crypto';
import type { GtidState } from '../gtid/index.ts';
import type { Flavor } from '../sql/flavor.ts';
import { killConnection } from '../sql/queries.ts';
import { foldVariables, int } from '../sql/row-values.ts';
import type { Logger } from '../util/log.ts';
import { StepFailed } from '../errors.ts';
import { chooseCandidate, type CandidateChoice } from './candidate.ts';
import { fenceServer } from './fence.ts';
import { runHooks, type HookResult } from './hooks.ts';
import { originSeenByReplicas, replicaFactsFromView, STEPS_BEFORE_PUBLISHING, type FailoverPlan, type StepName } from './plan.ts';
import { flavorOf, promote, replicateFrom, StepRunner, waitForGtid, waitRelayLogApplied, waitUntilReplicating, type RecoveryContext, type StepRecord } from './steps.ts';

/** How long the stop-io-threads step waits for a killed IO thread to be gone before STOP (see there). */
const IO_THREAD_EXIT_WAIT_MS = 200;
/** Then this long, for the killed thread to reach the call STOP interrupts (see there). */
const IO_THREAD_BLOCK_MARGIN_MS = 15;

export type { RecoveryContext } from './steps.ts';

export interface FailoverResult {
  ok: boolean;
  planId: string;
  oldPrimary: string;
  newPrimary?: string;
  steps: StepRecord[];
  /** On failure: the state things were left in and what a person should do. */
  error?: string;
  durationMs: number;
}

/** A failover found unfinished in the journal (its manager died): continue it under the same id. */
export interface ResumeFailover {
  planId: string;
  /** Set when the journal shows the promotion happened: only re-pointing and publishing are left. */
  promoted?: { candidate: string; commonPoint: string };
  /** With `promoted`: the replicas still to re-point (computed from a fresh view by the resumer). */
  replicas?: string[];
}

/** What the steps of one failover learn and hand on to the next. */
interface FailoverRun {
  ctx: RecoveryContext;
  plan: FailoverPlan;
  planId: string;
  /** The old primary was fenced before this failover (a failure must not unfence it). */
  wasFenced: boolean;
  /** Replicas whose IO thread this failover stopped (restarted if it fails before promoting). */
  ioStopped: string[];
  /** What each replica had received when its IO thread stopped (MariaDB forgets it on restart). */
  receivedAtStop: Map<string, GtidState>;
  sqlBroken: Map<string, string>;
  replicas: string[];
  choice?: CandidateChoice;
  candidate?: string;
  commonPoint?: string;
  promoted: boolean;
  /** The candidate's first probe after the promotion (started at publish, awaited by verify). */
  candidateProbed?: Promise<unknown>;
  hookEnv: () => Record<string, string>;
}

interface StepOutcome {
  detail: string;
  data?: unknown;
  skipped?: boolean;
}

type StepImpl = (run: FailoverRun) => Promise<StepOutcome>;

const flavorIn = (run: FailoverRun, id: string): Flavor => flavorOf(run.ctx.monitor, id);

/**
 * Each step a failover plan can name, in the words of plan.ts. A plan is a list of these names;
 * executeFailover runs them in that order, journaled before and after.
 */
const STEPS: Record<StepName, StepImpl> = {
  'pre-failover-hooks': async (run) => {
    const { cluster } = run.ctx;
    const results = await runHooks(cluster.hooks.preFailover, { ...run.hookEnv(), REGENT_NEW_PRIMARY: run.plan.choice.candidate ?? '' }, cluster.hooks.timeoutSeconds);
    const bad = results.find((r) => r.exitCode !== 0);
    if (bad) throw new StepFailed(`pre-failover hook "${bad.command}" ${bad.timedOut ? 'timed out' : `exited with ${bad.exitCode}`}: ${bad.output.slice(0, 300)}; failover aborted`);
    return { detail: results.map((r) => `${r.command} -> ${r.exitCode}`).join('; ') };
  },

  'fence-old-primary': async (run) => {
    const { ctx, plan, planId } = run;
    const old = plan.oldPrimary;
    // Routers first: no new write reaches the old primary, open connections to it are closed.
    await ctx.decision.fence(old, `failover ${planId}`, { kind: 'failover', planId });
    if (!ctx.monitor.probers.get(old)?.latest.reachable) return { detail: `${old} unreachable: writer endpoint fenced; read_only is enforced when it answers again` };
    const killed = await fenceServer(await ctx.admin.get(old), flavorIn(run, old), ctx.cluster);
    return { detail: `${old}: read_only=ON, ${killed} client session(s) killed` };
  },

  'stop-io-threads': async (run) => {
    const { ctx, plan } = run;
    const now = Date.now();
    const reachable = plan.replicas.filter((id) => ctx.monitor.probers.get(id)?.latest.reachable && !maintenanceNow(run, id, now));
    const timings: string[] = [];
    const failed: string[] = [];
    await Promise.all(
      reachable.map(async (id) => {
        try {
          const t0 = Date.now();
          const conn = await ctx.admin.get(id);
          const flavor = flavorIn(run, id);
          const before = flavor.parseReplicaStatus(await conn.query(flavor.replicaStatusQuery));
          // A SQL thread paused without an error must run before the IO thread stops: once both
          // are stopped, a GTID replica discards its relay log on the next start.
          if (before && !before.sqlThread && !before.lastSqlErrno && !ctx.skipDrain) await conn.query(flavor.startSqlThread());
          // The source is gone: end the IO thread at once rather than wait for STOP to get through.
          const killed = await conn.query(flavor.ioThreadIdQuery);
          for (const row of killed) await killConnection(conn, int(row['id'])).catch(() => undefined);
          // A thread that was still connected (a hung primary: a dead one resets the connection
          // and the thread is reconnecting) leaves the processlist on the KILL and then blocks on
          // its way out (talking to the hung primary). STOP interrupts that with a signal and then
          // waits for the thread in 2-second rounds (MariaDB's terminate_slave_thread): a STOP that
          // came right behind the KILL, before the thread blocked, missed it and waited 2 s (a hung
          // primary's failover took 4.6 s instead of 2.6 s, one run in three). STOP goes once the
          // thread has left the processlist and a little more.
          if (killed.length > 0 && before?.ioThread === 'yes') {
            const until = Date.now() + IO_THREAD_EXIT_WAIT_MS;
            while (Date.now() < until && (await conn.query(flavor.ioThreadIdQuery)).length > 0) await new Promise((r) => setTimeout(r, 2));
            await new Promise((r) => setTimeout(r, IO_THREAD_BLOCK_MARGIN_MS));
          }
          await conn.query(flavor.stopReplicaIoThread());
          const after = flavor.parseReplicaStatus(await conn.query(flavor.replicaStatusQuery));
          if (after) run.receivedAtStop.set(id, after.receivedGtid);
          if (after?.lastSqlErrno && !after.sqlThread) run.sqlBroken.set(id, `${after.lastSqlErrno}: ${after.lastSqlError}`);
          timings.push(`${id} ${Date.now() - t0} ms`);
          run.replicas.push(id);
          run.ioStopped.push(id);
        } catch (e) {
          failed.push(`${id} (${(e as Error).message})`);
        }
      }),
    );
    if (run.replicas.length === 0) throw new Error(`no replica could be reached${failed.length ? `: ${failed.join('; ')}` : ''}`);
    return { detail: `IO threads stopped on ${timings.join(', ')}${failed.length ? `; unreachable: ${failed.join('; ')}` : ''}` };
  },

  'drain-relay-logs': async (run) => {
    const { ctx } = run;
    // Test-only switch for the chaos suite's "broken build" check: without this step, events a
    // replica received but had not applied are discarded with its relay log at promotion.
    if (ctx.skipDrain) return { detail: 'SKIPPED (test-only REGENT_TEST_SKIP_DRAIN)' };
    const notes: string[] = [];
    const timeout = ctx.cluster.failover.drainTimeoutSeconds;
    await Promise.all(
      run.replicas.map(async (id) => {
        const received = run.receivedAtStop.get(id);
        if (!received) return;
        const broken = run.sqlBroken.get(id);
        if (broken) {
          notes.push(`${id}: SQL thread stopped on error ${broken}, cannot drain`);
          return;
        }
        const reached = await waitRelayLogApplied(await ctx.admin.get(id), flavorIn(run, id), received, timeout);
        notes.push(reached ? `${id}: applied up to ${received.toString() || '(empty)'}` : `${id}: not drained within ${timeout} s`);
      }),
    );
    return { detail: notes.join('; ') };
  },

  'choose-candidate': async (run) => {
    const { ctx, plan } = run;
    await ctx.monitor.reprobe(run.replicas);
    const view = ctx.view();
    const old = plan.oldPrimary;
    const facts = replicaFactsFromView(view, run.replicas, true)
      // What was received counts as recorded at the stop, not as the server shows it now; the
      // test-only broken build knows nothing of relay logs at all.
      .map((f) => ({ ...f, received: ctx.skipDrain ? undefined : run.receivedAtStop.get(f.instance.id) }));
    const c = chooseCandidate(facts, {
      oldPrimaryDataCenter: ctx.cluster.instances.find((i) => i.id === old)?.dataCenter,
      oldPrimaryOrigin: view.observations.get(old)?.settings?.gtidOrigin ?? originSeenByReplicas(view, old),
      maxLagSeconds: ctx.cluster.failover.maxLagForCandidateSeconds,
    });
    if (!c.candidate) throw new Error(c.refusal ?? 'no candidate');
    run.choice = c;
    run.candidate = c.candidate;
    return { detail: `${c.candidate}: ${c.reasons.join('; ')}${c.rejected.length ? `; rejected ${c.rejected.map((r) => `${r.id} (${r.why})`).join(', ')}` : ''}` };
  },

  'catch-up': async (run) => {
    const { ctx } = run;
    const holder = run.choice?.catchUpFrom;
    const candidate = run.candidate!;
    if (!holder) return { detail: `${candidate} has every transaction the other replicas have`, skipped: true };
    const conn = await ctx.admin.get(candidate);
    const flavor = flavorIn(run, candidate);
    const holderFlavor = flavorIn(run, holder);
    const holderConn = await ctx.admin.get(holder);
    const target = holderFlavor.parseGtids(foldVariables(await holderConn.query(holderFlavor.variablesQuery))).executed;
    const timeout = ctx.cluster.failover.drainTimeoutSeconds;
    await replicateFrom(conn, flavor, ctx.cluster, ctx.cluster.instances.find((i) => i.id === holder)!, 'replica-position');
    const reached = await waitForGtid(conn, flavor, target, timeout);
    await conn.query(flavor.stopReplica());
    if (!reached) throw new Error(`${candidate} did not catch up with ${holder} (${target.toString()}) within ${timeout} s`);
    return { detail: `${candidate} caught up with ${holder} at ${target.toString()}` };
  },

  // The candidate's position at promotion is where the old primary's history and the new one's
  // part: whatever the old primary has beyond it is errant (rejoin rewinds or reports it).
  promote: async (run) => {
    const { ctx } = run;
    const candidate = run.candidate!;
    const conn = await ctx.admin.get(candidate);
    const flavor = flavorIn(run, candidate);
    const at = flavor.parseGtids(foldVariables(await conn.query(flavor.variablesQuery))).executed;
    await promote(conn, flavor, ctx.cluster);
    run.promoted = true;
    run.commonPoint = at.toString();
    return { detail: `${candidate} is primary at ${run.commonPoint || '(empty)'}: replication reset, read_only=OFF`, data: { candidate, commonPoint: run.commonPoint } };
  },

  'repoint-replicas': async (run) => {
    const { ctx } = run;
    const candidate = run.candidate!;
    const newInst = ctx.cluster.instances.find((i) => i.id === candidate)!;
    const others = run.replicas.filter((id) => id !== candidate);
    const done: string[] = [];
    const failures: string[] = [];
    await Promise.all(
      others.map(async (id) => {
        try {
          await replicateFrom(await ctx.admin.get(id), flavorIn(run, id), ctx.cluster, newInst, 'replica-position');
          done.push(id);
        } catch (e) {
          failures.push(`${id}: ${(e as Error).message}`);
        }
      }),
    );
    if (failures.length > 0 && done.length === 0) throw new Error(`no replica could be re-pointed: ${failures.join('; ')}`);
    return { detail: `replicating from ${candidate}: ${done.join(', ') || '(none)'}${failures.length ? `; FAILED: ${failures.join('; ')}` : ''}` };
  },

  // Clients and routers follow the new primary as soon as it takes writes; checking the replicas
  // comes after, so it never delays them.
  publish: async (run) => {
    const { ctx, plan, planId } = run;
    const candidate = run.candidate!;
    await ctx.decision.promote(candidate, { kind: 'failover', planId, oldPrimary: plan.oldPrimary, commonPoint: run.commonPoint ?? '' });
    run.candidateProbed = ctx.monitor.probers.get(candidate)?.probeAfterChange();
    return { detail: `primary of ${ctx.cluster.name} is ${candidate}` };
  },

  verify: async (run) => {
    const candidate = run.candidate!;
    const others = run.replicas.filter((id) => id !== candidate);
    // The failover must not end before the candidate was seen as a primary: its last observation
    // still names the dead primary as its source, and the analysis that follows the failover
    // would find that primary dead again and fail over a second time.
    const [pending] = await Promise.all([waitUntilReplicating(run.ctx.monitor, others, candidate, 5000), run.candidateProbed]);
    return { detail: pending.length === 0 ? `all ${others.length} replica(s) replicate from ${candidate}` : `not replicating yet: ${pending.join(', ')} (see regent status)` };
  },

  // Awaited (each is bounded by its timeout): a one-shot `regent failover` must not exit before
  // its hooks ran. A failing post hook is reported; the failover itself is done.
  'post-failover-hooks': async (run) => {
    const { cluster, log } = run.ctx;
    const results = await runHooks(cluster.hooks.postFailover, run.hookEnv(), cluster.hooks.timeoutSeconds);
    logHookResults(log, 'post-failover', results);
    return { detail: results.map((r) => `${r.command} -> ${r.timedOut ? 'timed out' : r.exitCode}`).join('; ') };
  },
};

function maintenanceNow(run: FailoverRun, id: string, now: number): boolean {
  const until = run.ctx.decision.snapshot.maintenance.get(id);
  return until !== undefined && until > now;
}

/**
 * Runs a failover plan: its steps, in its order, each journaled before and after. A failure
 * before the promotion restarts replication where it was stopped and leaves the cluster as it
 * was; a failure after it leaves a report of exactly which instance is in which state.
 */
export async function executeFailover(ctx: RecoveryContext, plan: FailoverPlan, resume?: ResumeFailover): Promise<FailoverResult> {
  const { cluster, log } = ctx;
  const planId = resume?.planId ?? randomUUID();
  const started = Date.now();
  const oldPrimary = plan.oldPrimary;
  const flog = log.child({ cluster: cluster.name, planId });
  const run: FailoverRun = {
    ctx: { ...ctx, log: flog },
    plan,
    planId,
    wasFenced: ctx.decision.snapshot.fenced.has(oldPrimary),
    ioStopped: [],
    receivedAtStop: new Map(),
    sqlBroken: new Map(),
    replicas: resume?.replicas ? [...resume.replicas] : [],
    candidate: resume?.promoted?.candidate,
    commonPoint: resume?.promoted?.commonPoint,
    promoted: Boolean(resume?.promoted),
    hookEnv: () => ({ REGENT_CLUSTER: cluster.name, REGENT_OLD_PRIMARY: oldPrimary, REGENT_NEW_PRIMARY: run.promoted ? (run.candidate ?? '') : '', REGENT_PLAN_ID: planId }),
  };

  const runner = new StepRunner(ctx, planId, 'failover', flog);
  if (!resume) await runner.journal({ type: 'plan', planId, cluster: cluster.name, at: started, kind: 'failover', plan });
  flog.warn(
    { event: resume ? 'failover_resumed' : 'failover_started', oldPrimary, trigger: plan.trigger, candidate: resume?.promoted?.candidate ?? plan.choice.candidate },
    `failover of ${cluster.name} ${resume ? `resumed (plan ${planId}${resume.promoted ? ', already promoted' : ''})` : 'started'}`,
  );
  let verifiedAt = started;
  try {
    for (const s of plan.steps) {
      if (resume?.promoted && STEPS_BEFORE_PUBLISHING.has(s.name)) continue;
      await runner.run(s.name, async () => ({ value: undefined, ...(await STEPS[s.name](run)) }));
      if (s.name === 'verify') verifiedAt = Date.now();
    }
    const candidate = run.candidate!;
    const durationMs = (verifiedAt > started ? verifiedAt : Date.now()) - started;
    await runner.journal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'success', detail: `promoted ${candidate}`, newPrimary: candidate, durationMs });
    flog.warn({ event: 'failover_succeeded', oldPrimary, newPrimary: candidate, durationMs }, `failover of ${cluster.name}: ${oldPrimary} -> ${candidate} in ${durationMs} ms`);
    return { ok: true, planId, oldPrimary, newPrimary: candidate, steps: runner.steps, durationMs };
  } catch (e) {
    return failed(run, runner, started, e instanceof Error ? e.message : String(e));
  }
}

/** Leaves the cluster in a known state after a failed step and says exactly which. */
async function failed(run: FailoverRun, runner: StepRunner, started: number, reason: string): Promise<FailoverResult> {
  const steps = runner.steps;
  const { ctx, plan, planId } = run;
  const { cluster, log } = ctx;
  const oldPrimary = plan.oldPrimary;
  const newPrimary = run.promoted ? run.candidate : undefined;
  let state: string;
  if (!newPrimary) {
    // Nothing was promoted: let the replicas resume where they were, in case the primary returns.
    const restarted: string[] = [];
    await Promise.all(
      run.ioStopped.map(async (id) => {
        try {
          await (await ctx.admin.get(id)).query(flavorIn(run, id).startReplica());
          restarted.push(id);
        } catch {
          // reported below by omission
        }
      }),
    );
    state = `nothing was promoted; replication restarted on ${restarted.join(', ') || '(none)'}; the old primary ${oldPrimary} stays read_only if it was reachable. Check \`regent status\`, fix the cause, then \`regent failover ${cluster.name}\`.`;
  } else {
    state = `${newPrimary} WAS promoted and takes writes; some later step failed. Run \`regent status\` and re-point any replica that is not replicating from ${newPrimary}.`;
  }
  const durationMs = Date.now() - started;
  await ctx.decision
    .failed({ planId, oldPrimary, promoted: newPrimary, commonPoint: run.commonPoint, unfence: run.wasFenced ? [] : [oldPrimary] })
    .catch((e: Error) => log.error({ event: 'decision_not_saved', err: e.message }, `could not record the failed failover: ${e.message}`));
  await runner.journal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'failed', detail: `${reason}. ${state}`, newPrimary, durationMs }).catch(() => undefined);
  log.error({ event: 'failover_failed', oldPrimary, reason, state, durationMs }, `failover of ${cluster.name} failed: ${reason}`);
  logHookResults(log, 'failover-failed', await runHooks(cluster.hooks.failoverFailed, run.hookEnv(), cluster.hooks.timeoutSeconds));
  return { ok: false, planId, oldPrimary, newPrimary, steps, error: `${reason}. ${state}`, durationMs };
}

function logHookResults(log: Logger, kind: string, results: HookResult[]): void {
  for (const r of results)
    log.info({ event: 'hook_ran', kind, command: r.command, exitCode: r.exitCode, timedOut: r.timedOut, durationMs: r.durationMs, output: r.output.slice(0, 500) }, `${kind} hook ${r.command} -> ${r.exitCode}`);
}
