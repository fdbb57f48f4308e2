import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../util/log.ts';
import { listenOn } from './listen.ts';
import type { DataPlane } from './data-plane.ts';
import type { RouterMetrics } from './metrics.ts';
import type { RouteDecision } from './routing-table.ts';

interface Held {
  client: Socket;
  since: number;
  timer: NodeJS.Timeout;
}

/**
 * One L4 listener (writer or reader endpoint of a cluster). The only decision is where a new
 * connection goes, asked of `decide` at accept time and again for held connections when `release`
 * is called; the data plane then pipes the bytes untouched. Held clients simply wait for the
 * server greeting, so a MySQL client sees a slow connect, not an error.
 */
export class ProxyListener {
  #server?: Server;
  #held: Held[] = [];
  /** Piped connections (data-plane ids) and their backends. */
  #conns = new Map<number, string>();
  readonly active = new Map<string, number>();

  constructor(
    readonly cluster: string,
    readonly role: 'writer' | 'reader',
    readonly listen: { host: string; port: number },
    private readonly decide: () => RouteDecision,
    private readonly address: (id: string) => { host: string; port: number } | undefined,
    private readonly dataPlane: DataPlane,
    private readonly holdTimeoutMs: number,
    private readonly metrics: RouterMetrics,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const server = createServer({ noDelay: true, pauseOnConnect: true }, (c) => this.#accept(c));
    await listenOn(server, this.listen.host, this.listen.port);
    server.on('error', (e) => this.log.error({ event: 'router_listener_error', cluster: this.cluster, role: this.role, err: e.message }));
    this.#server = server;
  }

  /** Piped and held connections (an upgraded data plane drains until none is left). */
  get sessions(): number {
    return this.#conns.size + this.#held.length;
  }

  async stop(): Promise<void> {
    for (const h of this.#held.splice(0)) {
      clearTimeout(h.timer);
      h.client.destroy();
    }
    await this.dataPlane.close([...this.#conns.keys()]);
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }

  get heldCount(): number {
    return this.#held.length;
  }

  /** Re-decides every held connection (the routing table changed, or a pipe process came up). */
  release(): void {
    const waiting = this.#held.splice(0);
    for (const h of waiting) {
      const d = this.dataPlane.available ? this.decide() : { hold: 'no pipe process ready' };
      if ('hold' in d) {
        this.#held.push(h);
        continue;
      }
      clearTimeout(h.timer);
      this.metrics.holdSeconds.observe({ cluster: this.cluster, role: this.role }, (Date.now() - h.since) / 1000);
      this.metrics.held.set({ cluster: this.cluster, role: this.role }, this.#held.length);
      if ('target' in d) this.#connect(h.client, d.target);
      else this.#refuse(h.client, d.refuse);
    }
    this.metrics.held.set({ cluster: this.cluster, role: this.role }, this.#held.length);
  }

  /**
   * Closes every connection going to `backend` (a fenced primary): nobody keeps writing to it.
   * Resolves once they are closed, with how many there were.
   */
  closeConnectionsTo(backend: string): Promise<number> {
    return this.dataPlane.close([...this.#conns].filter(([, b]) => b === backend).map(([id]) => id));
  }

  #accept(client: Socket): void {
    this.metrics.accepted.inc({ cluster: this.cluster, role: this.role });
    client.on('error', () => client.destroy());
    const d = this.decide();
    if ('target' in d) this.#connect(client, d.target);
    else if ('hold' in d) this.#hold(client);
    else this.#refuse(client, d.refuse);
  }

  #hold(client: Socket): void {
    const h: Held = {
      client,
      since: Date.now(),
      timer: setTimeout(() => {
        const i = this.#held.indexOf(h);
        if (i >= 0) this.#held.splice(i, 1);
        this.metrics.held.set({ cluster: this.cluster, role: this.role }, this.#held.length);
        this.#refuse(client, `no primary within the hold time of ${this.holdTimeoutMs} ms`);
      }, this.holdTimeoutMs),
    };
    client.once('close', () => {
      const i = this.#held.indexOf(h);
      if (i >= 0) {
        clearTimeout(h.timer);
        this.#held.splice(i, 1);
        this.metrics.held.set({ cluster: this.cluster, role: this.role }, this.#held.length);
      }
    });
    this.#held.push(h);
    this.metrics.held.set({ cluster: this.cluster, role: this.role }, this.#held.length);
  }

  #refuse(client: Socket, reason: string): void {
    this.metrics.refused.inc({ cluster: this.cluster, role: this.role });
    this.log.debug({ event: 'router_refused', cluster: this.cluster, role: this.role, reason });
    client.destroy();
  }

  #connect(client: Socket, backend: string): void {
    const addr = this.address(backend);
    if (!addr || client.destroyed) {
      client.destroy();
      return;
    }
    const labels = { cluster: this.cluster, role: this.role };
    const id = this.dataPlane.pipe(client, addr, (bytesFromClient, bytesToClient) => {
      this.#conns.delete(id!);
      this.active.set(backend, Math.max(0, (this.active.get(backend) ?? 1) - 1));
      this.metrics.active.dec(labels);
      this.metrics.bytes.inc({ ...labels, direction: 'from_client' }, bytesFromClient);
      this.metrics.bytes.inc({ ...labels, direction: 'to_client' }, bytesToClient);
    });
    if (id === undefined) {
      this.#hold(client);
      return;
    }
    this.#conns.set(id, backend);
    this.active.set(backend, (this.active.get(backend) ?? 0) + 1);
    this.metrics.active.inc(labels);
    this.metrics.connections.inc({ ...labels, backend });
  }
}
