import type { Config } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import type { Publisher } from '../recovery/failover.ts';
import type { StepName } from '../recovery/plan.ts';
import type { Logger } from '../util/log.ts';
import { ClusterSupervisor } from './cluster-supervisor.ts';

/** `regent run`: one supervisor per cluster, sharing a coordinator. */
export class Manager {
  readonly supervisors = new Map<string, ClusterSupervisor>();
  readonly coordinator: Coordinator;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    opts: { coordinator?: Coordinator; publisher?: Publisher; pauseAfterStep?: StepName } = {},
  ) {
    this.coordinator = opts.coordinator ?? new LocalCoordinator(config.stateDir);
    for (const c of config.clusters) this.supervisors.set(c.name, new ClusterSupervisor(c, this.coordinator, log, opts.publisher, { pauseAfterStep: opts.pauseAfterStep }));
  }

  async start(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.start()));
    this.log.info({ event: 'manager_started', clusters: [...this.supervisors.keys()], stateDir: this.config.stateDir, coordination: this.coordinator.backend }, 'regent manager started');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.stop()));
    await this.coordinator.close();
    this.log.info({ event: 'manager_stopped' }, 'regent manager stopped');
  }
}
