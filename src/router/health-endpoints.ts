import { createServer, type Server } from 'node:http';
import { listenOn } from './listen.ts';
import type { ClusterConfig } from '../config/load.ts';
import type { RoutingTable } from './routing-table.ts';

/**
 * HTTP checks for HAProxy, one port per instance (HAProxy sends the same URI to every server of a
 * backend, so the port tells which instance is asked about): GET /primary answers 200 only on the
 * primary the manager decided on, GET /replica 200 only on a replica fit for reads (replicating,
 * under the lag threshold). Everything else gets 503 with the reason.
 */
export class HealthEndpoints {
  #servers: Server[] = [];

  constructor(
    readonly cluster: ClusterConfig,
    readonly host: string,
    readonly basePort: number,
    private readonly table: () => RoutingTable,
  ) {}

  static portOf(cluster: ClusterConfig, id: string): number | undefined {
    const i = cluster.instances.findIndex((x) => x.id === id);
    return i < 0 || !cluster.router.healthCheckBasePort ? undefined : cluster.router.healthCheckBasePort + i;
  }

  async start(): Promise<void> {
    await Promise.all(
      this.cluster.instances.map(async (inst, i) => {
        const server = createServer((req, res) => {
          const t = this.table();
          const path = (req.url ?? '/').split('?')[0];
          let ok: boolean;
          let why: string;
          if (path === '/primary') {
            ok = t.writer.mode === 'route' && t.writer.target === inst.id;
            why = ok ? 'primary' : t.writer.mode === 'route' ? `not the primary (${t.writer.target} is)` : `no primary to route to: ${t.writer.reason}`;
          } else if (path === '/replica') {
            ok = t.readers.includes(inst.id);
            why = ok ? 'replica fit for reads' : (t.excluded[inst.id] ?? 'not a replica');
          } else {
            res.writeHead(404, { 'content-type': 'text/plain' }).end('use /primary or /replica\n');
            return;
          }
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${inst.id}: ${why}\n`);
        });
        await listenOn(server, this.host, this.basePort + i);
        this.#servers.push(server);
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.#servers = [];
  }
}
