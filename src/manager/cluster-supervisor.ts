import { EventEmitter } from 'node:events';
import { analyzeCluster, type Analysis } from '../analysis/analyze.ts';
import type { Problem, ProblemCode } from '../analysis/problems.ts';
import type { ClusterConfig } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { ClusterMonitor } from '../monitor/cluster-monitor.ts';
import { AdminPool } from '../sql/admin-pool.ts';
import type { Logger } from '../util/log.ts';
import { executeFailover, type FailoverResult, type Publisher } from '../recovery/failover.ts';
import { fenceServer } from '../recovery/fence.ts';
import { planFailover, type FailoverPlan } from '../recovery/plan.ts';
import type { RecoveryContext } from '../recovery/steps.ts';
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
};

export interface SupervisorEvents {
  analysis: [Analysis];
  problem: [{ kind: 'started' | 'resolved'; problem: Problem }];
  failover: [FailoverResult];
  switchover: [SwitchoverResult];
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
  #lastBlockedLog = new Map<string, number>();
  #stopped = false;
  #stateReadAt = 0;

  constructor(
    readonly cluster: ClusterConfig,
    readonly coordinator: Coordinator,
    readonly log: Logger,
    readonly publisher?: Publisher,
    readonly options: { pauseAfterStep?: string; delayBeforeStep?: { step: string; ms: number }; observeOnly?: boolean } = {},
  ) {
    super();
    this.monitor = new ClusterMonitor(cluster, log);
    this.admin = new AdminPool(cluster);
    this.monitor.on('observation', () => this.#schedule());
  }

  async start(): Promise<void> {
    const state = await this.coordinator.getClusterState(this.cluster.name);
    if (state.primary) this.monitor.lastKnownPrimary = state.primary;
    this.#applyMaintenance(state.maintenance);
    this.monitor.start();
    this.admin.warm(this.cluster.instances.map((i) => i.id));
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
    await this.#followState();
    const view = this.monitor.view();
    // Until every instance was probed once, the picture is incomplete: judge nothing yet.
    if ([...view.observations.values()].some((o) => o.at === 0)) return undefined;
    const analysis = analyzeCluster(view);
    this.lastAnalysis = analysis;
    this.#trackErrant(analysis);
    this.#trackProblems(analysis.problems);

    const primary = analysis.topology.primary;
    const pObs = primary ? view.observations.get(primary) : undefined;
    this.monitor.setSuspecting(Boolean(primary && pObs && !pObs.reachable));
    if (!this.options.observeOnly && primary && pObs?.reachable && pObs.settings && !pObs.settings.readOnly && primary !== this.monitor.lastKnownPrimary && !analysis.problems.some((p) => p.code === 'TwoWritablePrimaries')) {
      this.monitor.lastKnownPrimary = primary;
      await this.coordinator.updateClusterState(this.cluster.name, (s) => ({ ...s, primary }));
    }
    this.emit('analysis', analysis);

    if (!this.#acting && this.coordinator.isLeader() && !this.options.observeOnly) {
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

  #trackProblems(problems: Problem[]): void {
    const now = new Map(problems.map((p) => [`${p.code}|${p.instance ?? ''}`, p]));
    for (const [k, p] of now) {
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
      this.emit('failover', r);
      return r;
    });
    if ('refusal' in result) this.#logBlocked(`no failover of ${this.cluster.name}: ${result.refusal}`);
    return result;
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
      if (this.monitor.maintenance.has(id)) continue;
      try {
        const conn = await this.admin.get(id);
        const killed = await fenceServer(conn, prober.flavor!, this.cluster);
        this.log.warn({ event: 'fenced_stray_primary', cluster: this.cluster.name, instance: id, primary: keep, killed }, `${id} was writable but ${keep} is the primary: set read_only, ${killed} session(s) killed`);
        await this.coordinator.updateClusterState(this.cluster.name, (s) => ({ ...s, fenced: [...new Set([...(s.fenced ?? []), id])] }));
        void prober.probeNow();
      } catch (e) {
        this.log.error({ event: 'fence_failed', cluster: this.cluster.name, instance: id, err: (e as Error).message }, `could not fence ${id}`);
      }
    }
  }

  #logBlocked(message: string): void {
    // Repeated on every analysis otherwise; the same message once every 10 s is enough to be seen.
    const last = this.#lastBlockedLog.get(message) ?? 0;
    if (Date.now() - last < 10000) return;
    this.#lastBlockedLog.set(message, Date.now());
    this.log.error({ event: 'recovery_blocked', cluster: this.cluster.name }, message);
  }
}
