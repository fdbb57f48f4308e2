import type { ClusterConfig } from '../config/load.ts';
import { DbConnection } from './connection.ts';

/**
 * Connections for actions, kept open between recoveries: separate from the probe connections (a
 * slow action never delays a probe) and already open when a failover starts (saves a handshake per
 * server on the critical path). Actions get longer query timeouts than probes.
 */
export class AdminPool {
  #conns = new Map<string, DbConnection>();
  #opening = new Map<string, Promise<DbConnection>>();

  constructor(
    readonly cluster: ClusterConfig,
    readonly queryTimeoutMs = 30000,
  ) {}

  async get(id: string): Promise<DbConnection> {
    const open = this.#conns.get(id);
    if (open && !open.closed) return open;
    const pending = this.#opening.get(id);
    if (pending) return pending;
    const inst = this.cluster.instances.find((i) => i.id === id);
    if (!inst) throw new Error(`${id} is not an instance of cluster ${this.cluster.name}`);
    const p = DbConnection.open(inst.host, inst.port, this.cluster.accounts.manager, {
      connectTimeoutMs: this.cluster.monitor.connectTimeoutMs,
      queryTimeoutMs: this.queryTimeoutMs,
    })
      .then((c) => {
        this.#conns.set(id, c);
        return c;
      })
      .finally(() => this.#opening.delete(id));
    this.#opening.set(id, p);
    return p;
  }

  /** Opens connections to the given instances in the background, ignoring failures. */
  warm(ids: string[]): void {
    for (const id of ids) void this.get(id).catch(() => undefined);
  }

  drop(id: string): void {
    this.#conns.get(id)?.destroy();
    this.#conns.delete(id);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#conns.values()].map((c) => c.close()));
    this.#conns.clear();
  }
}
