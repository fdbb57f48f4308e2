import { Registry } from 'prom-client';
import type { ClusterConfig, Config } from '../config/load.ts';
import type { Decision } from '../decision/decision.ts';
import type { DecisionChange } from '../decision/record.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import { fingerprint } from '../util/fingerprint.ts';
import type { Logger } from '../util/log.ts';
import { ClusterRouter } from './cluster-router.ts';
import { DataPlane } from './data-plane.ts';
import { createRouterMetrics, type RouterMetrics } from './metrics.ts';
import { decisionToWire, observationToWire, type WireDecision, type WireObservation } from './wire.ts';

/** Whether a cluster's configuration asks for any router piece at all. */
export function routes(c: ClusterConfig): boolean {
  const r = c.router;
  return Boolean(r.writer || r.reader || r.sql || r.healthCheckBasePort || r.haproxySocket);
}

/** The part of a cluster's configuration its router depends on: a change means a new router. */
function routerKey(c: ClusterConfig): string {
  return fingerprint({ router: c.router, instances: c.instances, accounts: c.accounts, sql: c.sql });
}

/**
 * Every cluster's router in one process (the data plane): its endpoints, the pipe processes that
 * copy L4 bytes, and one metrics registry. Fed per cluster with decisions and observations; a new
 * configuration replaces only the routers whose settings changed.
 */
export class RouterHost {
  readonly registry = new Registry();
  readonly metrics: RouterMetrics;
  readonly dataPlane: DataPlane;
  readonly routers = new Map<string, ClusterRouter>();
  #keys = new Map<string, string>();

  constructor(
    private config: Config,
    private readonly log: Logger,
  ) {
    this.metrics = createRouterMetrics(this.registry);
    this.dataPlane = new DataPlane(config.routerProcesses, log);
  }

  async start(): Promise<void> {
    if (this.config.clusters.some((c) => c.router.writer || c.router.reader)) await this.dataPlane.start();
    for (const c of this.config.clusters.filter(routes)) await this.#add(c);
  }

  async #add(c: ClusterConfig): Promise<void> {
    const router = new ClusterRouter(c, this.dataPlane, this.metrics, this.log);
    await router.start();
    this.routers.set(c.name, router);
    this.#keys.set(c.name, routerKey(c));
  }

  /**
   * Takes a new configuration: routers of removed clusters stop, new ones start, changed ones are
   * replaced (keeping what they were told), the others keep their sessions.
   */
  async reload(config: Config): Promise<{ added: string[]; removed: string[]; replaced: string[] }> {
    const next = new Map(config.clusters.filter(routes).map((c) => [c.name, c]));
    const added: string[] = [];
    const removed: string[] = [];
    const replaced: string[] = [];
    for (const [name, router] of [...this.routers]) {
      const c = next.get(name);
      if (c && routerKey(c) === this.#keys.get(name)) continue;
      const decision = router.decision;
      await router.stop();
      this.routers.delete(name);
      this.#keys.delete(name);
      if (!c) {
        removed.push(name);
        continue;
      }
      await this.#add(c);
      await this.routers.get(name)!.onDecision(decision, { verb: 'follow' });
      replaced.push(name);
    }
    for (const [name, c] of next) {
      if (this.routers.has(name)) continue;
      await this.#add(c);
      added.push(name);
    }
    this.config = config;
    return { added, removed, replaced };
  }

  /** Applies a decision; for a fence, resolves once every connection to the fenced instance is closed. */
  async decide(cluster: string, d: Decision, change: DecisionChange): Promise<void> {
    await this.routers.get(cluster)?.onDecision(d, change);
  }

  /** See ClusterRouter.drain: SQL sessions out of their transactions on `primary`, or how many are not after `timeoutMs`. */
  async drain(cluster: string, primary: string, timeoutMs: number): Promise<number> {
    return (await this.routers.get(cluster)?.drain(primary, timeoutMs)) ?? 0;
  }

  observe(cluster: string, observations: Map<string, InstanceObservation>): void {
    this.routers.get(cluster)?.observe(observations);
  }

  /** Client sessions open through every endpoint of this process. */
  sessions(): number {
    let n = 0;
    for (const r of this.routers.values()) n += r.sessions;
    return n;
  }

  /** What every router was told last, for the data plane that replaces this one. */
  snapshot(): { cluster: string; decision: WireDecision; observations: WireObservation[] }[] {
    return [...this.routers].map(([cluster, r]) => ({ cluster, decision: decisionToWire(r.decision), observations: [...r.observations.values()].map(observationToWire) }));
  }

  /** Holds writers of every cluster for `reason`, or lets them go (undefined). */
  holdWriters(reason: string | undefined): void {
    for (const r of this.routers.values()) r.holdWriters(reason);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.routers.values()].map((r) => r.stop()));
    this.routers.clear();
    await this.dataPlane.stop();
  }
}
