import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { createManagerMetrics, type ManagerMetrics } from '../api/metrics.ts';
import { registerRoutes } from '../api/routes.ts';
import { ApiServer } from '../api/server.ts';
import type { Config } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import type { Publisher } from '../recovery/failover.ts';
import { ClusterRouter } from '../router/cluster-router.ts';
import { createRouterMetrics } from '../router/metrics.ts';
import type { Logger } from '../util/log.ts';
import { ClusterSupervisor } from './cluster-supervisor.ts';

/**
 * `regent run`: one supervisor per cluster sharing a coordinator, and the router of each cluster
 * fed by its supervisor (every analysis) and by its failovers (fence, new primary).
 */
export class Manager {
  readonly supervisors = new Map<string, ClusterSupervisor>();
  readonly routers = new Map<string, ClusterRouter>();
  readonly coordinator: Coordinator;
  readonly registry = new Registry();
  readonly observeOnly: boolean;
  /** Everything worth telling a live display: problems, steps, failovers, topology changes. */
  readonly events = new EventEmitter<{ event: [Record<string, unknown>] }>();
  readonly metrics: ManagerMetrics;
  readonly startedAt = Date.now();
  api?: ApiServer;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    opts: { coordinator?: Coordinator; pauseAfterStep?: string; delayBeforeStep?: { step: string; ms: number }; withRouter?: boolean; observeOnly?: boolean } = {},
  ) {
    this.coordinator = opts.coordinator ?? new LocalCoordinator(config.stateDir);
    this.observeOnly = opts.observeOnly ?? false;
    this.events.setMaxListeners(100);
    const routerMetrics = createRouterMetrics(this.registry);
    this.metrics = createManagerMetrics(this.registry, () => this.supervisors.values(), () => this.coordinator.isLeader());
    const publisher: Publisher = {
      fence: (cluster, old) => this.routers.get(cluster)?.fence(old),
      primaryChanged: (cluster, next) => this.routers.get(cluster)?.primaryChanged(next),
      holdWrites: (cluster) => this.routers.get(cluster)?.holdWrites(),
    };
    for (const c of config.clusters) {
      const supervisor = new ClusterSupervisor(c, this.coordinator, log, publisher, {
        pauseAfterStep: opts.pauseAfterStep,
        delayBeforeStep: opts.delayBeforeStep,
        observeOnly: opts.observeOnly,
        stateDir: config.stateDir,
      });
      this.supervisors.set(c.name, supervisor);
      const r = c.router;
      if (opts.withRouter !== false && (r.writer || r.reader || r.healthCheckBasePort || r.haproxySocket)) {
        const router = new ClusterRouter(c, routerMetrics, log);
        this.routers.set(c.name, router);
        supervisor.on('analysis', () =>
          router.update({ decidedPrimary: supervisor.monitor.lastKnownPrimary, observations: supervisor.monitor.view().observations, maintenance: supervisor.monitor.maintenance }),
        );
        supervisor.on('failover', (result) => {
          if (!result.ok && !result.newPrimary) router.recoveryEnded();
        });
      }
      this.#forwardEvents(supervisor);
    }
    if (config.api) {
      const i = config.api.listen.lastIndexOf(':');
      this.api = new ApiServer({ host: config.api.listen.slice(0, i), port: Number(config.api.listen.slice(i + 1)) }, config.api.token, this.registry, log);
      registerRoutes(this.api, this);
    }
  }

  emitEvent(e: Record<string, unknown>): void {
    this.events.emit('event', { at: Date.now(), ...e });
  }

  #forwardEvents(s: ClusterSupervisor): void {
    const cluster = s.cluster.name;
    let lastTopology = '';
    s.on('problem', ({ kind, problem }) => this.emitEvent({ type: `problem_${kind}`, cluster, problem }));
    s.on('step', (e) => this.emitEvent({ type: 'recovery_step', cluster, ...e }));
    s.on('failover', (r) => {
      this.metrics.failovers.inc({ cluster, outcome: r.ok ? 'success' : 'failed' });
      this.metrics.failoverSeconds.observe({ cluster }, r.durationMs / 1000);
      this.emitEvent({ type: 'failover', cluster, ok: r.ok, oldPrimary: r.oldPrimary, newPrimary: r.newPrimary, durationMs: r.durationMs, error: r.error });
    });
    s.on('switchover', (r) => {
      this.metrics.switchovers.inc({ cluster, outcome: r.ok ? 'success' : r.rolledBack ? 'rolled_back' : 'failed' });
      this.metrics.switchoverSeconds.observe({ cluster }, r.durationMs / 1000);
      this.emitEvent({ type: 'switchover', cluster, ok: r.ok, oldPrimary: r.oldPrimary, newPrimary: r.newPrimary, writePauseMs: r.writePauseMs, rolledBack: r.rolledBack, error: r.error });
    });
    s.on('rejoin', (r) => this.emitEvent({ type: 'rejoin', cluster, ok: r.ok, instance: r.instance, action: r.action, errant: r.errant, savedTo: r.savedTo, error: r.error }));
    s.on('repair', (r) => this.emitEvent({ type: 'repair', cluster, ...r }));
    s.on('analysis', (a) => {
      // One event per visible change (roles, reachability, threads), not per probe.
      const view = s.monitor.view();
      const key = JSON.stringify([a.topology.primary, [...a.topology.sources], [...view.observations.values()].map((o) => [o.id, o.reachable, o.settings?.readOnly, o.replica?.ioThread, o.replica?.sqlThread])]);
      if (key === lastTopology) return;
      lastTopology = key;
      this.emitEvent({ type: 'topology', cluster, primary: a.topology.primary });
    });
  }

  managersInfo(): { id: string; host: string; pid: number; leader: boolean; backend: string; startedAt: number; api?: string }[] {
    return [{ id: `${hostname()}:${process.pid}`, host: hostname(), pid: process.pid, leader: this.coordinator.isLeader(), backend: this.coordinator.backend, startedAt: this.startedAt, api: this.api?.address }];
  }

  async start(): Promise<void> {
    await this.api?.start();
    await Promise.all([...this.routers.values()].map((r) => r.start()));
    await Promise.all([...this.supervisors.values()].map((s) => s.start()));
    this.log.info(
      { event: 'manager_started', observeOnly: this.observeOnly, clusters: [...this.supervisors.keys()], stateDir: this.config.stateDir, coordination: this.coordinator.backend, routers: Object.fromEntries([...this.routers].map(([k, r]) => [k, r.endpoints])), api: this.api?.address },
      'regent manager started',
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.stop()));
    await Promise.all([...this.routers.values()].map((r) => r.stop()));
    await this.api?.stop();
    await this.coordinator.close();
    this.log.info({ event: 'manager_stopped' }, 'regent manager stopped');
  }
}
