import { EventEmitter } from 'node:events';
import { analyzeCluster, type Analysis } from '../analysis/analyze.ts';
import type { ClusterView } from '../analysis/cluster-view.ts';
import type { Problem, ProblemCode } from '../analysis/problems.ts';
import type { ClusterConfig, Config } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { ClusterMonitor } from '../monitor/cluster-monitor.ts';
import { AdminPool } from '../sql/admin-pool.ts';
import type { Logger } from '../util/log.ts';
import { executeFailover, type FailoverResult, type Publisher } from '../recovery/failover.ts';
import { fenceServer } from '../recovery/fence.ts';
import { planFailover, type FailoverPlan } from '../recovery/plan.ts';
import { flavorOf, replicateFrom, type RecoveryContext } from '../recovery/steps.ts';
import { executeRejoin, type RejoinResult } from '../recovery/rejoin.ts';
import { decideRejoin } from '../recovery/rejoin-plan.ts';
import { cloneInstance } from '../setup/clone.ts';
import { executeSwitchover, type SwitchoverResult } from '../recovery/switchover.ts';
import { checkSwitchover, type LongTransaction, type SwitchoverCheck } from '../recovery/switchover-checks.ts';
import { listWriteTransactions } from '../sql/queries.ts';

type Recovery = (s: ClusterSupervisor, problem: Problem, analysis: Analysis) => Promise<void>;

/**
 * What Regent does about each problem: one table, no nested ifs (as VTOrc does). Problems without
 * an entry are reported only.
 */
const RECOVERIES: Partial<Record<ProblemCode, Recovery>> = {
  DeadPrimary: (s, p, a) => s.autoFailover(p, a),
  DeadPrimaryAndSomeReplicas: (s, p, a) => s.autoFailover(p, a),
  TwoWritablePrimaries: (s) => s.fenceStrayPrimaries(),
  OrphanInstance: (s, p) => s.autoRejoin(p),
  NoWritablePrimary: (s, p) => s.restoreAfterLease(p),
  ReplicationStopped: (s, p) => s.autoRestartReplication(p),
  ReplicaPointsElsewhere: (s, p) => s.autoRepoint(p),
};

/** A repair that did not work is tried again after this long, not on every probe. */
const REPAIR_RETRY_MS = 30000;

export interface SupervisorEvents {
  analysis: [Analysis];
  problem: [{ kind: 'started' | 'resolved'; problem: Problem }];
  failover: [FailoverResult];
  switchover: [SwitchoverResult];
  rejoin: [RejoinResult];
  repair: [{ instance: string; action: string }];
  step: [{ planId: string; kind: string; step: string; phase: 'start' | 'end'; ok?: boolean; durationMs?: number; detail?: string }];
}

/**
 * Watches one cluster and acts on it: every observation triggers a fresh analysis (coalesced, so a
 * burst of probes costs one analysis at a time), and the recovery table decides what to do.
 */
export class ClusterSupervisor extends EventEmitter<SupervisorEvents> {
  readonly monitor: ClusterMonitor;
  readonly admin: AdminPool;
  /** Replicas seen with errant transactions while the primary was reachable: never promoted. */
  readonly knownErrant = new Map<string, string>();
  lastAnalysis?: Analysis;
  #evaluating = false;
  #dirty = false;
  #acting = false;
  #activeProblems = new Map<string, Problem>();
  #problemSince = new Map<string, number>();
  /** Former primaries Regent fenced (from shared state): never adopted as primary by observation. */
  #fenced = new Set<string>();
  /** Instances being fenced right now (see fenceStrayPrimaries). */
  #fencing = new Set<string>();
  #repairAttempts = new Map<string, number>();
  #lastBlockedLog = new Map<string, number>();
  #stopped = false;
  #stateReadAt = 0;
  /** Recoveries may start (leader, and any unfinished plan was dealt with). */
  #active = false;

  constructor(
    readonly cluster: ClusterConfig,
    readonly coordinator: Coordinator,
    readonly log: Logger,
    readonly publisher?: Publisher,
    readonly options: {
      pauseAfterStep?: string;
      delayBeforeStep?: { step: string; ms: number };
      skipDrain?: boolean;
      observeOnly?: boolean;
      stateDir?: string;
      coordination?: Config['coordination'];
    } = {},
  ) {
    super();
    this.monitor = new ClusterMonitor(cluster, log);
    this.admin = new AdminPool(cluster);
    this.monitor.on('observation', () => this.#schedule());
  }

  async start(): Promise<void> {
    await this.#loadState();
    this.monitor.start();
    this.admin.warm(this.cluster.instances.map((i) => i.id));
    if (this.coordinator.isLeader()) await this.becomeActive();
  }

  async #loadState(): Promise<void> {
    try {
      const state = await this.coordinator.getClusterState(this.cluster.name);
      if (state.primary) this.monitor.lastKnownPrimary = state.primary;
      this.#applyMaintenance(state.maintenance);
    } catch (e) {
      this.log.warn({ event: 'state_unavailable', cluster: this.cluster.name, err: (e as Error).message }, 'shared state unavailable; observing only');
    }
  }

  /**
   * This manager may act now (it is the leader, or the only manager): first finish whatever a
   * previous leader left unfinished, then let analyses trigger recoveries.
   */
  async becomeActive(): Promise<void> {
    if (this.options.observeOnly) return;
    await this.#loadState();
    try {
      await this.resumeUnfinished();
    } catch (e) {
      this.log.error({ event: 'resume_failed', cluster: this.cluster.name, err: (e as Error).message }, 'could not read or finish the journal');
    }
    this.#active = true;
    this.#schedule();
  }

  becomePassive(): void {
    this.#active = false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.monitor.stop();
    await this.admin.closeAll();
  }

  get acting(): boolean {
    return this.#acting;
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#evaluating) {
      this.#dirty = true;
      return;
    }
    this.#evaluating = true;
    void this.#evaluateLoop();
  }

  async #evaluateLoop(): Promise<void> {
    try {
      do {
        this.#dirty = false;
        await this.evaluate();
      } while (this.#dirty && !this.#stopped);
    } catch (e) {
      this.log.error({ event: 'evaluate_failed', cluster: this.cluster.name, err: (e as Error).message }, 'analysis failed');
    } finally {
      this.#evaluating = false;
    }
  }

  async evaluate(): Promise<Analysis | undefined> {
    // Shared state may be unreachable (etcd down): monitoring and routing go on regardless.
    await this.#followState().catch(() => undefined);
    const view = this.monitor.view();
    // Until every instance was probed once, the picture is incomplete: judge nothing yet.
    if ([...view.observations.values()].some((o) => o.at === 0)) return undefined;
    const analysis = analyzeCluster(view);
    this.lastAnalysis = analysis;
    this.#trackErrant(analysis);
    // While an action runs, the cluster passes through states it is meant to (two writable nodes
    // for an instant during a switchover): report problems once it has settled, not mid-way.
    if (!this.#acting) this.#trackProblems(analysis.problems);

    const primary = analysis.topology.primary;
    const pObs = primary ? view.observations.get(primary) : undefined;
    this.monitor.setSuspecting(!this.#acting && Boolean(primary && pObs && !pObs.reachable));
    if (!this.options.observeOnly && !this.#acting && primary && primary !== this.monitor.lastKnownPrimary && this.#mayAdopt(primary, analysis, view)) {
      this.log.warn({ event: 'primary_adopted', cluster: this.cluster.name, primary, previous: this.monitor.lastKnownPrimary, evidence: analysis.topology.primaryEvidence }, `primary of ${this.cluster.name} is now ${primary} (${analysis.topology.primaryEvidence})`);
      this.monitor.lastKnownPrimary = primary;
      // Only the leader writes shared state; a follower just follows what it sees.
      if (this.coordinator.isLeader()) await this.coordinator.updateClusterState(this.cluster.name, (s) => ({ ...s, primary })).catch(() => undefined);
    }
    this.emit('analysis', analysis);

    if (!this.#acting && this.#active && this.coordinator.isLeader() && !this.options.observeOnly) {
      for (const p of analysis.problems) {
        const recovery = RECOVERIES[p.code];
        if (recovery && (!p.instance || !view.maintenance?.has(p.instance))) {
          await recovery(this, p, analysis);
          break;
        }
      }
    }
    return analysis;
  }

  /**
   * Re-reads shared state now and then: maintenance windows (set through the API or another
   * manager) and, when observe-only (a standalone proxy), the primary the acting manager decided.
   */
  async #followState(): Promise<void> {
    if (Date.now() - this.#stateReadAt < 250) return;
    this.#stateReadAt = Date.now();
    const state = await this.coordinator.getClusterState(this.cluster.name);
    if (this.options.observeOnly && state.primary) this.monitor.lastKnownPrimary = state.primary;
    this.#applyMaintenance(state.maintenance);
    this.#fenced = new Set(state.fenced ?? []);
    this.monitor.fenced = this.#fenced;
  }

  async refreshMaintenance(): Promise<void> {
    this.#stateReadAt = 0;
    await this.#followState();
    this.#schedule();
  }

  #applyMaintenance(m: Record<string, number> | undefined): void {
    const now = Date.now();
    const active = Object.entries(m ?? {}).filter(([, until]) => until > now).map(([id]) => id);
    this.monitor.maintenance = new Set(active);
  }

  #trackErrant(analysis: Analysis): void {
    const primary = analysis.topology.primary;
    const pObs = primary ? this.monitor.probers.get(primary)?.latest : undefined;
    if (!pObs?.reachable) return; // only judge errant transactions against a live primary
    const errant = new Map(analysis.problems.filter((p) => p.code === 'ErrantGtid' && p.instance).map((p) => [p.instance!, p.summary]));
    for (const id of [...this.knownErrant.keys()]) if (!errant.has(id)) this.knownErrant.delete(id);
    for (const [id, s] of errant) this.knownErrant.set(id, s.replace(/^.*lacks: /, ''));
  }

  /**
   * Whether the primary seen in the topology may replace the one Regent decided on (a person changed
   * it by hand, or Regent starts without a record). Never on stale facts: right after a failover the
   * replicas' last probes still point at the old primary, which may be writable again after a freeze.
   */
  #mayAdopt(primary: string, analysis: Analysis, view: ClusterView): boolean {
    const p = view.observations.get(primary);
    if (!p?.reachable || !p.settings || p.settings.readOnly) return false;
    if (analysis.problems.some((x) => x.code === 'TwoWritablePrimaries')) return false;
    if (this.#fenced.has(primary)) return false;
    if (!this.monitor.lastKnownPrimary) return true;
    const fresh = [...view.observations.values()].every((o) => !o.reachable || o.at > this.monitor.decidedAt + 100);
    const followed = [...analysis.topology.sources.values()].some((src) => src === primary);
    return fresh && followed;
  }

  /** How long a problem has been seen without interruption (ms). */
  problemAge(p: Problem): number {
    const since = this.#problemSince.get(`${p.code}|${p.instance ?? ''}`);
    return since === undefined ? 0 : Date.now() - since;
  }

  #trackProblems(problems: Problem[]): void {
    const now = new Map(problems.map((p) => [`${p.code}|${p.instance ?? ''}`, p]));
    for (const k of [...this.#problemSince.keys()]) if (!now.has(k)) this.#problemSince.delete(k);
    for (const [k, p] of now) {
      if (!this.#problemSince.has(k)) this.#problemSince.set(k, Date.now());
      if (!this.#activeProblems.has(k)) {
        this.log[p.severity === 'critical' ? 'error' : 'warn']({ event: 'problem_started', cluster: this.cluster.name, code: p.code, instance: p.instance, evidence: p.evidence }, p.summary);
        this.emit('problem', { kind: 'started', problem: p });
      }
    }
    for (const [k, p] of this.#activeProblems) {
      if (!now.has(k)) {
        this.log.info({ event: 'problem_resolved', cluster: this.cluster.name, code: p.code, instance: p.instance }, `resolved: ${p.summary}`);
        this.emit('problem', { kind: 'resolved', problem: p });
      }
    }
    this.#activeProblems = now;
  }

  /** DeadPrimary: fail over unless switched off or blocked by anti-flapping. */
  async autoFailover(problem: Problem, analysis: Analysis): Promise<void> {
    if (!this.cluster.failover.automatic) {
      this.#logBlocked(`automatic failover is off for ${this.cluster.name}: ${problem.summary}; run \`regent failover ${this.cluster.name}\` to act`);
      return;
    }
    const state = await this.coordinator.getClusterState(this.cluster.name);
    const last = state.lastRecovery;
    const blockMs = this.cluster.failover.blockPeriodSeconds * 1000;
    if (last && Date.now() - last.at < blockMs && !(state.acknowledgedAt && state.acknowledgedAt >= last.at)) {
      this.#logBlocked(
        `failover of ${this.cluster.name} blocked by anti-flapping: the last recovery (${last.kind} ${last.oldPrimary} -> ${last.newPrimary ?? 'none'}) was at ${new Date(last.at).toISOString()} (block period ${this.cluster.failover.blockPeriodSeconds} s); run \`regent ack ${this.cluster.name}\` to allow it`,
      );
      return;
    }
    await this.runFailover(analysis, `automatic: ${problem.code}`);
  }

  /** The context every recovery runs with. */
  recoveryContext(): RecoveryContext {
    return {
      cluster: this.cluster,
      monitor: this.monitor,
      admin: this.admin,
      coordinator: this.coordinator,
      log: this.log,
      publisher: this.publisher,
      knownErrant: this.knownErrant,
      pauseAfterStep: this.options.pauseAfterStep,
      delayBeforeStep: this.options.delayBeforeStep,
      skipDrain: this.options.skipDrain,
      onStep: (e) => this.emit('step', e),
    };
  }

  /**
   * Runs one action on this cluster at a time: the in-process flag stops a second analysis from
   * starting one, the coordinator's lock stops another process (a CLI, another manager).
   */
  async #exclusively<T>(what: string, fn: () => Promise<T>): Promise<T | { refusal: string }> {
    if (this.#acting) return { refusal: 'another action is under way on this cluster' };
    this.#acting = true;
    // Fast probing is for confirming a dead primary; an action probes what it needs itself.
    this.monitor.setSuspecting(false);
    let release: (() => Promise<void>) | undefined;
    try {
      release = await this.coordinator.lockCluster(this.cluster.name, what);
      return await fn();
    } catch (e) {
      return { refusal: (e as Error).message };
    } finally {
      await release?.();
      this.#acting = false;
      this.#schedule();
    }
  }

  /** Plans and executes a failover under the cluster lock. Used by automatic and manual failover. */
  async runFailover(analysis: Analysis, trigger: string): Promise<FailoverResult | { refusal: string }> {
    const result = await this.#exclusively(`failover (${trigger})`, async (): Promise<FailoverResult | { refusal: string }> => {
      const plan = planFailover(this.monitor.view(), analysis, this.knownErrant, trigger);
      if ('refusal' in plan || !plan.choice.candidate) return { refusal: 'refusal' in plan ? plan.refusal : (plan.choice.refusal ?? 'no candidate') };
      const r = await executeFailover(this.recoveryContext(), plan as FailoverPlan);
      if (r.newPrimary) {
        this.#fenced.add(r.oldPrimary);
        this.#fenced.delete(r.newPrimary);
      }
      this.#stateReadAt = 0;
      this.emit('failover', r);
      return r;
    });
    if ('refusal' in result) this.#logBlocked(`no failover of ${this.cluster.name}: ${result.refusal}`);
    return result;
  }

  /**
   * After a manager died mid-recovery, its successor (a restarted local manager, or the new etcd
   * leader) finishes the same plan instead of starting another: if the journal shows the promotion
   * happened, only re-pointing and publishing are left; if not, the failover runs again under the
   * same plan id (or ends as aborted when the old primary turned out to be alive).
   */
  async resumeUnfinished(): Promise<void> {
    const entries = await this.coordinator.readJournal(this.cluster.name);
    const ended = new Set(entries.filter((e) => e.type === 'end').map((e) => e.planId));
    const open = entries.filter((e): e is Extract<typeof e, { type: 'plan' }> => e.type === 'plan' && !ended.has(e.planId) && e.kind === 'failover');
    const last = open[open.length - 1];
    if (!last) return;
    const promoteEnd = entries.find((e) => e.type === 'step' && e.planId === last.planId && e.step === 'promote' && e.phase === 'end' && e.ok);
    const promoted = promoteEnd && promoteEnd.type === 'step' ? (promoteEnd.data as { candidate: string; commonPoint: string } | undefined) : undefined;
    const plan = last.plan as FailoverPlan;
    this.log.warn({ event: 'unfinished_plan_found', cluster: this.cluster.name, planId: last.planId, promoted: promoted?.candidate }, `unfinished failover ${last.planId} found in the journal; finishing it`);
    await this.monitor.refresh();
    const view = this.monitor.view();
    if (!promoted && view.observations.get(plan.oldPrimary)?.reachable) {
      // Nothing was promoted and the old primary is back: give the replicas back to it.
      await this.#exclusively('abort unfinished failover', async () => {
        for (const id of plan.replicas) {
          try {
            await (await this.admin.get(id)).query(flavorOf(this.monitor, id).startReplica());
          } catch {
            // unreachable replica: the analysis reports it
          }
        }
        await this.coordinator.appendJournal({ type: 'end', planId: last.planId, cluster: this.cluster.name, at: Date.now(), outcome: 'aborted', detail: `resumed by a new manager: ${plan.oldPrimary} is alive again and nothing was promoted; replication restarted`, durationMs: Date.now() - last.at });
        return undefined;
      });
      return;
    }
    const result = await this.#exclusively(`resume failover ${last.planId}`, async () => {
      const analysis = analyzeCluster(view);
      const fresh = promoted ? plan : planFailover(view, { ...analysis, topology: { ...analysis.topology, primary: plan.oldPrimary } }, this.knownErrant, `resumed: ${plan.trigger}`);
      if ('refusal' in fresh) {
        await this.coordinator.appendJournal({ type: 'end', planId: last.planId, cluster: this.cluster.name, at: Date.now(), outcome: 'aborted', detail: `resumed by a new manager and refused: ${fresh.refusal}`, durationMs: Date.now() - last.at });
        return { refusal: fresh.refusal };
      }
      const r = await executeFailover(this.recoveryContext(), fresh, { planId: last.planId, promoted });
      this.emit('failover', r);
      return r;
    });
    if ('refusal' in result) this.#logBlocked(`unfinished failover ${last.planId} not resumed: ${result.refusal}`);
  }

  /** A planned switchover: fresh probes, pre-checks (refusals change nothing), then the plan. */
  async runSwitchover(target: string | undefined, trigger: string): Promise<SwitchoverResult | { refusal: string; checks?: SwitchoverCheck }> {
    return this.#exclusively(`switchover (${trigger})`, async () => {
      const view = await this.monitor.refresh();
      const analysis = analyzeCluster(view);
      const primary = analysis.topology.primary;
      let longTransactions: LongTransaction[] = [];
      if (primary && view.observations.get(primary)?.reachable) longTransactions = await listWriteTransactions(await this.admin.get(primary));
      const checks = checkSwitchover(view, analysis, { target, knownErrant: this.knownErrant, settings: this.cluster.switchover, longTransactions });
      if (checks.refusals.length > 0 || !checks.oldPrimary || !checks.target) {
        this.log.warn({ event: 'switchover_refused', cluster: this.cluster.name, refusals: checks.refusals }, `switchover of ${this.cluster.name} refused: ${checks.refusals.join('; ')}`);
        return { refusal: checks.refusals.join('; '), checks };
      }
      const r = await executeSwitchover(this.recoveryContext(), checks.oldPrimary, checks.target, trigger);
      this.emit('switchover', r);
      return r;
    });
  }

  /** `regent rejoin` / automatic rejoin of a former primary. */
  async runRejoin(instance: string, trigger: string): Promise<RejoinResult | { refusal: string }> {
    return this.#exclusively(`rejoin ${instance} (${trigger})`, async () => {
      const r = await executeRejoin(this.recoveryContext(), instance, this.options.stateDir ?? '.regent-state', trigger);
      this.emit('rejoin', r);
      return r;
    });
  }

  /**
   * `regent repair NODE`: what a person chose for a replica Regent will not fix by itself (a SQL
   * thread stopped on an error is never skipped silently). retry: start replication again (the
   * error was transient); reclone: rebuild its data from a healthy replica (or the primary).
   */
  async runRepair(instance: string, action: 'retry' | 'reclone'): Promise<{ ok: boolean; instance: string; action: string; detail: string } | { refusal: string }> {
    return this.#exclusively(`repair ${instance} (${action})`, async () => {
      const primary = this.monitor.lastKnownPrimary;
      if (!primary) return { refusal: 'no primary is known for the cluster' };
      if (instance === primary) return { refusal: `${instance} is the primary` };
      const conn = await this.admin.get(instance);
      const flavor = flavorOf(this.monitor, instance);
      if (action === 'retry') {
        await conn.query(flavor.startReplica());
        await new Promise((r) => setTimeout(r, 1000));
        const r = (await this.monitor.probers.get(instance)?.probeNow())?.replica;
        const ok = Boolean(r && r.ioThread === 'yes' && r.sqlThread);
        const detail = ok ? 'replication running again' : `still failing: ${r?.lastSqlErrno ? `SQL error ${r.lastSqlErrno}: ${r.lastSqlError}` : r?.lastIoErrno ? `IO error ${r.lastIoErrno}: ${r.lastIoError}` : 'not running'}; consider reclone`;
        this.emit('repair', { instance, action: `retry: ${detail}` });
        return { ok, instance, action, detail };
      }
      const healthy = [...this.monitor.probers.values()].map((p) => p.latest).find((o) => o.id !== instance && o.id !== primary && o.reachable && o.replica?.ioThread === 'yes' && o.replica.sqlThread);
      const sourceId = healthy?.id ?? primary;
      const byId = (id: string) => this.cluster.instances.find((i) => i.id === id)!;
      this.admin.drop(instance);
      const result = await cloneInstance(this.cluster, { source: byId(sourceId), target: byId(instance), primary: byId(primary), discardTargetData: true });
      const detail = `data rebuilt from ${sourceId} (${result.databases.join(', ') || 'no application databases'}, ${result.bytes} bytes, GTID ${result.gtid || '(empty)'}) in ${result.durationMs} ms`;
      this.log.warn({ event: 'replica_recloned', cluster: this.cluster.name, instance, source: sourceId }, `${instance}: ${detail}`);
      this.emit('repair', { instance, action: `reclone: ${detail}` });
      return { ok: true, instance, action, detail };
    });
  }

  /** Returns true (and notes the attempt) when a repair of this kind on this instance may run now. */
  #mayRepair(key: string, p: Problem, afterMs: number): boolean {
    if (this.problemAge(p) < afterMs) return false;
    const last = this.#repairAttempts.get(key) ?? 0;
    if (Date.now() - last < REPAIR_RETRY_MS) return false;
    this.#repairAttempts.set(key, Date.now());
    return true;
  }

  /** OrphanInstance: a former primary (or a server that lost its replication) came back. */
  async autoRejoin(p: Problem): Promise<void> {
    if (!p.instance || !this.cluster.rejoin.automatic || !this.monitor.lastKnownPrimary) return;
    if (!this.#mayRepair(`rejoin|${p.instance}`, p, 0)) return;
    const r = await this.runRejoin(p.instance, 'automatic: former primary back');
    if ('refusal' in r) this.#logBlocked(`rejoin of ${p.instance} postponed: ${r.refusal}`);
  }

  /** ReplicationStopped without an error, for longer than repair.afterSeconds: start it again. */
  async autoRestartReplication(p: Problem): Promise<void> {
    if (!p.instance || !this.cluster.repair.restartStoppedReplication) return;
    if (!this.#mayRepair(`restart|${p.instance}`, p, this.cluster.repair.afterSeconds * 1000)) return;
    const id = p.instance;
    await this.#exclusively(`restart replication on ${id}`, async () => {
      const o = await this.monitor.probers.get(id)?.probeNow();
      const r = o?.replica;
      // Re-check: never restart a thread that stopped on an error (that is for a person: regent repair).
      if (!r || r.lastSqlErrno || r.lastIoErrno || (r.ioThread !== 'no' && r.sqlThread)) return;
      await (await this.admin.get(id)).query(flavorOf(this.monitor, id).startReplica());
      this.log.warn({ event: 'replication_restarted', cluster: this.cluster.name, instance: id }, `${id}: replication was stopped without an error for ${Math.round(this.problemAge(p) / 1000)} s; restarted`);
      this.emit('repair', { instance: id, action: 'restart replication' });
    });
  }

  /** ReplicaPointsElsewhere: re-point to the current primary, if it has nothing the primary lacks. */
  async autoRepoint(p: Problem): Promise<void> {
    const primary = this.monitor.lastKnownPrimary;
    if (!p.instance || !primary || !this.cluster.repair.repointStrayReplicas) return;
    if (!this.#mayRepair(`repoint|${p.instance}`, p, this.cluster.repair.afterSeconds * 1000)) return;
    const id = p.instance;
    await this.#exclusively(`re-point ${id}`, async () => {
      const node = await this.monitor.probers.get(id)?.probeNow();
      const pObs = await this.monitor.probers.get(primary)?.probeNow();
      const src = node?.replica ? `${node.replica.sourceHost}:${node.replica.sourcePort}` : undefined;
      if (!node?.reachable || !pObs?.reachable || !src || src === primary) return;
      const srcObs = this.monitor.probers.get(src)?.latest;
      const state = await this.coordinator.getClusterState(this.cluster.name);
      // Only re-point away from a source that is gone or fenced: a live chain is a DBA's choice.
      if (srcObs?.reachable && !(state.fenced ?? []).includes(src)) return;
      const flavor = flavorOf(this.monitor, id);
      const common = state.commonPoints?.[src];
      const decision = decideRejoin({ node, primary: pObs, commonPoint: common !== undefined ? flavor.parseGtid(common) : undefined, policy: 'manual', flashbackAvailable: false });
      if (decision.action !== 'join') {
        this.#logBlocked(`${id} replicates from ${src} and cannot be re-pointed safely: ${decision.reason}`);
        return;
      }
      const inst = this.cluster.instances.find((i) => i.id === primary)!;
      await replicateFrom(await this.admin.get(id), flavor, this.cluster, inst, 'slave_pos');
      this.log.warn({ event: 'replica_repointed', cluster: this.cluster.name, instance: id, from: src, to: primary }, `${id} replicated from ${src} (gone); now from ${primary}`);
      this.emit('repair', { instance: id, action: `re-pointed from ${src} to ${primary}` });
    });
  }

  /**
   * A writable instance that is not the primary Regent decided on (a frozen old primary that woke
   * up, a restarted server someone made writable) is set read_only at once: rule 2, one writer.
   */
  async fenceStrayPrimaries(): Promise<void> {
    const keep = this.monitor.lastKnownPrimary;
    if (!keep) return;
    for (const [id, prober] of this.monitor.probers) {
      const o = prober.latest;
      if (id === keep || !o.reachable || !o.settings || o.settings.readOnly || o.replica?.sourceHost) continue;
      if (this.monitor.maintenance.has(id) || this.#fencing.has(id)) continue;
      // Until the fresh probe below lands, the last observation still says writable: without this
      // guard the next analysis pass would fence again and kill the sessions opened meanwhile.
      this.#fencing.add(id);
      try {
        const conn = await this.admin.get(id);
        const killed = await fenceServer(conn, prober.flavor!, this.cluster);
        this.log.warn({ event: 'fenced_stray_primary', cluster: this.cluster.name, instance: id, primary: keep, killed }, `${id} was writable but ${keep} is the primary: set read_only, ${killed} session(s) killed`);
        await this.coordinator.updateClusterState(this.cluster.name, (s) => ({ ...s, fenced: [...new Set([...(s.fenced ?? []), id])] }));
        await prober.probeAfterChange();
      } catch (e) {
        this.log.error({ event: 'fence_failed', cluster: this.cluster.name, instance: id, err: (e as Error).message }, `could not fence ${id}`);
      } finally {
        this.#fencing.delete(id);
      }
    }
  }

  /**
   * Primary-side lease (coordination.primaryLease): this manager lost etcd for longer than the
   * TTL, so another manager may be leading, or the primary may be cut off with us: stop writes on
   * it unless it is the only live node (then availability wins: nothing could replace it anyway).
   */
  async fenceForLostLease(): Promise<void> {
    const primary = this.monitor.lastKnownPrimary;
    const p = primary ? this.monitor.probers.get(primary)?.latest : undefined;
    if (!primary || !p?.reachable || !p.settings || p.settings.readOnly) return;
    const others = [...this.monitor.probers.values()].filter((x) => x.instance.id !== primary && x.latest.reachable);
    if (others.length === 0) {
      this.#logBlocked(`primary lease of ${this.cluster.name} expired but ${primary} is the only live node: it keeps serving`);
      return;
    }
    try {
      const killed = await fenceServer(await this.admin.get(primary), flavorOf(this.monitor, primary), this.cluster);
      this.log.error({ event: 'primary_lease_expired', cluster: this.cluster.name, instance: primary, killed }, `no contact with etcd for longer than the lease TTL: ${primary} set read_only (${killed} session(s) killed)`);
      this.emit('repair', { instance: primary, action: 'fenced: primary lease expired' });
    } catch (e) {
      this.log.error({ event: 'fence_failed', cluster: this.cluster.name, instance: primary, err: (e as Error).message }, `could not fence ${primary}`);
    }
  }

  /**
   * NoWritablePrimary with the primary lease on: Regent owns the primary's read_only flag, so the
   * leader makes the primary it decided on writable again once etcd answers (a person who wants it
   * read_only puts it in maintenance). Without the primary lease this is only reported.
   */
  async restoreAfterLease(p: Problem): Promise<void> {
    const c = this.options.coordination;
    if (c?.backend !== 'etcd' || !c.primaryLease || !p.instance || p.instance !== this.monitor.lastKnownPrimary) return;
    const id = p.instance;
    await this.#exclusively(`restore ${id} after the primary lease`, async () => {
      const conn = await this.admin.get(id);
      for (const sql of flavorOf(this.monitor, id).setReadOnly(false)) await conn.query(sql);
      this.log.warn({ event: 'primary_lease_restored', cluster: this.cluster.name, instance: id }, `leader in contact with etcd: ${id} writable again`);
      void this.monitor.probers.get(id)?.probeAfterChange();
    });
  }

  #logBlocked(message: string): void {
    // Repeated on every analysis otherwise; the same message once every 10 s is enough to be seen.
    const last = this.#lastBlockedLog.get(message) ?? 0;
    if (Date.now() - last < 10000) return;
    this.#lastBlockedLog.set(message, Date.now());
    this.log.error({ event: 'recovery_blocked', cluster: this.cluster.name }, message);
  }
}
