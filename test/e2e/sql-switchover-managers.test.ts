// regent-test: alone (switchovers under load with two managers, three mariadbd and etcd: its zero-error bound needs the cores)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { callManager } from '../../src/cli/api-client.ts';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { decisionFromState } from '../../src/decision/decision.ts';
import type { ClusterState } from '../../src/coordination/coordinator.ts';
import { eventually, startSandbox } from '../helpers/env.ts';
import { EtcdCluster } from '../helpers/etcd.ts';
import { ManagerProcess } from '../helpers/manager.ts';
import { LOAD_TABLES, SqlLoad } from '../helpers/sql-load.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SWITCHOVERS = 3;

/**
 * Two managers on etcd, each with its own data plane and SQL endpoint (applications connect to the
 * one on their host). A switchover is run by the cluster's leader; the sessions on the other
 * manager's endpoint must see it as those on the leader's do: no error, nothing lost or applied
 * twice. Before the drain was shared through etcd, the follower's data plane kept sending writes
 * to the old primary until read_only refused them.
 */
describe('SQL endpoint: a switchover with two managers on etcd', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let etcd: EtcdCluster;
  const managers: ManagerProcess[] = [];
  const sqlPorts: number[] = [];
  let app: { user: string; password: string; database: string };
  /** The decided primary, from the shared state in etcd. */
  const decidedPrimary = async (): Promise<string | undefined> => {
    const c = new Etcd3({ hosts: etcd.endpoints });
    try {
      const v = await c.get(`/regent/_state/${sb.manifest.cluster}`).string();
      return v ? decisionFromState(sb.manifest.cluster, JSON.parse(v) as ClusterState).decidedPrimary : undefined;
    } finally {
      c.close();
    }
  };

  before(async () => {
    etcd = await EtcdCluster.start(1);
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, extraServerConfig: ['general_log=OFF'] }));
    const base = sb.node(1).port;
    const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { manager: Record<string, unknown>; clusters: Record<string, unknown>[] };
    for (let k = 0; k < 2; k++) {
      const d = structuredClone(doc);
      d.manager['coordination'] = { backend: 'etcd', endpoints: etcd.endpoints, prefix: '/regent', leaseTtlSeconds: 3 };
      const router = d.clusters[0]!['router'] as Record<string, unknown>;
      if (k === 1) {
        // The second manager's endpoints on ports of their own (44-46 are free in the sandbox layout).
        (d.manager['api'] as Record<string, unknown>)['listen'] = `127.0.0.1:${base + PORT.api + 5}`;
        router['writer'] = `127.0.0.1:${base + 44}`;
        router['reader'] = `127.0.0.1:${base + 45}`;
        router['sql'] = { ...(router['sql'] as Record<string, unknown>), listen: `127.0.0.1:${base + 46}` };
        delete router['healthCheckBasePort'];
      }
      sqlPorts.push(k === 0 ? base + PORT.sql : base + 46);
      const f = join(sb.dir, `regent-m${k}.yaml`);
      writeFileSync(f, toYaml(d));
      managers.push(new ManagerProcess(f, { env: { REGENT_LOG_LEVEL: 'info' } }));
    }
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 30000, 'manager start')));
    app = sb.appAccount();
    await sb.sql(sb.node(1), LOAD_TABLES);
    for (const port of sqlPorts)
      await eventually(async () => {
        const c = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database, connectTimeout: 5000 });
        try {
          await c.query('SELECT 1');
          return (await decidedPrimary()) !== undefined;
        } finally {
          await c.end();
        }
      }, 30000, `the SQL endpoint on ${port}`);
  });
  after(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await cleanup?.();
    await etcd?.destroy();
  });

  test(`${SWITCHOVERS} switchovers: sessions on both managers' endpoints see no error`, async () => {
    const loads = sqlPorts.map((port, k) => new SqlLoad(port, app, 8, `m${k}`, 1 + 100 * k));
    await Promise.all(loads.map((l) => l.start()));
    const details: string[] = [];
    try {
      await sleep(1000);
      for (let i = 0; i < SWITCHOVERS; i++) {
        const res = await callManager(sb.config(), 'POST', `/api/v1/clusters/${sb.manifest.cluster}/switchover`, {});
        const body = (res?.json ?? {}) as { ok?: boolean; error?: string; steps?: { name: string; detail: string }[] };
        assert.ok(res && res.status === 200 && body.ok, `switchover ${i + 1}: ${body.error ?? res?.status}`);
        details.push(body.steps?.find((s) => s.name === 'drain-transactions')?.detail ?? '(no drain step)');
        await sleep(1500);
      }
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
    }
    const primaryQuery = async (sql: string) => {
      const node = sb.node((await decidedPrimary())!.split(':').pop()!);
      const c = await mysql.createConnection({ host: '127.0.0.1', port: node.port, user: app.user, password: app.password, database: app.database });
      try {
        return (await c.query(sql))[0] as Record<string, unknown>[];
      } finally {
        await c.end();
      }
    };
    process.stderr.write(`drain-transactions:\n${details.map((d) => `  ${d}\n`).join('')}`);
    for (const [k, l] of loads.entries()) {
      process.stderr.write(`manager ${k}'s endpoint: ${l.ops} operations, ${l.errors.length} errors\n`);
      assert.deepEqual(l.errors.map((e) => `m${k} ${e.sid} ${e.op}: ${e.errno} ${e.message}`), [], `sessions on manager ${k}'s endpoint`);
      assert.deepEqual(await l.verify(primaryQuery), { lost: [], duplicated: [] });
      assert.ok(l.ops > 100, `the load on manager ${k}'s endpoint ran (${l.ops} operations)`);
    }
    for (const d of details) assert.match(d, /other managers: 1 of 1 answered/);
    // Nothing left behind under the prefix once the switchovers ended.
    const c = new Etcd3({ hosts: etcd.endpoints });
    try {
      assert.deepEqual(await c.getAll().prefix('/regent/_drain').keys(), []);
    } finally {
      c.close();
    }
  });
});
