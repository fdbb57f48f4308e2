import { Registry } from 'prom-client';
import type { Config } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import type { Publisher } from '../recovery/failover.ts';
import type { StepName } from '../recovery/plan.ts';
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

  constructor(
    readonly config: Config,
    readonly log: Logger,
    opts: { coordinator?: Coordinator; pauseAfterStep?: StepName; withRouter?: boolean; observeOnly?: boolean } = {},
  ) {
    this.coordinator = opts.coordinator ?? new LocalCoordinator(config.stateDir);
    this.observeOnly = opts.observeOnly ?? false;
    const routerMetrics = createRouterMetrics(this.registry);
    const publisher: Publisher = {
      fence: (cluster, old) => this.routers.get(cluster)?.fence(old),
      primaryChanged: (cluster, next) => this.routers.get(cluster)?.primaryChanged(next),
    };
    for (const c of config.clusters) {
      const supervisor = new ClusterSupervisor(c, this.coordinator, log, publisher, { pauseAfterStep: opts.pauseAfterStep, observeOnly: opts.observeOnly });
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
    }
  }

  async start(): Promise<void> {
    await Promise.all([...this.routers.values()].map((r) => r.start()));
    await Promise.all([...this.supervisors.values()].map((s) => s.start()));
    this.log.info(
      { event: 'manager_started', observeOnly: this.observeOnly, clusters: [...this.supervisors.keys()], stateDir: this.config.stateDir, coordination: this.coordinator.backend, routers: Object.fromEntries([...this.routers].map(([k, r]) => [k, r.endpoints])) },
      'regent manager started',
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.stop()));
    await Promise.all([...this.routers.values()].map((r) => r.stop()));
    await this.coordinator.close();
    this.log.info({ event: 'manager_stopped' }, 'regent manager stopped');
  }
}
