import { randomUUID } from 'node:crypto';
import type { Flavor } from '../sql/flavor.ts';
import { foldVariables, text } from '../sql/row-values.ts';
import type { GtidState } from '../gtid/index.ts';
import type { Logger } from '../util/log.ts';
import { chooseCandidate } from './candidate.ts';
import { fenceServer } from './fence.ts';
import { runHooks } from './hooks.ts';
import { originSeenByReplicas, replicaFactsFromView, type FailoverPlan, type StepName } from './plan.ts';
import { flavorOf as flavorOfInstance, promote, replicateFrom, StepFailed, StepRunner, waitForGtid, waitRelayLogApplied, waitUntilReplicating, type RecoveryContext, type StepRecord } from './steps.ts';

export type { Publisher, RecoveryContext } from './steps.ts';

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

/**
 * Runs a failover plan: fence, stop IO threads, drain, choose, (catch up), promote, re-point,
 * verify, publish. Every step is journaled before and after. A failure before promotion restarts
 * replication where it was stopped and leaves the cluster as it was; a failure after it leaves a
 * report of exactly which instance is in which state.
 */
/** A failover found unfinished in the journal (its manager died): continue it under the same id. */
export interface ResumeFailover {
  planId: string;
  /** Set when the journal shows the promotion happened: only re-pointing and publishing are left. */
  promoted?: { candidate: string; commonPoint: string };
}

export async function executeFailover(ctx: RecoveryContext, plan: FailoverPlan, resume?: ResumeFailover): Promise<FailoverResult> {
  const { cluster, coordinator, log } = ctx;
  const planId = resume?.planId ?? randomUUID();
  const started = Date.now();
  const oldPrimary = plan.oldPrimary;
  let newPrimary: string | undefined;
  let promoted = false;
  const ioStopped: string[] = [];
  const flog = log.child({ cluster: cluster.name, planId });

  if (!resume) await coordinator.appendJournal({ type: 'plan', planId, cluster: cluster.name, at: started, kind: 'failover', plan });
  flog.warn({ event: resume ? 'failover_resumed' : 'failover_started', oldPrimary, trigger: plan.trigger, candidate: resume?.promoted?.candidate ?? plan.choice.candidate }, `failover of ${cluster.name} ${resume ? `resumed (plan ${planId}${resume.promoted ? ', already promoted' : ''})` : 'started'}`);

  const runner = new StepRunner(ctx, planId, 'failover', flog);
  const step = <T>(name: StepName, fn: () => Promise<{ detail: string; value: T; data?: unknown }>) => runner.run(name, fn);
  const steps = runner.steps;

  const flavorOf = (id: string): Flavor => flavorOfInstance(ctx.monitor, id);
  const hookEnv = () => ({ REGENT_CLUSTER: cluster.name, REGENT_OLD_PRIMARY: oldPrimary, REGENT_NEW_PRIMARY: newPrimary ?? '', REGENT_PLAN_ID: planId });

  try {
    // Everything up to the promotion, skipped when a resumed plan had already promoted.
    const prepareAndPromote = async (): Promise<{ candidate: string; commonPoint: string; replicas: string[] }> => {
      if (cluster.hooks.preFailover.length > 0) {
        const results = await runHooks(cluster.hooks.preFailover, { ...hookEnv(), REGENT_NEW_PRIMARY: plan.choice.candidate ?? '' }, cluster.hooks.timeoutSeconds);
        const bad = results.find((r) => r.exitCode !== 0);
        if (bad) throw new StepFailed(`pre-failover hook "${bad.command}" ${bad.timedOut ? 'timed out' : `exited with ${bad.exitCode}`}: ${bad.output.slice(0, 300)}; failover aborted`);
      }

      await step('fence-old-primary', async () => {
        await ctx.publisher?.fence(cluster.name, oldPrimary);
        const view = ctx.monitor.view();
        if (!view.observations.get(oldPrimary)?.reachable) return { detail: `${oldPrimary} unreachable: writer endpoint fenced; read_only is enforced when it answers again`, value: undefined };
        const killed = await fenceServer(await ctx.admin.get(oldPrimary), flavorOf(oldPrimary), cluster);
        return { detail: `${oldPrimary}: read_only=ON, ${killed} client session(s) killed`, value: undefined };
      });

      // What each replica had received when its IO thread stopped. Read here, once: MariaDB resets
      // Gtid_IO_Pos (and throws the relay log away) when a GTID replica's threads restart.
      const receivedAtStop = new Map<string, GtidState>();
      const sqlBroken = new Map<string, string>();
      const replicas = await step('stop-io-threads', async () => {
        const view = ctx.monitor.view();
        const reachable = plan.replicas.filter((id) => view.observations.get(id)?.reachable && !view.maintenance?.has(id));
        const done: string[] = [];
        const timings: string[] = [];
        const failed: string[] = [];
        await Promise.all(
          reachable.map(async (id) => {
            try {
              const t0 = Date.now();
              const conn = await ctx.admin.get(id);
              const flavor = flavorOf(id);
              const before = flavor.parseReplicaStatus(await conn.query(flavor.replicaStatusQuery));
              // A SQL thread paused without an error must run before the IO thread stops: once both
              // are stopped, a GTID replica discards its relay log on the next start.
              if (before && !before.sqlThread && !before.lastSqlErrno && !ctx.skipDrain) await conn.query(flavor.startSqlThread());
              // The source is gone: end the IO thread at once rather than wait for STOP to get through.
              for (const row of await conn.query(flavor.ioThreadIdQuery)) await conn.query(`KILL CONNECTION ${Number(text(row['id']))}`).catch(() => undefined);
              await conn.query(flavor.stopReplicaIoThread());
              const after = flavor.parseReplicaStatus(await conn.query(flavor.replicaStatusQuery));
              if (after) receivedAtStop.set(id, after.receivedGtid);
              if (after?.lastSqlErrno && !after.sqlThread) sqlBroken.set(id, `${after.lastSqlErrno}: ${after.lastSqlError}`);
              timings.push(`${id} ${Date.now() - t0} ms`);
              done.push(id);
              ioStopped.push(id);
            } catch (e) {
              failed.push(`${id} (${(e as Error).message})`);
            }
          }),
        );
        if (done.length === 0) throw new Error(`no replica could be reached${failed.length ? `: ${failed.join('; ')}` : ''}`);
        return { detail: `IO threads stopped on ${timings.join(', ')}${failed.length ? `; unreachable: ${failed.join('; ')}` : ''}`, value: done };
      });

      await step('drain-relay-logs', async () => {
        // Test-only switch for the chaos suite's "broken build" check: without this step, events a
        // replica received but had not applied are discarded with its relay log at promotion.
        if (ctx.skipDrain) return { detail: 'SKIPPED (test-only REGENT_TEST_SKIP_DRAIN)', value: undefined };
        const notes: string[] = [];
        await Promise.all(
          replicas.map(async (id) => {
            const received = receivedAtStop.get(id);
            if (!received) return;
            if (sqlBroken.has(id)) {
              notes.push(`${id}: SQL thread stopped on error ${sqlBroken.get(id)}, cannot drain`);
              return;
            }
            const reached = await waitRelayLogApplied(await ctx.admin.get(id), flavorOf(id), received, cluster.failover.drainTimeoutSeconds);
            notes.push(reached ? `${id}: applied up to ${received.toString() || '(empty)'}` : `${id}: not drained within ${cluster.failover.drainTimeoutSeconds} s`);
          }),
        );
        return { detail: notes.join('; '), value: undefined };
      });

      const choice = await step('choose-candidate', async () => {
        await Promise.all(replicas.map((id) => ctx.monitor.probers.get(id)?.probeNow()));
        const view = ctx.monitor.view();
        const oldCfg = cluster.instances.find((i) => i.id === oldPrimary);
        const facts = replicaFactsFromView(view, replicas, ctx.knownErrant, true)
          // What was received counts as recorded at the stop, not as the server shows it now; the
          // test-only broken build knows nothing of relay logs at all.
          .map((f) => ({ ...f, received: ctx.skipDrain ? undefined : receivedAtStop.get(f.instance.id) }));
        const c = chooseCandidate(facts, { oldPrimaryDataCenter: oldCfg?.dataCenter, oldPrimaryOrigin: view.observations.get(oldPrimary)?.settings?.gtidOrigin ?? originSeenByReplicas(view, oldPrimary) });
        if (!c.candidate) throw new Error(c.refusal ?? 'no candidate');
        return { detail: `${c.candidate}: ${c.reasons.join('; ')}${c.rejected.length ? `; rejected ${c.rejected.map((r) => `${r.id} (${r.why})`).join(', ')}` : ''}`, value: c };
      });
      const candidate = choice.candidate!;

      if (choice.catchUpFrom) {
        const holder = choice.catchUpFrom;
        await step('catch-up', async () => {
          const conn = await ctx.admin.get(candidate);
          const flavor = flavorOf(candidate);
          const holderInst = cluster.instances.find((i) => i.id === holder)!;
          const holderFlavor = flavorOf(holder);
          const holderConn = await ctx.admin.get(holder);
          const target = holderFlavor.parseGtids(foldVariables(await holderConn.query(holderFlavor.variablesQuery))).executed;
          await replicateFrom(conn, flavor, cluster, holderInst, 'slave_pos');
          const reached = await waitForGtid(conn, flavor, target, cluster.failover.drainTimeoutSeconds);
          await conn.query(flavor.stopReplica());
          if (!reached) throw new Error(`${candidate} did not catch up with ${holder} (${target.toString()}) within ${cluster.failover.drainTimeoutSeconds} s`);
          return { detail: `${candidate} caught up with ${holder} at ${target.toString()}`, value: undefined };
        });
      }

      // The candidate's position at promotion is where the old primary's history and the new one's
      // part: whatever the old primary has beyond it is errant (rejoin rewinds or reports it).
      const commonPoint = await step('promote', async () => {
        const conn = await ctx.admin.get(candidate);
        const flavor = flavorOf(candidate);
        const at = flavor.parseGtids(foldVariables(await conn.query(flavor.variablesQuery))).executed;
        await promote(conn, flavor, cluster);
        promoted = true;
        newPrimary = candidate;
        return { detail: `${candidate} is primary at ${at.toString() || '(empty)'}: replication reset, read_only=OFF`, value: at.toString(), data: { candidate, commonPoint: at.toString() } };
      });

      return { candidate, commonPoint, replicas };
    };
    let candidate: string;
    let commonPoint: string;
    let replicas: string[];
    if (resume?.promoted) {
      ({ candidate, commonPoint } = resume.promoted);
      promoted = true;
      newPrimary = candidate;
      const view = await ctx.monitor.refresh();
      replicas = cluster.instances
        .map((i) => i.id)
        .filter((id) => id !== candidate && id !== oldPrimary && view.observations.get(id)?.reachable && !view.maintenance?.has(id))
        .filter((id) => {
          const r = view.observations.get(id)?.replica;
          return !r || `${r.sourceHost}:${r.sourcePort}` !== candidate || r.ioThread === 'no';
        });
    } else ({ candidate, commonPoint, replicas } = await prepareAndPromote());

    const newInst = cluster.instances.find((i) => i.id === candidate)!;
    const others = replicas.filter((id) => id !== candidate);
    await step('repoint-replicas', async () => {
      const notes: string[] = [];
      const failures: string[] = [];
      await Promise.all(
        others.map(async (id) => {
          try {
            const conn = await ctx.admin.get(id);
            await replicateFrom(conn, flavorOf(id), cluster, newInst, 'slave_pos');
            notes.push(id);
          } catch (e) {
            failures.push(`${id}: ${(e as Error).message}`);
          }
        }),
      );
      if (failures.length > 0 && notes.length === 0 && others.length > 0) throw new Error(`no replica could be re-pointed: ${failures.join('; ')}`);
      return { detail: `replicating from ${candidate}: ${notes.join(', ') || '(none)'}${failures.length ? `; FAILED: ${failures.join('; ')}` : ''}`, value: undefined };
    });

    // Clients and routers follow the new primary as soon as it takes writes; checking the replicas
    // comes after, so it never delays them.
    let candidateProbed: Promise<unknown> | undefined;
    await step('publish', async () => {
      ctx.monitor.lastKnownPrimary = candidate;
      await ctx.publisher?.primaryChanged(cluster.name, candidate);
      candidateProbed = ctx.monitor.probers.get(candidate)?.probeAfterChange();
      await coordinator.updateClusterState(cluster.name, (s) => ({
        ...s,
        primary: candidate,
        lastRecovery: { planId, at: Date.now(), kind: 'failover', oldPrimary, newPrimary: candidate, outcome: 'success' },
        acknowledgedAt: undefined,
        fenced: [...new Set([...(s.fenced ?? []).filter((f) => f !== candidate), oldPrimary])],
        commonPoints: { ...(s.commonPoints ?? {}), [oldPrimary]: commonPoint },
      }));
      return { detail: `primary of ${cluster.name} is ${candidate}`, value: undefined };
    });

    await step('verify', async () => {
      // The failover must not end before the candidate was seen as a primary: its last observation
      // still names the dead primary as its source, and the analysis that follows the failover
      // would find that primary dead again and fail over a second time.
      const [pending] = await Promise.all([waitUntilReplicating(ctx.monitor, others, candidate, 5000), candidateProbed]);
      const detail = pending.length === 0 ? `all ${others.length} replica(s) replicate from ${candidate}` : `not replicating yet: ${pending.join(', ')} (see regent status)`;
      return { detail, value: undefined };
    });

    const durationMs = Date.now() - started;
    await coordinator.appendJournal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'success', detail: `promoted ${candidate}`, newPrimary: candidate, durationMs });
    flog.warn({ event: 'failover_succeeded', oldPrimary, newPrimary: candidate, durationMs }, `failover of ${cluster.name}: ${oldPrimary} -> ${candidate} in ${durationMs} ms`);
    // Awaited (each is bounded by its timeout): the topology is already published, and a one-shot
    // `regent failover` must not exit before its hooks ran.
    logHookResults(flog, 'post-failover', await runHooks(cluster.hooks.postFailover, hookEnv(), cluster.hooks.timeoutSeconds));
    return { ok: true, planId, oldPrimary, newPrimary: candidate, steps, durationMs };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    let state: string;
    if (!promoted) {
      // Nothing was promoted: let the replicas resume where they were, in case the primary returns.
      const restarted: string[] = [];
      await Promise.all(
        ioStopped.map(async (id) => {
          try {
            await (await ctx.admin.get(id)).query(flavorOf(id).startReplica());
            restarted.push(id);
          } catch {
            // reported below by omission
          }
        }),
      );
      state = `nothing was promoted; replication restarted on ${restarted.join(', ') || '(none)'}; the old primary ${oldPrimary} stays fenced. Check \`regent status\`, fix the cause, then \`regent failover ${cluster.name}\`.`;
    } else {
      state = `${newPrimary} WAS promoted and takes writes; some later step failed. Run \`regent status\` and re-point any replica that is not replicating from ${newPrimary}.`;
      ctx.monitor.lastKnownPrimary = newPrimary;
    }
    const durationMs = Date.now() - started;
    await coordinator.appendJournal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'failed', detail: `${reason}. ${state}`, newPrimary, durationMs });
    await coordinator.updateClusterState(cluster.name, (s) => ({
      ...s,
      primary: newPrimary ?? s.primary,
      lastRecovery: { planId, at: Date.now(), kind: 'failover', oldPrimary, newPrimary, outcome: 'failed' },
    }));
    flog.error({ event: 'failover_failed', oldPrimary, reason, state, durationMs }, `failover of ${cluster.name} failed: ${reason}`);
    logHookResults(flog, 'failover-failed', await runHooks(cluster.hooks.failoverFailed, hookEnv(), cluster.hooks.timeoutSeconds));
    return { ok: false, planId, oldPrimary, newPrimary, steps, error: `${reason}. ${state}`, durationMs };
  }
}

function logHookResults(log: Logger, kind: string, results: Awaited<ReturnType<typeof runHooks>>): void {
  for (const r of results)
    log.info({ event: 'hook_ran', kind, command: r.command, exitCode: r.exitCode, timedOut: r.timedOut, durationMs: r.durationMs, output: r.output.slice(0, 500) }, `${kind} hook ${r.command} -> ${r.exitCode}`);
}
