import { EventEmitter } from 'node:events';
import type { ClusterConfig, InstanceConfig } from '../config/load.ts';
import { classifyError, DbConnection } from '../sql/connection.ts';
import type { DbError } from '../errors.ts';
import type { Flavor } from '../sql/flavor.ts';
import type { Logger } from '../util/log.ts';
import { unreachable, type InstanceObservation } from './observation.ts';
import { detectFlavor, probeInstance } from './probe.ts';

/**
 * Watches one instance forever over one persistent connection. Probes every `interval`, or at once
 * when asked (`probeNow`) or when the connection breaks: a crashed server is noticed by the socket
 * closing, within milliseconds, not at the next tick. Never throws; every failure becomes an
 * observation.
 */
export class InstanceProber extends EventEmitter<{ observation: [InstanceObservation]; lost: [DbError] }> {
  #conn?: DbConnection;
  #flavor?: Flavor;
  #latest: InstanceObservation;
  #running = false;
  #wake?: () => void;
  #intervalMs: number;
  #inFlight?: Promise<InstanceObservation>;
  #lastContact?: { key: string; at: number };
  /** When the instance last answered a probe, or when watching began (it may never have answered). */
  #answeredAt?: number;
  #lastLagSeconds?: number;

  constructor(
    readonly cluster: ClusterConfig,
    readonly instance: InstanceConfig,
    private readonly log: Logger,
  ) {
    super();
    this.#intervalMs = cluster.monitor.probeIntervalMs;
    this.#latest = unreachable(instance.id, 'unreachable', 'not probed yet', 0);
  }

  get latest(): InstanceObservation {
    return this.#latest;
  }

  get flavor(): Flavor | undefined {
    return this.#flavor;
  }

  /** Temporarily probe faster (while a primary is suspected) or back to normal (undefined). */
  setInterval(ms: number | undefined): void {
    const next = ms ?? this.cluster.monitor.probeIntervalMs;
    if (next === this.#intervalMs) return;
    const faster = next < this.#intervalMs;
    this.#intervalMs = next;
    if (faster) this.#wake?.();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#loop();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#inFlight?.catch(() => undefined);
    await this.#conn?.close();
    this.#conn = undefined;
  }

  /** Probes now (joining a probe already under way) and returns the fresh observation. */
  probeNow(): Promise<InstanceObservation> {
    if (this.#inFlight) return this.#inFlight;
    const p = this.#probe().finally(() => {
      if (this.#inFlight === p) this.#inFlight = undefined;
    });
    this.#inFlight = p;
    return p;
  }

  /** A probe started after this call: one already under way may predate a change just made. */
  async probeAfterChange(): Promise<InstanceObservation> {
    await this.#inFlight?.catch(() => undefined);
    return this.probeNow();
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      await this.probeNow();
      if (!this.#running) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.#intervalMs);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #probe(): Promise<InstanceObservation> {
    const { instance, cluster } = this;
    const started = Date.now();
    try {
      if (!this.#conn || this.#conn.closed) {
        // Only the probe's own constant statements run here: one round trip per probe (probe.ts).
        const conn = await DbConnection.open(
          instance.host,
          instance.port,
          cluster.accounts.manager,
          { connectTimeoutMs: cluster.monitor.connectTimeoutMs, queryTimeoutMs: cluster.monitor.queryTimeoutMs },
          { multipleStatements: true },
        );
        this.#flavor = await detectFlavor(conn);
        conn.onClose((err) => {
          if (!this.#running || this.#conn !== conn) return;
          this.emit('lost', err);
          // Ask again at once: a refused reconnect confirms a crash in about a millisecond.
          void this.probeNow();
        });
        this.#conn = conn;
      }
      const obs = await probeInstance(this.#conn, this.#flavor!, instance.id);
      this.#answeredAt = obs.at;
      return this.#record(this.#withContact(obs));
    } catch (e) {
      const err = classifyError(e, instance.id, cluster.accounts.manager.user);
      if (this.#conn && (err.kind === 'timeout' || err.kind === 'lost' || err.kind === 'refused')) this.#conn.destroy(err);
      const obs = unreachable(instance.id, err.kind, err.message);
      this.#answeredAt ??= started;
      return this.#record({ ...obs, silentSince: this.#answeredAt });
    }
  }

  /** Carries "when did this replica last hear from its source" and its last measured lag across probes. */
  #withContact(obs: InstanceObservation): InstanceObservation {
    const r = obs.replica;
    if (!r) {
      this.#lastContact = undefined;
      this.#lastLagSeconds = undefined;
      return obs;
    }
    const key = `${r.sourceHost}:${r.sourcePort}|${r.readSourceLogFile}|${r.readSourceLogPos}|${r.receivedHeartbeats ?? ''}|${r.ioThread}`;
    if (!this.#lastContact || this.#lastContact.key !== key) this.#lastContact = { key, at: obs.at };
    if (r.secondsBehind !== null) this.#lastLagSeconds = r.secondsBehind;
    return { ...obs, replicaLastContactAt: this.#lastContact.at, lastMeasuredLagSeconds: this.#lastLagSeconds };
  }

  #record(obs: InstanceObservation): InstanceObservation {
    const prev = this.#latest;
    this.#latest = obs;
    if (prev.reachable !== obs.reachable || prev.error?.kind !== obs.error?.kind) {
      if (obs.reachable) this.log.info({ event: 'instance_reachable', instance: obs.id, latencyMs: obs.latencyMs }, `${obs.id} reachable`);
      else this.log.warn({ event: 'instance_unreachable', instance: obs.id, kind: obs.error?.kind, reason: obs.error?.message }, `${obs.id} unreachable`);
    }
    this.emit('observation', obs);
    return obs;
  }
}
