import type { ClusterConfig } from '../config/load.ts';
import { DbConnection, classifyError } from '../sql/connection.ts';
import type { Flavor } from '../sql/flavor.ts';
import type { Logger } from '../util/log.ts';

/** A server that registered as a replica of an instance of the cluster. */
export interface AttachedReplica {
  /** The instance it replicates from. */
  source: string;
  /** host:port it reported (report_host, or the source's host when it reported none, and report_port). */
  address: string;
  serverId: number;
  /** Whether Regent reached it at that address with the manager account (probed once per scan, only when it is not an instance). */
  reachable?: boolean;
  error?: string;
}

export interface ScoutDeps {
  /** The instances to ask, with their server family, as the monitor last saw them reachable. */
  reachable(): { id: string; flavor: Flavor }[];
  /** Runs a query on an instance over the action connections. */
  query(id: string, sql: string): Promise<Record<string, unknown>[]>;
  /** An instance id, or one with this server_id, the cluster already has. */
  known(address: string, serverId: number): boolean;
  /** Actions run: the scan waits (it would share their connections). */
  busy(): boolean;
}

/**
 * Asks every reachable instance, now and then, which replicas registered with it: a replica
 * attached by hand after the cluster was registered shows up here, and the analysis reports it
 * (UnmanagedReplica) or the manager adds it (discovery.addReplicas). A replica that is not an
 * instance yet is tried once per scan at the address it reported, so the report says whether
 * Regent can reach it (report_host behind NAT) and how to fix it.
 */
export class ReplicaScout {
  #timer?: NodeJS.Timeout;
  #latest: AttachedReplica[] = [];
  #scanning = false;

  constructor(
    private readonly cluster: ClusterConfig,
    private readonly deps: ScoutDeps,
    private readonly log: Logger,
    private readonly onChange: () => void,
  ) {}

  /** Replicas registered with some instance that are not instances of the cluster, from the last scan. */
  get unmanaged(): AttachedReplica[] {
    return this.#latest;
  }

  start(): void {
    const seconds = this.cluster.discovery.scanIntervalSeconds;
    if (seconds <= 0 || this.#timer) return;
    // The first scan soon after the start (once probes have seen the instances), then every interval.
    this.#timer = setTimeout(() => this.#tick(seconds * 1000), Math.min(5000, seconds * 1000));
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #tick(intervalMs: number): void {
    void this.scan().finally(() => {
      if (!this.#timer) return;
      this.#timer = setTimeout(() => this.#tick(intervalMs), intervalMs);
      this.#timer.unref();
    });
  }

  /** One scan (the timer runs it; tests call it directly). */
  async scan(): Promise<AttachedReplica[]> {
    if (this.#scanning || this.deps.busy()) return this.#latest;
    this.#scanning = true;
    try {
      const found = new Map<string, AttachedReplica>();
      for (const { id, flavor } of this.deps.reachable()) {
        let rows: Record<string, unknown>[];
        try {
          rows = await this.deps.query(id, flavor.registeredReplicasQuery);
        } catch {
          continue; // the instance went away meanwhile: the probes report that
        }
        const sourceHost = id.slice(0, id.lastIndexOf(':'));
        for (const r of flavor.parseRegisteredReplicas(rows)) {
          const address = `${r.host || sourceHost}:${r.port}`;
          if (this.deps.known(address, r.serverId) || found.has(address)) continue;
          found.set(address, { source: id, address, serverId: r.serverId });
        }
      }
      for (const a of found.values()) Object.assign(a, await this.#reach(a.address));
      const before = JSON.stringify(this.#latest);
      this.#latest = [...found.values()].sort((a, b) => a.address.localeCompare(b.address));
      if (JSON.stringify(this.#latest) !== before) {
        if (this.#latest.length > 0) this.log.warn({ event: 'unmanaged_replicas', cluster: this.cluster.name, replicas: this.#latest }, `cluster ${this.cluster.name}: replicas not in the cluster: ${this.#latest.map((a) => `${a.address} (of ${a.source})`).join(', ')}`);
        this.onChange();
      }
      return this.#latest;
    } finally {
      this.#scanning = false;
    }
  }

  async #reach(address: string): Promise<{ reachable: boolean; error?: string }> {
    const i = address.lastIndexOf(':');
    let conn: DbConnection | undefined;
    try {
      conn = await DbConnection.open(address.slice(0, i), Number(address.slice(i + 1)), this.cluster.accounts.manager, { connectTimeoutMs: this.cluster.monitor.connectTimeoutMs, queryTimeoutMs: this.cluster.monitor.queryTimeoutMs });
      return { reachable: true };
    } catch (e) {
      return { reachable: false, error: classifyError(e, address, this.cluster.accounts.manager.user).message };
    } finally {
      await conn?.close();
    }
  }
}
