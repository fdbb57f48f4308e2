import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FleetSimulator } from './fleet.ts';

/**
 * A tiny HTTP interface to a simulator running in its own process (loopback only):
 *   GET  /stats                                   counters (probes answered, sessions, unknown statements)
 *   GET  /clusters                                every cluster: its primary and instances
 *   GET  /instance?instance=REF                   what one instance reports now
 *   POST /crash?instance=REF[,REF...]             kill -9, several in the same instant (returns {"at": ms since epoch})
 *   POST /hang?instance=REF                       SIGSTOP
 *   POST /recover?instance=REF                    restart after a crash / SIGCONT after a hang
 *   POST /script?instance=REF&io=connecting|no|normal&lag=SECONDS
 * REF is host:port or cluster/name (sim0001/n1).
 */
export function startControlServer(fleet: FleetSimulator, listen: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    handle(fleet, req, res).catch((e: Error) => send(res, 400, { error: e.message }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve(server));
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(fleet: FleetSimulator, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sim');
  const ref = url.searchParams.get('instance') ?? '';
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /stats':
      return send(res, 200, fleet.statsSnapshot());
    case 'GET /clusters':
      return send(res, 200, {
        clusters: fleet.clusters.map((c) => ({
          name: c.name,
          primary: fleet.primaryOf(c.name)?.id,
          instances: c.instances.map((i) => fleet.describe(`${i.host}:${i.port}`)),
        })),
      });
    case 'GET /instance':
      return send(res, 200, fleet.describe(ref));
    case 'POST /crash': {
      // Several at once: validated first, then crashed in one synchronous loop (the same millisecond).
      const refs = ref.split(',');
      for (const r of refs) fleet.instance(r);
      const times = refs.map((r) => fleet.crash(r).at);
      return send(res, 200, { at: times[0] });
    }
    case 'POST /hang':
      return send(res, 200, fleet.hang(ref));
    case 'POST /recover':
      return send(res, 200, await fleet.recover(ref));
    case 'POST /script': {
      const io = url.searchParams.get('io');
      const lag = url.searchParams.get('lag');
      if (io !== null && !['connecting', 'no', 'normal'].includes(io)) throw new Error('io must be connecting, no or normal');
      fleet.script(ref, { io: (io ?? undefined) as 'connecting' | 'no' | 'normal' | undefined, lagSeconds: lag === null ? undefined : Number(lag) });
      return send(res, 200, fleet.describe(ref));
    }
    default:
      return send(res, 404, { error: `no route ${route}; see src/sim/control-http.ts` });
  }
}

/** The client side, for a bench or test driving a simulator process. */
export class SimControlClient {
  constructor(readonly base: string) {}

  async #call<T>(method: 'GET' | 'POST', path: string): Promise<T> {
    const res = await fetch(`${this.base}${path}`, { method });
    const body = (await res.json()) as T & { error?: string };
    if (!res.ok) throw new Error(`simulator ${method} ${path}: ${body.error ?? res.status}`);
    return body;
  }

  stats(): Promise<ReturnType<FleetSimulator['statsSnapshot']>> {
    return this.#call('GET', '/stats');
  }

  clusters(): Promise<{ clusters: { name: string; primary?: string; instances: ReturnType<FleetSimulator['describe']>[] }[] }> {
    return this.#call('GET', '/clusters');
  }

  describe(instance: string): Promise<ReturnType<FleetSimulator['describe']>> {
    return this.#call('GET', `/instance?instance=${encodeURIComponent(instance)}`);
  }

  /** Crashes one instance, or several in the same instant. */
  crash(instance: string | string[]): Promise<{ at: number }> {
    const refs = Array.isArray(instance) ? instance.join(',') : instance;
    return this.#call('POST', `/crash?instance=${encodeURIComponent(refs)}`);
  }

  hang(instance: string): Promise<{ at: number }> {
    return this.#call('POST', `/hang?instance=${encodeURIComponent(instance)}`);
  }

  recover(instance: string): Promise<{ at: number }> {
    return this.#call('POST', `/recover?instance=${encodeURIComponent(instance)}`);
  }
}
