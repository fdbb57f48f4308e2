import { EventEmitter } from 'node:events';
import { analyzeCluster, type Analysis } from '../analysis/analyze.ts';
import { clusterReport, type ClusterReport } from '../analysis/cluster-report.ts';
import type { ClusterView } from '../analysis/cluster-view.ts';
import type { ClusterConfig } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { antiFlapping, type Decision } from '../decision/decision.ts';
import { DecisionRecord } from '../decision/record.ts';
import { ClusterMonitor } from '../monitor/cluster-monitor.ts';
import { ReplicaScout } from '../monitor/replica-scout.ts';
import type { RecoveryContext } from '../recovery/steps.ts';
import { AdminPool } from '../sql/admin-pool.ts';
import type { Logger } from '../util/log.ts';
import { ACTIONS, ManualActions } from './actions.ts';
import type { ClusterContext, SupervisorEvents, SupervisorOptions } from './cluster-context.ts';
import { Dispatcher } from './dispatch.ts';
import { ProblemTracker } from './problem-tracker.ts';
import { resumeUnfinished } from './resume.ts';

/**
 * Watches one cluster and acts on it. Every observation triggers a fresh analysis (coalesced, so a
 * burst of probes costs one analysis at a time); the analysis is judged against the cluster's
 * decision record; the dispatcher decides whether any action runs. The loop lives here; the
 * dispatch gate, the actions, repairs, fencing and resuming a predecessor's plan have modules of
 * their own.
 */
export class ClusterSupervisor extends EventEmitter<SupervisorEvents> implements ClusterContext {
  readonly monitor: ClusterMonitor;
  readonly admin: AdminPool;
  readonly decision: DecisionRecord;
  readonly dispatcher: Dispatcher;
  readonly manual: ManualActions;
  readonly problems = new ProblemTracker();
  /** Replicas attached outside Regent, scanned now and then while this manager leads the cluster. */
  readonly scout: ReplicaScout;
  lastAnalysis?: Analysis;
  #evaluating = false;
  #dirty = false;
  #lastBlockedLog = new Map<string, number>();
  #stopped = false;
  #followedAt = 0;
  /** Recoveries may start (leader, and any unfinished plan was dealt with). */
  #active = false;

  constructor(
    readonly cluster: ClusterConfig,
    readonly coordinator: Coordinator,
    readonly log: Logger,
    readonly options: SupervisorOptions = {},
  ) {
    super();
    this.monitor = new ClusterMonitor(cluster, log);
    this.admin = new AdminPool(cluster);
    // Only the acting leader writes shared state; a follower or a proxy follows it.
    this.decision = new DecisionRecord(cluster.name, coordinator, log, () => !options.observeOnly && coordinator.isLeader(cluster.name));
    this.dispatcher = new Dispatcher(this, this.problems, ACTIONS, () => this.#active && this.coordinator.isLeader(cluster.name), () => this.schedule());
    this.manual = new ManualActions(this, this.dispatcher);
    this.monitor.on('observation', () => this.schedule());
    this.scout = new ReplicaScout(
      cluster,
      {
        reachable: () => [...this.monitor.probers.values()].filter((p) => p.latest.reachable && p.flavor).map((p) => ({ id: p.instance.id, flavor: p.flavor! })),
        query: async (id, sql) => (await this.admin.get(id)).query(sql),
        known: (address, serverId) => cluster.instances.some((i) => i.id === address) || [...this.monitor.observations().values()].some((o) => o.settings?.serverId === serverId),
        busy: () => this.dispatcher.acting,
      },
      log,
      () => this.schedule(),
    );
  }

  get events(): EventEmitter<SupervisorEvents> {
    return this;
  }

  async start(): Promise<void> {
    await this.#follow(true).catch(() => undefined);
    this.monitor.start();
    this.admin.warm(this.cluster.instances.map((i) => i.id));
    if (this.coordinator.isLeader(this.cluster.name)) await this.becomeActive();
  }

  /**
   * For commands that act without a running manager: the decision from the shared state, one
   * fresh probe of everything, and, when nothing was decided yet, the primary the topology shows.
   */
  async prepareOneShot(): Promise<Analysis> {
    await this.#follow(true);
    await this.monitor.refresh();
    const analysis = analyzeCluster(this.view());
    const primary = analysis.topology.primary;
    if (!this.decision.snapshot.decidedPrimary && primary) await this.decision.adopt(primary, analysis.topology.primaryEvidence);
    return analysis;
  }

  /**
   * This manager may act now (it is the leader, or the only manager): first finish whatever a
   * previous leader left unfinished, then let analyses trigger recoveries.
   */
  async becomeActive(): Promise<void> {
    if (this.options.observeOnly) return;
    await this.#follow(true).catch(() => undefined);
    try {
      await resumeUnfinished(this, this.dispatcher);
    } catch (e) {
      this.log.error({ event: 'resume_failed', cluster: this.cluster.name, err: (e as Error).message }, 'could not read or finish the journal');
    }
    this.#active = true;
    this.scout.start();
    this.schedule();
  }

  becomePassive(): void {
    this.#active = false;
    this.scout.stop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.scout.stop();
    await this.monitor.stop();
    await this.admin.closeAll();
  }

  get acting(): boolean {
    return this.dispatcher.acting;
  }

  view(): ClusterView {
    const v: ClusterView = { cluster: this.cluster, observations: this.monitor.observations(), now: Date.now(), decision: this.decision.snapshot, unmanagedReplicas: this.scout.unmanaged };
    const lost = this.options.leaseLostForMs?.();
    return lost === undefined ? v : { ...v, leaseLostForMs: lost };
  }

  recoveryContext(): RecoveryContext {
    return {
      cluster: this.cluster,
      monitor: this.monitor,
      admin: this.admin,
      coordinator: this.coordinator,
      log: this.log,
      decision: this.decision,
      view: () => this.view(),
      pauseAfterStep: this.options.pauseAfterStep,
      delayBeforeStep: this.options.delayBeforeStep,
      skipDrain: this.options.skipDrain,
      drainSessions: this.options.drainSessions && ((primary, ms) => this.options.drainSessions!(this.cluster.name, primary, ms)),
      onStep: (e) => this.emit('step', e),
    };
  }

  /** Judge the cluster again soon (coalesced with an analysis already running). */
  schedule(): void {
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
    await this.#follow(false).catch(() => undefined);
    const view = this.view();
    // Until every instance was probed once, the picture is incomplete: judge nothing yet.
    if ([...view.observations.values()].some((o) => o.at === 0)) return undefined;
    const analysis = analyzeCluster(view);
    this.lastAnalysis = analysis;
    const acting = this.dispatcher.acting;
    await this.#noteErrant(analysis, view);
    // While an action runs, the cluster passes through states it is meant to (two writable nodes
    // for an instant during a switchover): report problems once it has settled, not mid-way.
    if (!acting) this.#reportProblems(analysis);

    const primary = analysis.topology.primary;
    const pObs = primary ? view.observations.get(primary) : undefined;
    // Fast probing confirms a dead primary for the manager that will act on it. A manager that
    // does not lead the cluster (or a proxy) gains nothing from it: three managers on etcd, 30
    // primaries killed at once, both followers probed every replica each 20 ms for the whole
    // burst and starved the leaders (last new primary writable 3.3-4.7 s).
    const leading = !this.options.observeOnly && this.#active && this.coordinator.isLeader(this.cluster.name);
    this.monitor.setSuspecting(leading && !acting && Boolean(primary && pObs && !pObs.reachable));
    if (!this.options.observeOnly && !acting && primary && primary !== this.decision.snapshot.decidedPrimary && mayAdopt(primary, analysis, view)) {
      this.log.warn(
        { event: 'primary_adopted', cluster: this.cluster.name, primary, previous: this.decision.snapshot.decidedPrimary, evidence: analysis.topology.primaryEvidence },
        `primary of ${this.cluster.name} is now ${primary} (${analysis.topology.primaryEvidence})`,
      );
      await this.decision.adopt(primary, analysis.topology.primaryEvidence).catch(() => undefined);
    }
    this.emit('analysis', analysis);
    if (!acting && !this.options.observeOnly) await this.dispatcher.dispatch(analysis);
    return analysis;
  }

  /**
   * Takes on the shared state now and then: maintenance windows and acknowledgements set through
   * the API or a CLI command, and for a follower or a standalone proxy everything the acting
   * manager decided.
   */
  async #follow(now: boolean): Promise<void> {
    if (!now && Date.now() - this.#followedAt < 250) return;
    this.#followedAt = Date.now();
    try {
      await this.decision.follow();
    } catch (e) {
      if (now) this.log.warn({ event: 'state_unavailable', cluster: this.cluster.name, err: (e as Error).message }, 'shared state unavailable; observing only');
      throw e;
    }
  }

  /** Re-reads the shared state at once (after an API change to it). */
  async refreshDecision(): Promise<void> {
    this.#followedAt = 0;
    await this.#follow(false);
    this.schedule();
  }

  /** Errant transactions are judged only against a live primary, and kept in the decision record. */
  async #noteErrant(analysis: Analysis, view: ClusterView): Promise<void> {
    const primary = analysis.topology.primary;
    if (!primary || !view.observations.get(primary)?.reachable || this.options.observeOnly) return;
    const errant = new Map<string, string>();
    for (const p of analysis.problems) if (p.code === 'ErrantGtid' && p.instance) errant.set(p.instance, p.data.errant.toString());
    const known = this.decision.snapshot.errant;
    for (const id of known.keys()) if (!errant.has(id) && view.observations.get(id)?.reachable) await this.decision.noteErrant(id, undefined).catch(() => undefined);
    for (const [id, set] of errant) if (known.get(id) !== set) await this.decision.noteErrant(id, set).catch(() => undefined);
  }

  #reportProblems(analysis: Analysis): void {
    const { started, resolved } = this.problems.update(analysis.problems);
    for (const p of started) {
      this.log[p.severity === 'critical' ? 'error' : 'warn']({ event: 'problem_started', cluster: this.cluster.name, code: p.code, instance: p.instance, evidence: p.evidence }, p.summary);
      this.emit('problem', { kind: 'started', problem: p });
    }
    for (const p of resolved) {
      this.log.info({ event: 'problem_resolved', cluster: this.cluster.name, code: p.code, instance: p.instance }, `resolved: ${p.summary}`);
      this.emit('problem', { kind: 'resolved', problem: p });
    }
  }

  logBlocked(message: string): void {
    // Repeated on every analysis otherwise; the same message once every 10 s is enough to be seen.
    const last = this.#lastBlockedLog.get(message) ?? 0;
    if (Date.now() - last < 10000) return;
    this.#lastBlockedLog.set(message, Date.now());
    this.log.error({ event: 'recovery_blocked', cluster: this.cluster.name }, message);
  }

  /** The cluster as status, the API and the dashboard show it. */
  report(): ClusterReport {
    const analysis = this.lastAnalysis ?? { topology: { primary: undefined, primaryEvidence: 'not analysed yet', sources: new Map(), orphans: [] }, problems: [] };
    return clusterReport(this.cluster, this.monitor.observations(), analysis, this.decision.snapshot);
  }

  /** When automatic failover of this cluster is blocked by anti-flapping, if it is. */
  blockedUntil(d: Decision = this.decision.snapshot): number | undefined {
    return antiFlapping(d, this.cluster.failover.blockPeriodSeconds, Date.now()).blockedUntil;
  }
}

/**
 * Whether the primary seen in the topology may replace the one Regent decided on (a person changed
 * it by hand, or Regent starts without a record). Never on stale facts: right after a failover the
 * replicas' last probes still point at the old primary, which may be writable again after a freeze.
 * Pure.
 */
export function mayAdopt(primary: string, analysis: Analysis, view: ClusterView): boolean {
  const p = view.observations.get(primary);
  if (!p?.reachable || !p.settings || p.settings.readOnly) return false;
  if (analysis.problems.some((x) => x.code === 'TwoWritablePrimaries')) return false;
  const d = view.decision;
  if (d?.fenced.has(primary)) return false;
  if (!d?.decidedPrimary) return true;
  const fresh = [...view.observations.values()].every((o) => !o.reachable || o.at > d.decidedAt + 100);
  const followed = [...analysis.topology.sources.values()].some((src) => src === primary);
  return fresh && followed;
}
