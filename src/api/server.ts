import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import type { Registry } from 'prom-client';
import type { Secret } from '../util/secret.ts';
import type { Logger } from '../util/log.ts';
import { ApiError, ConfigError } from '../errors.ts';


export interface ApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  req: IncomingMessage;
  res: ServerResponse;
}

export type ApiResult = { status?: number; json?: unknown; text?: string; contentType?: string } | 'streamed';

export interface Route<B = unknown> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path pattern with :params, e.g. /api/v1/clusters/:cluster */
  path: string;
  /** Mutating endpoints need the bearer token. */
  mutating?: boolean;
  /** The request body's schema: a body that does not match gets a 400 naming the field, and the handler never runs. */
  body?: z.ZodType<B>;
  handler: (r: ApiRequest & { body: B }) => Promise<ApiResult> | ApiResult;
}

interface Compiled extends Route<unknown> {
  regex: RegExp;
  names: string[];
}

/**
 * The manager's HTTP server: JSON API under /api/v1, /metrics, and the dashboard. Reads are open
 * (bind it to loopback or a management network); every mutating route needs `Authorization:
 * Bearer <token>`, and without a configured token actions are refused outright.
 */
export class ApiServer {
  #server?: Server;
  #routes: Compiled[] = [];

  constructor(
    readonly listen: { host: string; port: number },
    private readonly token: Secret | undefined,
    private readonly log: Logger,
    /** manager.api.tls: with cert and key, https only (the token never crosses the network in clear). */
    private readonly tls?: { cert?: Buffer; key?: Buffer },
  ) {}

  /** Serves a Prometheus registry at /metrics, followed by what `more` returns (another process's series). */
  serveMetrics(registry: Registry, more?: () => Promise<string>): void {
    this.add({ method: 'GET', path: '/metrics', handler: async () => ({ text: `${await registry.metrics()}${more ? await more() : ''}`, contentType: registry.contentType }) });
  }

  add<B>(route: Route<B>): void {
    const names: string[] = [];
    const pattern = route.path.replace(/:([A-Za-z]+)/g, (_, n: string) => {
      names.push(n);
      return '([^/]+)';
    });
    this.#routes.push({ ...(route as Route<unknown>), regex: new RegExp(`^${pattern}$`), names });
  }

  get address(): string {
    return `${this.tls ? 'https' : 'http'}://${this.listen.host}:${this.listen.port}`;
  }

  start(): Promise<void> {
    const tls = this.tls;
    // A CLI host's config may carry only tls.ca; a manager started with it would serve plain http
    // to clients that expect https.
    if (tls && (!tls.cert || !tls.key))
      return Promise.reject(new ConfigError('manager.api.tls has no cert and key, so the API cannot serve https: add them, or remove manager.api.tls (ca alone is for CLI hosts)'));
    return new Promise((resolve, reject) => {
      const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
      let server: Server;
      try {
        server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, handler) : createServer(handler);
      } catch (e) {
        // OpenSSL's words (key values mismatch, bad decrypt...) with the keys to look at.
        reject(new ConfigError(`manager.api.tls: cannot serve https with this cert and key: ${(e as Error).message}`));
        return;
      }
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => {
        server.off('error', reject);
        this.#server = server;
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server!.close(() => r()));
  }

  #authorized(req: IncomingMessage): boolean {
    if (!this.token) return false;
    const got = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const want = this.token.reveal();
    const a = Buffer.from(got);
    const b = Buffer.from(want);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const started = Date.now();
    try {
      const candidates = this.#routes.filter((r) => r.regex.test(url.pathname));
      if (candidates.length === 0) throw new ApiError(404, `no such endpoint: ${url.pathname}`);
      const route = candidates.find((r) => r.method === method);
      if (!route) throw new ApiError(405, `${method} is not allowed on ${url.pathname} (allowed: ${candidates.map((r) => r.method).join(', ')})`);
      if (route.mutating) {
        if (!this.token) throw new ApiError(403, 'actions are disabled: no manager.api.token is configured');
        if (!this.#authorized(req)) throw new ApiError(401, 'this action needs the API token: send Authorization: Bearer <token>');
      }
      const m = route.regex.exec(url.pathname)!;
      const params = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')]));
      const raw = method === 'POST' || method === 'PUT' ? await readJson(req) : undefined;
      const body = route.body ? validBody(route.body, raw) : raw;
      const result = await route.handler({ method, path: url.pathname, params, query: url.searchParams, body, req, res });
      if (result === 'streamed') return;
      const status = result.status ?? 200;
      if (result.json !== undefined) {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(JSON.stringify(result.json, jsonReplacer));
      } else {
        res.writeHead(status, { 'content-type': result.contentType ?? 'text/plain; charset=utf-8' });
        res.end(result.text ?? '');
      }
      if (route.mutating) this.log.info({ event: 'api_action', method, path: url.pathname, status, durationMs: Date.now() - started }, `API ${method} ${url.pathname} -> ${status}`);
    } catch (e) {
      const status = e instanceof ApiError ? e.status : 500;
      if (status === 500) this.log.error({ event: 'api_error', method, path: url.pathname, err: (e as Error).message }, 'API handler failed');
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: (e as Error).message, ...(e instanceof ApiError ? e.details : undefined) }));
    }
  }
}

/** BigInt and GTID objects become strings; Secrets print as *** by themselves. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

/** The body as the route's schema describes it, or a 400 that names the first wrong field. */
function validBody(schema: z.ZodType, raw: unknown): unknown {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue?.path.length ? issue.path.join('.') : 'body';
  throw new ApiError(400, `${field}: ${issue?.message ?? 'invalid'}`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 1024 * 1024) throw new ApiError(413, 'request body too large');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'request body is not valid JSON');
  }
}
