/**
 * The multi-manager side of a chaos run: one configuration per manager on a shared etcd, and what
 * the harness reads back from etcd (who leads what, the journal).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { PORT, type Sandbox } from '../src/sandbox/sandbox.ts';
import type { JournalRecord } from './leadership.ts';

export const PREFIX = '/regent';

/** One `regent run` configuration of the run. */
export interface ManagerSlot {
  n: number;
  config: string;
  apiPort: number;
}

/**
 * One configuration per manager: the same clusters and etcd, an API port of its own and, since
 * they share this host, router endpoints of its own. Manager 0 keeps the sandbox's endpoints
 * (the workload's), the others get ports from the sandbox's unused block (router 44-49, API 55-58: up to four managers).
 * The idle sandboxes join as clusters without endpoints: they are there so that leadership is
 * spread over the managers and clusters change hands when a manager dies or comes back.
 */
export function writeManagerConfigs(sb: Sandbox, idle: Sandbox[], endpoints: string[], count: number, leaseTtlSeconds: number): ManagerSlot[] {
  const base = sb.node(1).port;
  const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { manager: Record<string, unknown>; clusters: Record<string, unknown>[] };
  for (const s of idle) {
    const other = parseYaml(readFileSync(s.configFile, 'utf8')) as { clusters: Record<string, unknown>[] };
    const cluster = other.clusters[0]!;
    delete cluster['router'];
    doc.clusters.push(cluster);
  }
  return Array.from({ length: count }, (_, k) => {
    const d = structuredClone(doc);
    const apiPort = k === 0 ? base + PORT.api : base + 54 + k;
    d.manager['coordination'] = { backend: 'etcd', endpoints, prefix: PREFIX, leaseTtlSeconds };
    (d.manager['api'] as Record<string, unknown>)['listen'] = `127.0.0.1:${apiPort}`;
    const router = d.clusters[0]!['router'] as Record<string, unknown>;
    if (k > 0) {
      router['writer'] = `127.0.0.1:${base + 44 + 2 * (k - 1)}`;
      router['reader'] = `127.0.0.1:${base + 45 + 2 * (k - 1)}`;
      delete router['healthCheckBasePort'];
      delete router['sql'];
    }
    const config = join(sb.dir, `regent-m${k}.yaml`);
    writeFileSync(config, toYaml(d));
    return { n: k, config, apiPort };
  });
}

/** Reads etcd while members come and go: a few tries, then undefined. */
async function patiently<T>(read: () => Promise<T>): Promise<T | undefined> {
  for (let i = 0; i < 5; i++) {
    try {
      return await read();
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return undefined;
}

/** The harness's own etcd client (reads only). */
export class EtcdView {
  readonly #client: Etcd3;
  constructor(endpoints: string[]) {
    this.#client = new Etcd3({ hosts: endpoints, dialTimeout: 1000, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }) });
  }

  /** Cluster -> id of the manager whose leader key it is (undefined when etcd did not answer). */
  async leaders(): Promise<Map<string, string> | undefined> {
    const all = await patiently(() => this.#client.getAll().prefix(`${PREFIX}/_leaders/`).strings());
    return all && new Map(Object.entries(all).map(([k, v]) => [k.slice(`${PREFIX}/_leaders/`.length), v]));
  }

  async journal(): Promise<JournalRecord[]> {
    const all = await patiently(() => this.#client.getAll().prefix(`${PREFIX}/_journal/`).strings());
    if (!all) throw new Error('etcd did not answer for the journal');
    return Object.entries(all).map(([key, v]) => {
      const e = JSON.parse(v) as { planId: string; cluster: string; at: number; type: string };
      return { key, planId: e.planId, cluster: e.cluster, at: e.at, type: e.type };
    });
  }

  /** Whether the member at `endpoint` answers by itself (a restarted member caught up). */
  static async answers(endpoint: string): Promise<boolean> {
    const c = new Etcd3({ hosts: [endpoint], dialTimeout: 500, defaultCallOptions: () => ({ deadline: Date.now() + 1000 }) });
    try {
      await c.get(`${PREFIX}/_probe`).string();
      return true;
    } catch {
      return false;
    } finally {
      c.close();
    }
  }

  close(): void {
    this.#client.close();
  }
}
