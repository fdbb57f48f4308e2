import { EventEmitter } from 'node:events';
import type { ClusterView } from '../analysis/cluster-view.ts';
import type { ClusterConfig } from '../config/load.ts';
import type { Logger } from '../util/log.ts';
import type { InstanceObservation } from './observation.ts';
import { InstanceProber } from './prober.ts';

/** While a primary is in doubt, everyone is probed this often: confirmation takes tens of ms, not a tick. */
export const SUSPECT_PROBE_INTERVAL_MS = 20;

/**
 * One prober per instance of a cluster, and the cluster view they add up to. Emits `observation`
 * for every probe result so the manager can re-analyse at once (event-driven, not on a timer).
 */
export class ClusterMonitor extends EventEmitter<{ observation: [InstanceObservation]; lost: [string] }> {
  readonly probers = new Map<string, InstanceProber>();
  #lastKnownPrimary?: string;
  /** When the primary last changed by Regent's decision (ms since epoch). */
  decidedAt = 0;
  maintenance = new Set<string>();
  fenced = new Set<string>();
  #suspecting = false;

  constructor(
    readonly cluster: ClusterConfig,
    private readonly log: Logger,
  ) {
    super();
    for (const inst of cluster.instances) {
      const p = new InstanceProber(cluster, inst, log.child({ cluster: cluster.name }));
      p.on('observation', (o) => this.emit('observation', o));
      p.on('lost', () => this.emit('lost', inst.id));
      this.probers.set(inst.id, p);
    }
  }

  /** The primary Regent decided on (its own recoveries, or a topology it adopted). */
  get lastKnownPrimary(): string | undefined {
    return this.#lastKnownPrimary;
  }

  set lastKnownPrimary(id: string | undefined) {
    if (id !== this.#lastKnownPrimary) this.decidedAt = Date.now();
    this.#lastKnownPrimary = id;
  }

  start(): void {
    for (const p of this.probers.values()) p.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.probers.values()].map((p) => p.stop()));
  }

  view(now = Date.now()): ClusterView {
    const observations = new Map<string, InstanceObservation>();
    for (const [id, p] of this.probers) observations.set(id, p.latest);
    return { cluster: this.cluster, observations, now, lastKnownPrimary: this.lastKnownPrimary, maintenance: this.maintenance, fenced: this.fenced };
  }

  /** Fast probing of every instance while the primary is in doubt; back to normal when it is settled. */
  setSuspecting(on: boolean): void {
    if (on === this.#suspecting) return;
    this.#suspecting = on;
    this.log.debug({ event: on ? 'suspect_mode_on' : 'suspect_mode_off', cluster: this.cluster.name });
    for (const p of this.probers.values()) p.setInterval(on ? SUSPECT_PROBE_INTERVAL_MS : undefined);
  }

  get suspecting(): boolean {
    return this.#suspecting;
  }

  /** Probes every instance now, in parallel, and returns the fresh view. */
  async refresh(): Promise<ClusterView> {
    await Promise.all([...this.probers.values()].map((p) => p.probeNow()));
    return this.view();
  }
}
