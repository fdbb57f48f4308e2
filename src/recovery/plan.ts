import type { ClusterView } from '../analysis/cluster-view.ts';
import type { Analysis } from '../analysis/analyze.ts';
import { inMaintenance } from '../decision/decision.ts';
import { chooseCandidate, type CandidateChoice, type ReplicaFacts } from './candidate.ts';

export type StepName =
  | 'pre-failover-hooks'
  | 'fence-old-primary'
  | 'stop-io-threads'
  | 'drain-relay-logs'
  | 'choose-candidate'
  | 'catch-up'
  | 'promote'
  | 'repoint-replicas'
  | 'publish'
  | 'verify'
  | 'post-failover-hooks';

/** Steps up to and including the promotion: a resumed plan that had promoted skips them. */
export const STEPS_BEFORE_PUBLISHING: ReadonlySet<StepName> = new Set(['pre-failover-hooks', 'fence-old-primary', 'stop-io-threads', 'drain-relay-logs', 'choose-candidate', 'catch-up', 'promote']);

export interface PlannedStep {
  name: StepName;
  /** What the step does and why, in one line. */
  reason: string;
}

/**
 * A failover as it will run: these steps, in this order, are what executeFailover runs, what the
 * journal records and what `--dry-run` and the dashboard show.
 */
export interface FailoverPlan {
  cluster: string;
  kind: 'failover';
  oldPrimary: string;
  /** Provisional: the choice is made again from exact positions after the relay logs are drained. */
  choice: CandidateChoice;
  replicas: string[];
  steps: PlannedStep[];
  trigger: string;
}

/**
 * The facts candidate choice needs, from a view. Before draining, a replica "will have" what it
 * executed plus what its IO thread already received (the relay log it is about to apply).
 */
export function replicaFactsFromView(view: ClusterView, replicaIds: string[], afterDrain: boolean): ReplicaFacts[] {
  // In config order: the last tie-breaker of candidate choice.
  const order = view.cluster.instances.map((i) => i.id);
  const ids = [...replicaIds].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return ids.map((id): ReplicaFacts => {
    const inst = view.cluster.instances.find((i) => i.id === id)!;
    const o = view.observations.get(id);
    const s = o?.settings;
    const r = o?.replica;
    const executed = o?.gtids ? (afterDrain || !r ? o.gtids.executed : o.gtids.executed.union(r.receivedGtid)) : undefined;
    return {
      instance: inst,
      reachable: o?.reachable ?? false,
      executed,
      received: r?.receivedGtid,
      logBin: s?.logBin ?? false,
      logReplicaUpdates: s?.logReplicaUpdates ?? false,
      sqlDelay: r?.sqlDelay ?? 0,
      sqlError: r && r.lastSqlErrno && !r.sqlThread ? `${r.lastSqlErrno}: ${r.lastSqlError}` : undefined,
      errant: view.decision?.errant.get(id),
      maintenance: inMaintenance(view.decision, id, view.now),
      lagSeconds: r?.secondsBehind ?? o?.lastMeasuredLagSeconds,
    };
  });
}

/** The failover plan for a view whose analysis found the primary dead (or a person forced it). */
export function planFailover(view: ClusterView, analysis: Analysis, trigger: string): FailoverPlan | { refusal: string } {
  const oldPrimary = analysis.topology.primary;
  if (!oldPrimary) return { refusal: 'no primary is known for this cluster, so there is nothing to fail over from' };
  // Only the replicas that followed the old primary take part: a former primary waiting for a
  // rejoin, or an instance replicating from elsewhere, has a history of its own and is handled by
  // rejoin/repair, never promoted or re-pointed blindly.
  const replicas = [...analysis.topology.sources.entries()].filter(([, src]) => src === oldPrimary).map(([id]) => id);
  const oldCfg = view.cluster.instances.find((i) => i.id === oldPrimary);
  const oldObs = view.observations.get(oldPrimary);
  const facts = replicaFactsFromView(view, replicas, false);
  const choice = chooseCandidate(facts, {
    oldPrimaryDataCenter: oldCfg?.dataCenter,
    oldPrimaryOrigin: oldObs?.settings?.gtidOrigin ?? originSeenByReplicas(view, oldPrimary),
    maxLagSeconds: view.cluster.failover.maxLagForCandidateSeconds,
  });
  const reachableReplicas = facts.filter((f) => f.reachable).map((f) => f.instance.id);
  const hooks = view.cluster.hooks;
  const steps: PlannedStep[] = [];
  if (hooks.preFailover.length > 0) steps.push({ name: 'pre-failover-hooks', reason: `run ${hooks.preFailover.length} pre-failover hook(s); a non-zero exit aborts the failover` });
  steps.push(
    {
      name: 'fence-old-primary',
      reason: oldObs?.reachable
        ? `${oldPrimary} is reachable: set read_only and kill client sessions so nobody writes to it`
        : `${oldPrimary} is unreachable: routers stop sending it writes; it is set read_only the moment it answers again`,
    },
    { name: 'stop-io-threads', reason: `stop IO threads on ${reachableReplicas.join(', ') || '(none reachable)'} so no replica takes more from the old primary` },
    { name: 'drain-relay-logs', reason: 'wait until each replica applied everything it received (nothing acknowledged is left behind)' },
    { name: 'choose-candidate', reason: `choose again from exact positions (now: ${choice.candidate ?? 'none'})` },
    {
      name: 'catch-up',
      reason: choice.catchUpFrom
        ? `${choice.candidate} replicates from ${choice.catchUpFrom} until it has everything`
        : 'only if a replica that may not be promoted holds transactions the candidate lacks (now: not needed)',
    },
    { name: 'promote', reason: `${choice.candidate ?? '(candidate)'}: stop and reset replication, semi-sync primary, read_only=OFF` },
    { name: 'repoint-replicas', reason: 'every other reachable replica replicates from the new primary by GTID' },
    { name: 'publish', reason: 'the decided primary changes: routers and the published topology follow it' },
    { name: 'verify', reason: 'replicas connected to the new primary' },
  );
  if (hooks.postFailover.length > 0) steps.push({ name: 'post-failover-hooks', reason: `run ${hooks.postFailover.length} post-failover hook(s)` });
  return { cluster: view.cluster.name, kind: 'failover', oldPrimary, choice, replicas, steps, trigger };
}

/** The old primary's GTID origin when it is unreachable, as its replicas saw it (MariaDB server_id, MySQL server_uuid). */
export function originSeenByReplicas(view: ClusterView, oldPrimary: string): string | undefined {
  for (const o of view.observations.values()) {
    const r = o.replica;
    if (r && `${r.sourceHost}:${r.sourcePort}` === oldPrimary && r.sourceOrigin) return r.sourceOrigin;
  }
  return undefined;
}

export function renderPlan(plan: FailoverPlan | { refusal: string }): string {
  if ('refusal' in plan) return `no failover: ${plan.refusal}`;
  const lines = [`failover plan for cluster ${plan.cluster} (trigger: ${plan.trigger})`, `  old primary: ${plan.oldPrimary}`];
  if (plan.choice.candidate) lines.push(`  new primary: ${plan.choice.candidate}`);
  else lines.push(`  NO CANDIDATE: ${plan.choice.refusal}`);
  for (const r of plan.choice.reasons) lines.push(`    because ${r}`);
  for (const r of plan.choice.rejected) lines.push(`    not ${r.id}: ${r.why}`);
  lines.push('  steps:');
  plan.steps.forEach((s, i) => lines.push(`    ${i + 1}. ${s.name}: ${s.reason}`));
  return lines.join('\n');
}
