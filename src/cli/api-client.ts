import type { Config } from '../config/load.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import { UsageError } from '../errors.ts';

export interface ManagerAnswer {
  status: number;
  json: Record<string, unknown>;
}

/**
 * Sends a request to the running manager's API (manager.api in the config), with the token.
 * Returns undefined when no manager listens there, so the command can act by itself instead.
 */
export async function callManager(config: Config, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = 120000): Promise<ManagerAnswer | undefined> {
  if (!config.api) return undefined;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const token = config.api.token?.reveal();
  if (token) headers['authorization'] = `Bearer ${token}`;
  try {
    const res = await fetch(`http://${config.api.listen}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { error: text };
    }
    return { status: res.status, json };
  } catch (e) {
    const code = (e as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED') return undefined;
    throw e;
  }
}

/**
 * The coordinator a CLI command may act with when no manager answers: only the local backend.
 * With etcd, acting outside the leader would break the one-actor rule, so the command refuses.
 */
export function localCoordinatorFor(config: Config, what: string): LocalCoordinator {
  if (config.coordination.backend === 'etcd')
    throw new UsageError(`${what}: no manager answers at ${config.api?.listen ?? '(no manager.api configured)'}; with etcd coordination, actions go through the leading manager's API`);
  return new LocalCoordinator(config.stateDir);
}
