import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import type { Config } from '../config/load.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import { UsageError } from '../errors.ts';

export interface ManagerAnswer {
  status: number;
  json: Record<string, unknown>;
}

/** The base URL of a manager's API: https as soon as manager.api.tls is set (cert, or ca alone). */
export function apiBaseUrl(api: NonNullable<Config['api']>): string {
  return `${api.tls ? 'https' : 'http'}://${api.listen}`;
}

let caOverride: { pem: Buffer; from: string } | undefined;

/**
 * The CA to verify the manager's certificate with, instead of manager.api.tls.ca: `--ca FILE`,
 * else REGENT_API_CA=FILE. Read at once, so a wrong path is one clear line before anything runs.
 */
export function setApiCa(file: string | undefined, from = '--ca'): void {
  if (!file) {
    caOverride = undefined;
    return;
  }
  const full = resolve(file);
  let pem: Buffer;
  try {
    pem = readFileSync(full);
  } catch (e) {
    throw new UsageError(`${from} ${file}: cannot read ${full} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!pem.includes('-----BEGIN ')) throw new UsageError(`${from} ${file}: ${full} is not a PEM file (no -----BEGIN line)`);
  caOverride = { pem, from };
}

/** Node's TLS verification failures, by code: the certificate is there but not trusted as configured. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Sends a request to the running manager's API (manager.api in the config), with the token, over
 * https when manager.api.tls is set (verified with manager.api.tls.ca, --ca or REGENT_API_CA, else
 * the system CAs). Returns undefined when nothing listens there, so the command can act by itself
 * instead. A manager that is there but cannot be trusted or understood is an error, never a reason
 * to act alone: acting beside a running manager would break the one-actor rule.
 *
 * node:http(s) rather than fetch: Node 20's fetch cannot be given a CA.
 */
export async function callManager(config: Config, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = 120000): Promise<ManagerAnswer | undefined> {
  if (!config.api) return undefined;
  const base = apiBaseUrl(config.api);
  const answer = await send(config, base, method, path, body, timeoutMs);
  // Each cluster has its own leader: a manager that does not lead this one says who does.
  const leaderApi = answer?.status === 409 ? answer.json['leaderApi'] : undefined;
  if (typeof leaderApi === 'string' && leaderApi !== base) return (await send(config, leaderApi, method, path, body, timeoutMs)) ?? answer;
  return answer;
}

async function send(config: Config, base: string, method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, timeoutMs: number): Promise<ManagerAnswer | undefined> {
  const api = config.api!;
  const url = new URL(path, base);
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  const token = api.token?.reveal();
  if (token) headers['authorization'] = `Bearer ${token}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  const https = url.protocol === 'https:';
  const ca = caOverride?.pem ?? api.tls?.ca;
  const caName = caOverride ? `${caOverride.from}` : api.tls?.ca ? 'manager.api.tls.ca' : 'the system CAs';
  return new Promise<ManagerAnswer | undefined>((done, fail) => {
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => fail(new UsageError(`${base}: the answer broke off (${e.message})`)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown>;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = { error: text.trim().split('\n')[0] ?? '' };
        }
        done({ status: res.statusCode ?? 0, json });
      });
    };
    const options = { method, headers, signal: AbortSignal.timeout(timeoutMs), ...(https ? { ca } : {}) };
    const req = https ? httpsRequest(url, options, onResponse) : httpRequest(url, options, onResponse);
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      if (code === 'ECONNREFUSED') return done(undefined);
      if (UNTRUSTED.has(code))
        return fail(new UsageError(`the manager at ${base} presented a certificate that is not trusted (${code}: ${e.message}); verified with ${caName}: set manager.api.tls.ca, --ca FILE or REGENT_API_CA to the CA that signed it`));
      if (https && (code === 'EPROTO' || /wrong version number|packet length too long/i.test(e.message)))
        return fail(new UsageError(`${base} does not speak TLS (${e.message}); remove manager.api.tls from this config, or give the manager its cert and key`));
      if (!https && (code === 'ECONNRESET' || code === 'HPE_INVALID_CONSTANT' || /socket hang up/.test(e.message)))
        return fail(new UsageError(`${base} closed the connection without an HTTP answer: if the manager serves https, set manager.api.tls.ca (or --ca FILE) in this config`));
      if (code === 'ABORT_ERR' || e.name === 'AbortError' || e.name === 'TimeoutError')
        return fail(new UsageError(`the manager at ${base} did not answer ${method} ${path} within ${Math.round(timeoutMs / 1000)} s`));
      fail(new UsageError(`cannot reach the manager at ${base}: ${e.message}`));
    });
    req.end(payload);
  });
}

/**
 * A refusal from the manager as one line and the exit code it deserves: the token or the request
 * was wrong (2, unusable input) or the manager declined to act (1, nothing changed).
 */
export function managerRefusal(answer: ManagerAnswer, what: string): { code: 1 | 2; line: string } {
  const why = String(answer.json['error'] ?? JSON.stringify(answer.json));
  if (answer.status === 401 || answer.status === 403) return { code: 2, line: `regent: ${what} not sent: the manager refused the API token: ${why} (manager.api.token)` };
  if (answer.status === 400 || answer.status === 404) return { code: 2, line: `regent: ${what} not sent: ${why}` };
  return { code: 1, line: `regent: ${what} refused: ${why}` };
}

/**
 * The coordinator a CLI command may act with when no manager answers: only the local backend.
 * With etcd, acting outside the leader would break the one-actor rule, so the command refuses.
 */
export function localCoordinatorFor(config: Config, what: string): LocalCoordinator {
  if (config.coordination.backend === 'etcd')
    throw new UsageError(`${what}: no manager answers at ${config.api ? apiBaseUrl(config.api) : '(no manager.api configured)'}; with etcd coordination, actions go through the leading manager's API`);
  return new LocalCoordinator(config.stateDir);
}
