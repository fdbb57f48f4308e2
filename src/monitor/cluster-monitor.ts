import { EventEmitter } from 'node:events';
import type { ClusterConfig } from '../config/load.ts';
import type { Logger } from '../util/log.ts';
import type { InstanceObservation } from './observation.ts';
import { InstanceProber } from './prober.ts';

/** While a primary is in doubt, everyone is probed this often: confirmation takes tens of ms, not a tick. */
export const SUSPECT_PROBE_INTERVAL_MS = 20;

/**
 * One prober per instance of a cluster, and the cluster view they add up to. Emits `observation`
 * for every probe result so the manager can re-analyse at once (event-driven, not on a timer).
 * It only observes: the supervisor judges these observations against the cluster's decision.
 */
export class ClusterMonitor extends EventEmitter<{ observation: [InstanceObservation]; lost: [string] }> {
  readonly probers = new Map<string, InstanceProber>();
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

  start(): void {
    for (const p of this.probers.values()) p.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.probers.values()].map((p) => p.stop()));
  }

  /** The latest observation of every instance. */
  observations(): Map<string, InstanceObservation> {
    const observations = new Map<string, InstanceObservation>();
    for (const [id, p] of this.probers) observations.set(id, p.latest);
    return observations;
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

  /** Probes every instance now, in parallel. */
  async refresh(): Promise<void> {
    await Promise.all([...this.probers.values()].map((p) => p.probeNow()));
  }

  /** Probes the given instances now, in parallel (the others keep their latest observation). */
  async reprobe(ids: Iterable<string>): Promise<void> {
    await Promise.all([...ids].map((id) => this.probers.get(id)?.probeNow()));
  }
}
