import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { createManagerMetrics, type ManagerMetrics } from '../api/metrics.ts';
import { registerRoutes } from '../api/routes.ts';
import { ApiServer } from '../api/server.ts';
import type { Config } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import { EtcdCoordinator } from '../coordination/etcd.ts';
import type { ManagerInfo } from '../coordination/coordinator.ts';
import type { Publisher } from '../recovery/failover.ts';
import { ClusterRouter } from '../router/cluster-router.ts';
import { createRouterMetrics } from '../router/metrics.ts';
import { DataPlane } from '../router/data-plane.ts';
import type { Logger } from '../util/log.ts';
import { ClusterSupervisor } from './cluster-supervisor.ts';
import { registerUi } from '../ui/serve.ts';
import { CredentialsWatch, refuseRejectedCredentials } from './credentials-watch.ts';

export function createCoordinator(config: Config, log: Logger): Coordinator {
  const c = config.coordination;
  return c.backend === 'etcd' ? new EtcdCoordinator(c, log) : new LocalCoordinator(config.stateDir);
}

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
  /** Moves the routers' bytes, for every cluster (see data-plane.ts). */
  readonly dataPlane: DataPlane;
  #leaseTimer?: NodeJS.Timeout;
  #credentialsWatch?: CredentialsWatch;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    opts: { coordinator?: Coordinator; pauseAfterStep?: string; delayBeforeStep?: { step: string; ms: number }; skipDrain?: boolean; withRouter?: boolean; observeOnly?: boolean } = {},
  ) {
    this.coordinator = opts.coordinator ?? createCoordinator(config, log);
    this.observeOnly = opts.observeOnly ?? false;
    this.events.setMaxListeners(100);
    const routerMetrics = createRouterMetrics(this.registry);
    this.dataPlane = new DataPlane(config.routerProcesses, log);
    this.metrics = createManagerMetrics(this.registry, () => this.supervisors.values(), () => this.coordinator.isLeader());
    const publisher: Publisher = {
      fence: (cluster, old) => this.routers.get(cluster)?.fence(old),
      primaryChanged: (cluster, next) => this.routers.get(cluster)?.primaryChanged(next),
      holdWrites: (cluster) => this.routers.get(cluster)?.holdWrites(),
    };
    for (const c of config.clusters) {
      for (const outcome of ['success', 'failed']) this.metrics.failovers.inc({ cluster: c.name, outcome }, 0);
      this.metrics.switchovers.inc({ cluster: c.name, outcome: 'success' }, 0);
      this.metrics.failoverSeconds.zero({ cluster: c.name });
      this.metrics.switchoverSeconds.zero({ cluster: c.name });
      const supervisor = new ClusterSupervisor(c, this.coordinator, log, publisher, {
        pauseAfterStep: opts.pauseAfterStep,
        delayBeforeStep: opts.delayBeforeStep,
        skipDrain: opts.skipDrain,
        coordination: config.coordination,
        observeOnly: opts.observeOnly,
        stateDir: config.stateDir,
      });
      this.supervisors.set(c.name, supervisor);
      const r = c.router;
      if (opts.withRouter !== false && (r.writer || r.reader || r.healthCheckBasePort || r.haproxySocket)) {
        const router = new ClusterRouter(c, this.dataPlane, routerMetrics, log);
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
      this.api = new ApiServer({ host: config.api.listen.slice(0, i), port: Number(config.api.listen.slice(i + 1)) }, config.api.token, this.registry, log, config.api.tls);
      registerRoutes(this.api, this);
      registerUi(this.api);
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
    let lastPublished = '';
    s.on('analysis', (a) => {
      // One event per visible change (roles, reachability, threads), not per probe.
      const view = s.monitor.view();
      const key = JSON.stringify([a.topology.primary, [...a.topology.sources], [...view.observations.values()].map((o) => [o.id, o.reachable, o.settings?.readOnly, o.replica?.ioThread, o.replica?.sqlThread])]);
      if (key !== lastTopology) {
        lastTopology = key;
        this.emitEvent({ type: 'topology', cluster, primary: a.topology.primary });
      }
      // Service discovery: the primary Regent decided on and the replicas fit for reads.
      if (!this.coordinator.isLeader() || this.observeOnly) return;
      const router = this.routers.get(cluster);
      const primary = s.monitor.lastKnownPrimary;
      const replicas = router
        ? router.table.readers
        : [...view.observations.values()].filter((o) => o.id !== primary && o.reachable && o.replica?.ioThread === 'yes' && o.replica.sqlThread).map((o) => o.id);
      const published = JSON.stringify([primary, replicas]);
      if (published === lastPublished) return;
      lastPublished = published;
      void this.coordinator.publishTopology(cluster, { primary, replicas }).catch((e: Error) => {
        lastPublished = '';
        this.log.warn({ event: 'discovery_publish_failed', cluster, err: e.message }, 'could not publish the topology');
      });
    });
  }

  get managerId(): string {
    return `${hostname()}:${process.pid}${this.api ? `:${this.api.listen.port}` : ''}`;
  }

  async managersInfo(): Promise<(ManagerInfo & { self: boolean; backend: string })[]> {
    try {
      return (await this.coordinator.managers()).map((m) => ({ ...m, self: m.id === this.managerId, backend: this.coordinator.backend }));
    } catch {
      // coordination unreachable: at least say who we are
      return [{ id: this.managerId, host: hostname(), pid: process.pid, startedAt: this.startedAt, leader: false, self: true, backend: this.coordinator.backend, api: this.api?.address }];
    }
  }

  async start(): Promise<void> {
    await this.api?.start();
    const host = hostname();
    this.coordinator.onLeadership((leader) => {
      this.emitEvent({ type: 'leadership', leader, manager: this.managerId });
      for (const s of this.supervisors.values()) {
        if (leader) void s.becomeActive();
        else s.becomePassive();
      }
    });
    await this.coordinator.start({ id: this.managerId, host, pid: process.pid, api: this.api?.address, startedAt: this.startedAt });
    const c = this.config.coordination;
    if (c.backend === 'etcd' && c.primaryLease && this.coordinator instanceof EtcdCoordinator && !this.observeOnly) {
      const etcd = this.coordinator;
      this.#leaseTimer = setInterval(() => {
        if (etcd.contactAgeMs() > c.leaseTtlSeconds * 1000) for (const s of this.supervisors.values()) void s.fenceForLostLease();
      }, 250);
    }
    if ([...this.routers.values()].some((r) => r.cluster.router.writer || r.cluster.router.reader)) await this.dataPlane.start();
    await Promise.all([...this.routers.values()].map((r) => r.start()));
    await Promise.all([...this.supervisors.values()].map((s) => s.start()));
    // Wait for the first probe round: credentials every instance rejects end the start (exit 2).
    const firstRoundMs = Math.max(...this.config.clusters.map((c) => c.monitor.connectTimeoutMs + 2 * c.monitor.queryTimeoutMs)) + 500;
    await refuseRejectedCredentials(this.supervisors.values(), firstRoundMs);
    this.#credentialsWatch = new CredentialsWatch([...this.supervisors.values()], this.log).start();
    this.log.info(
      { event: 'manager_started', observeOnly: this.observeOnly, clusters: [...this.supervisors.keys()], stateDir: this.config.stateDir, coordination: this.coordinator.backend, routers: Object.fromEntries([...this.routers].map(([k, r]) => [k, r.endpoints])), api: this.api?.address },
      'regent manager started',
    );
  }

  async stop(): Promise<void> {
    if (this.#leaseTimer) clearInterval(this.#leaseTimer);
    this.#credentialsWatch?.stop();
    await Promise.all([...this.supervisors.values()].map((s) => s.stop()));
    await Promise.all([...this.routers.values()].map((r) => r.stop()));
    await this.dataPlane.stop();
    await this.api?.stop();
    await this.coordinator.close();
    this.log.info({ event: 'manager_stopped' }, 'regent manager stopped');
  }
}
