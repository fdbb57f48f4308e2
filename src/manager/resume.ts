import { analyzeCluster } from '../analysis/analyze.ts';
import type { ClusterView } from '../analysis/cluster-view.ts';
import type { JournalEntry } from '../coordination/coordinator.ts';
import { inMaintenance } from '../decision/decision.ts';
import { executeFailover } from '../recovery/failover.ts';
import { planFailover, type FailoverPlan } from '../recovery/plan.ts';
import { flavorOf } from '../recovery/steps.ts';
import type { ClusterContext } from './cluster-context.ts';
import type { Dispatcher } from './dispatch.ts';

/** What to do about the journal a previous manager left. */
export type ResumeDecision =
  | { kind: 'nothing' }
  /** Nothing was promoted and the old primary is back: give the replicas back to it. */
  | { kind: 'abort'; planId: string; plan: FailoverPlan; reason: string; startedAt: number }
  /** The promotion happened: re-point what is left and publish, under the same plan id. */
  | { kind: 'finish'; planId: string; plan: FailoverPlan; promoted: { candidate: string; commonPoint: string }; replicas: string[] }
  /** Nothing was promoted and the old primary is still gone: run the failover again under the same plan id. */
  | { kind: 'rerun'; planId: string; plan: FailoverPlan }
  /** Nothing was promoted, and a fresh plan is refused: end the old plan with the reason. */
  | { kind: 'refused'; planId: string; reason: string; startedAt: number };

/**
 * After a manager died mid-recovery, its successor (a restarted local manager, or the new etcd
 * leader) finishes the same plan instead of starting another: if the journal shows the promotion
 * happened, only re-pointing and publishing are left; if not, the failover runs again under the
 * same plan id, or ends as aborted when the old primary turned out to be alive. Pure: the journal
 * and a fresh view in, the decision out.
 */
export function decideResume(entries: JournalEntry[], view: ClusterView): ResumeDecision {
  const ended = new Set(entries.filter((e) => e.type === 'end').map((e) => e.planId));
  const open = entries.filter((e): e is Extract<JournalEntry, { type: 'plan' }> => e.type === 'plan' && !ended.has(e.planId) && e.kind === 'failover');
  const last = open[open.length - 1];
  if (!last) return { kind: 'nothing' };
  const plan = last.plan as FailoverPlan;
  const promoteEnd = entries.find((e) => e.type === 'step' && e.planId === last.planId && e.step === 'promote' && e.phase === 'end' && e.ok);
  const promoted = promoteEnd?.type === 'step' ? (promoteEnd.data as { candidate: string; commonPoint: string } | undefined) : undefined;
  if (promoted) {
    const replicas = view.cluster.instances
      .map((i) => i.id)
      .filter((id) => id !== promoted.candidate && id !== plan.oldPrimary && view.observations.get(id)?.reachable && !inMaintenance(view.decision, id, view.now))
      // Already replicating from the new primary: nothing left to do there.
      .filter((id) => {
        const r = view.observations.get(id)?.replica;
        return !r || `${r.sourceHost}:${r.sourcePort}` !== promoted.candidate || r.ioThread === 'no';
      });
    return { kind: 'finish', planId: last.planId, plan, promoted, replicas };
  }
  if (view.observations.get(plan.oldPrimary)?.reachable)
    return { kind: 'abort', planId: last.planId, plan, startedAt: last.at, reason: `resumed by a new manager: ${plan.oldPrimary} is alive again and nothing was promoted` };
  const analysis = analyzeCluster(view);
  const fresh = planFailover(view, { ...analysis, topology: { ...analysis.topology, primary: plan.oldPrimary } }, `resumed: ${plan.trigger}`);
  if ('refusal' in fresh) return { kind: 'refused', planId: last.planId, startedAt: last.at, reason: `resumed by a new manager and refused: ${fresh.refusal}` };
  // As for a new failover (actions.ts): no provisional candidate, no run.
  if (!fresh.choice.candidate) return { kind: 'refused', planId: last.planId, startedAt: last.at, reason: `resumed by a new manager and refused: ${fresh.choice.refusal ?? 'no candidate'}` };
  return { kind: 'rerun', planId: last.planId, plan: fresh };
}

/** Reads the journal, decides with decideResume, and carries the decision out under the cluster lock. */
export async function resumeUnfinished(ctx: ClusterContext, dispatcher: Dispatcher): Promise<void> {
  const entries = await ctx.coordinator.readJournal(ctx.cluster.name);
  await ctx.monitor.refresh();
  const d = decideResume(entries, ctx.view());
  if (d.kind === 'nothing') return;
  const name = ctx.cluster.name;
  ctx.log.warn({ event: 'unfinished_plan_found', cluster: name, planId: d.planId, resume: d.kind }, `unfinished failover ${d.planId} found in the journal: ${d.kind}`);
  const result = await dispatcher.exclusively('cluster', `resume failover ${d.planId}`, async () => {
    switch (d.kind) {
      case 'abort': {
        for (const id of d.plan.replicas) {
          try {
            await (await ctx.admin.get(id)).query(flavorOf(ctx.monitor, id).startReplica());
          } catch {
            // unreachable replica: the analysis reports it
          }
        }
        await ctx.coordinator.appendJournal({ type: 'end', planId: d.planId, cluster: name, at: Date.now(), outcome: 'aborted', detail: `${d.reason}; replication restarted`, durationMs: Date.now() - d.startedAt });
        return undefined;
      }
      case 'refused':
        await ctx.coordinator.appendJournal({ type: 'end', planId: d.planId, cluster: name, at: Date.now(), outcome: 'aborted', detail: d.reason, durationMs: Date.now() - d.startedAt });
        return { refusal: d.reason };
      case 'finish':
      case 'rerun': {
        const r = await executeFailover(ctx.recoveryContext(), d.plan, d.kind === 'finish' ? { planId: d.planId, promoted: d.promoted, replicas: d.replicas } : { planId: d.planId });
        ctx.events.emit('failover', r);
        return r;
      }
    }
  });
  if (result && 'refusal' in result) ctx.logBlocked(`unfinished failover ${d.planId} not resumed: ${result.refusal}`);
}
