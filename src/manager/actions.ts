import { analyzeCluster, type Analysis } from '../analysis/analyze.ts';
import type { ActionName } from '../analysis/problems.ts';
import { antiFlapping } from '../decision/decision.ts';
import { executeFailover, type FailoverResult } from '../recovery/failover.ts';
import { planFailover, type FailoverPlan } from '../recovery/plan.ts';
import { executeRejoin, type RejoinResult } from '../recovery/rejoin.ts';
import { executeSwitchover, type SwitchoverResult } from '../recovery/switchover.ts';
import { checkSwitchover, type LongTransaction, type SwitchoverCheck } from '../recovery/switchover-checks.ts';
import { listWriteTransactions } from '../sql/queries.ts';
import type { ActionOutcome, ClusterContext } from './cluster-context.ts';
import type { ActionSpec, Dispatcher } from './dispatch.ts';
import { fenceForLostLease, fenceStrayPrimaries, restoreWritable } from './fencing.ts';
import { REPAIR_RETRY_MS, repairReplica, repointReplica, restartReplication, type RepairResult } from './repairs.ts';

/** Plans and executes a failover; the caller holds the cluster lock. */
export async function runFailover(ctx: ClusterContext, analysis: Analysis, trigger: string): Promise<FailoverResult | { refusal: string }> {
  const plan = planFailover(ctx.view(), analysis, trigger);
  if ('refusal' in plan) return plan;
  if (!plan.choice.candidate) return { refusal: plan.choice.refusal ?? 'no candidate' };
  const r = await executeFailover(ctx.recoveryContext(), plan);
  ctx.events.emit('failover', r);
  return r;
}

/** DeadPrimary and DeadPrimaryAndSomeReplicas: fail over, unless switched off or blocked by anti-flapping. */
const failover: ActionSpec = {
  lock: 'cluster',
  policy: (ctx) => ({
    enabled: ctx.cluster.failover.automatic
      ? true
      : { why: `automatic failover is off for ${ctx.cluster.name} (failover.automatic: false); run \`regent failover ${ctx.cluster.name}\` to act`, loud: true },
    needsLeader: true,
    afterMs: 0,
    retryMs: 0,
    antiFlapping: antiFlapping(ctx.decision.snapshot, ctx.cluster.failover.blockPeriodSeconds, Date.now()),
  }),
  // The replicas' word confirms the death; the dead primary itself is not asked again (a frozen
  // one would cost a connect timeout for nothing).
  reprobe: (_ctx, p) => (p.code === 'DeadPrimary' || p.code === 'DeadPrimaryAndSomeReplicas' ? p.data.confirmedBy : []),
  async run(ctx, p, analysis): Promise<ActionOutcome> {
    const r = await runFailover(ctx, analysis, `automatic: ${p.code}`);
    if ('refusal' in r) return { outcome: 'refused', detail: r.refusal };
    return r.ok ? { outcome: 'done', detail: `${r.oldPrimary} -> ${r.newPrimary} in ${r.durationMs} ms` } : { outcome: 'failed', detail: r.error ?? 'failed' };
  },
};

/** OrphanInstance: a former primary (or a server that lost its replication) came back. */
const rejoin: ActionSpec = {
  lock: 'cluster',
  policy: (ctx) => ({
    enabled: !ctx.cluster.rejoin.automatic
      ? { why: 'rejoin.automatic is off', loud: false }
      : !ctx.decision.snapshot.decidedPrimary
        ? { why: 'no primary is decided to rejoin to', loud: false }
        : true,
    needsLeader: true,
    afterMs: 0,
    retryMs: REPAIR_RETRY_MS,
  }),
  reprobe: (ctx, p) => [p.instance!, ctx.decision.snapshot.decidedPrimary!],
  async run(ctx, p): Promise<ActionOutcome> {
    const r = await runRejoin(ctx, p.instance!, 'automatic: former primary back');
    return r.ok ? { outcome: 'done', detail: `${r.instance} rejoined (${r.action})` } : { outcome: r.action === 'refuse' ? 'refused' : 'failed', detail: r.error ?? 'not rejoined' };
  },
};

/**
 * UnmanagedReplica with discovery.addReplicas: the replica joins the cluster's instances (the
 * manager then restarts this cluster's supervisor with it). One Regent cannot reach is left
 * reported: adding an address nobody can probe would only trade one problem for another.
 */
const addReplica: ActionSpec = {
  lock: 'local',
  policy: (ctx) => ({
    enabled: !ctx.cluster.discovery.addReplicas
      ? { why: 'discovery.addReplicas is off: the replica is reported, `regent cluster add-instance` adds it', loud: false }
      : !ctx.options.addInstance
        ? { why: 'only a running manager registers instances', loud: false }
        : true,
    needsLeader: true,
    afterMs: 0,
    retryMs: REPAIR_RETRY_MS,
  }),
  reprobe: (_ctx, p) => (p.code === 'UnmanagedReplica' ? [p.data.source] : []),
  async run(ctx, p): Promise<ActionOutcome> {
    if (p.code !== 'UnmanagedReplica') return { outcome: 'refused', detail: `not an unmanaged replica: ${p.code}` };
    if (!p.data.reachable) return { outcome: 'refused', detail: `${p.instance} is not reachable by Regent (${p.data.error ?? 'no answer'}): set report_host/report_port on it to an address Regent reaches` };
    const where = await ctx.options.addInstance!(ctx.cluster.name, p.instance!);
    ctx.log.warn({ event: 'replica_added', cluster: ctx.cluster.name, instance: p.instance, source: p.data.source, where }, `${p.instance} (a replica of ${p.data.source}) added to cluster ${ctx.cluster.name} in ${where}`);
    return { outcome: 'done', detail: `${p.instance} added to ${ctx.cluster.name} in ${where}` };
  },
};

/** What Regent does about each problem's action: one table (as VTOrc does), looked up by name. */
export const ACTIONS: Record<ActionName, ActionSpec> = {
  'add-replica': addReplica,
  failover,
  'fence-stray-primaries': fenceStrayPrimaries,
  'fence-for-lost-lease': fenceForLostLease,
  'restore-writable': restoreWritable,
  rejoin,
  'restart-replication': restartReplication,
  'repoint-replica': repointReplica,
};

async function runRejoin(ctx: ClusterContext, instance: string, trigger: string): Promise<RejoinResult> {
  const r = await executeRejoin(ctx.recoveryContext(), instance, ctx.options.stateDir ?? '.regent-state', trigger);
  ctx.events.emit('rejoin', r);
  return r;
}

/**
 * What a person asks for (CLI, API, dashboard). The same rules as automatic recoveries apply
 * (candidates, checks, the cluster lock); what does not apply is what only guards automation
 * (anti-flapping, failover.automatic).
 */
export class ManualActions {
  constructor(
    private readonly ctx: ClusterContext,
    private readonly dispatcher: Dispatcher,
  ) {}

  /** The failover plan for the cluster as it is now, changing nothing (`--dry-run`). */
  async plan(trigger = 'dry run'): Promise<FailoverPlan | { refusal: string }> {
    const view = await this.#refresh();
    return planFailover(view, analyzeCluster(view), trigger);
  }

  /** Fails over now. A primary that is alive is failed over only with `force` (it is fenced first). */
  async failover(opts: { force: boolean; trigger: string }): Promise<FailoverResult | { refusal: string }> {
    const view = await this.#refresh();
    const analysis = analyzeCluster(view);
    const primary = analysis.topology.primary;
    if (primary && view.observations.get(primary)?.reachable && !opts.force)
      return { refusal: `primary ${primary} of ${this.ctx.cluster.name} is alive: use a switchover for a planned change, or force the failover (regent failover --force, or {"force": true} in the API) to fence it and fail over anyway` };
    return this.dispatcher.exclusively('cluster', `failover (${opts.trigger})`, () => runFailover(this.ctx, analysis, opts.trigger));
  }

  /** A planned switchover: fresh probes, pre-checks (refusals change nothing), then the plan. */
  async switchover(target: string | undefined, trigger: string): Promise<SwitchoverResult | { refusal: string; checks?: SwitchoverCheck }> {
    const { ctx } = this;
    return this.dispatcher.exclusively('cluster', `switchover (${trigger})`, async () => {
      const view = await this.#refresh();
      const analysis = analyzeCluster(view);
      const primary = analysis.topology.primary;
      let longTransactions: LongTransaction[] = [];
      if (primary && view.observations.get(primary)?.reachable) longTransactions = await listWriteTransactions(await ctx.admin.get(primary));
      const checks = checkSwitchover(view, analysis, { target, settings: ctx.cluster.switchover, longTransactions });
      if (checks.refusals.length > 0 || !checks.oldPrimary || !checks.target) {
        ctx.log.warn({ event: 'switchover_refused', cluster: ctx.cluster.name, refusals: checks.refusals }, `switchover of ${ctx.cluster.name} refused: ${checks.refusals.join('; ')}`);
        return { refusal: checks.refusals.join('; '), checks };
      }
      const r = await executeSwitchover(ctx.recoveryContext(), checks.oldPrimary, checks.target, trigger);
      ctx.events.emit('switchover', r);
      return r;
    });
  }

  /** `regent rejoin`: makes an instance a replica of the decided primary. */
  rejoin(instance: string, trigger: string): Promise<RejoinResult | { refusal: string }> {
    return this.dispatcher.exclusively('cluster', `rejoin ${instance} (${trigger})`, () => runRejoin(this.ctx, instance, trigger));
  }

  /** `regent repair NODE --retry|--reclone`. */
  repair(instance: string, action: 'retry' | 'reclone'): Promise<RepairResult | { refusal: string }> {
    return this.dispatcher.exclusively('cluster', `repair ${instance} (${action})`, () => repairReplica(this.ctx, instance, action));
  }

  async #refresh() {
    await this.ctx.monitor.refresh();
    return this.ctx.view();
  }
}
