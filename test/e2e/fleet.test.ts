// regent-test: alone (measures pauses in milliseconds: runs after the other files, one at a time)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { stringify as toYaml } from 'yaml';
import type { JournalEntry } from '../../src/coordination/coordinator.ts';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { eventually, freePorts, runCli, startSandbox, tempDir, type CliResult } from '../helpers/env.ts';
import { EtcdCluster } from '../helpers/etcd.ts';
import { ManagerProcess, type LogEvent } from '../helpers/manager.ts';

/**
 * Fleet mode on real servers: three managers on a three-member etcd share twelve three-node
 * clusters, each cluster with a leader of its own. A manager killed with SIGKILL has its clusters
 * taken over within the lease TTL + 1 s, and a primary killed right after is failed over; four
 * primaries killed in one instant are each failed over within a second; a cluster registered with
 * `regent cluster add` (etcd inventory) is seen by every manager, led by one, failed over, and
 * removed everywhere; at no moment did two managers act for one cluster (leadership intervals
 * from the logs, writers of the journal in etcd).
 */

const TTL = 3;
const CLUSTERS = 12;
const MANAGERS = 3;
const name = (i: number) => `c${String(i + 1).padStart(2, '0')}`;
const out = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describe('fleet: clusters spread over three managers on etcd', () => {
  const dir = tempDir('regent-fleet-');
  let etcd: EtcdCluster;
  const sandboxes: { sandbox: Sandbox; cleanup: () => Promise<void> }[] = [];
  let extra: { sandbox: Sandbox; cleanup: () => Promise<void> } | undefined;
  const managers: ManagerProcess[] = [];
  const configs: string[] = [];
  const apis: string[] = [];
  /** When each manager was killed (its leadership ends then at the latest). */
  const killedAt = new Map<ManagerProcess, number>();

  const leaders = async (): Promise<Map<string, string>> => {
    const c = new Etcd3({ hosts: etcd.endpoints });
    try {
      const all = await c.getAll().prefix('/regent/_leaders/').strings();
      return new Map(Object.entries(all).map(([k, v]) => [k.slice('/regent/_leaders/'.length), v]));
    } finally {
      c.close();
    }
  };
  const journal = async (): Promise<{ key: string; e: JournalEntry }[]> => {
    const c = new Etcd3({ hosts: etcd.endpoints });
    try {
      const all = await c.getAll().prefix('/regent/_journal/').strings();
      return Object.entries(all).map(([key, v]) => ({ key, e: JSON.parse(v) as JournalEntry }));
    } finally {
      c.close();
    }
  };
  const share = async () => {
    const l = await leaders();
    const per = new Map<string, number>();
    for (const m of l.values()) per.set(m, (per.get(m) ?? 0) + 1);
    return { l, per };
  };
  /** The primary of a cluster, from a manager's API. */
  const primaryOf = async (cluster: string) => {
    for (const api of apis) {
      try {
        const c = (await (await fetch(`${api}/api/v1/clusters/${cluster}`)).json()) as { primary?: string };
        if (c.primary) return c.primary;
      } catch {
        // that manager is down
      }
    }
    throw new Error(`no manager knows the primary of ${cluster}`);
  };
  const sandboxOf = (cluster: string) => (cluster === 'c13' ? extra!.sandbox : sandboxes[Number(cluster.slice(1)) - 1]!.sandbox);
  const killPrimary = async (cluster: string) => {
    const primary = await primaryOf(cluster);
    const sb = sandboxOf(cluster);
    const node = sb.nodes.find((n) => `127.0.0.1:${n.port}` === primary)!;
    return { primary, pid: sb.pid(node)!, sb, node };
  };
  /** When the promote step of a failover of `cluster` journaled after `since` ended: the new primary writable. */
  const writableAt = async (cluster: string, since: number): Promise<number | undefined> => {
    const entries = (await journal()).map((x) => x.e).filter((e) => e.cluster === cluster && e.at >= since);
    return entries.find((e) => e.type === 'step' && e.step === 'promote' && e.phase === 'end' && e.ok)?.at;
  };

  before(async () => {
    etcd = await EtcdCluster.start(3);
    // Twelve clusters with one set of accounts; three at a time (two cores).
    const first = await startSandbox({ nodes: 3, cluster: name(0) });
    sandboxes.push(first);
    const secrets = join(first.sandbox.dir, 'secrets');
    while (sandboxes.length < CLUSTERS) {
      const batch = await Promise.all(Array.from({ length: Math.min(3, CLUSTERS - sandboxes.length) }, (_, i) => startSandbox({ nodes: 3, cluster: name(sandboxes.length + i), secretsFrom: secrets })));
      sandboxes.push(...batch);
    }
    extra = await startSandbox({ nodes: 3, cluster: 'c13', secretsFrom: secrets });
    const base = await freePorts(MANAGERS);
    for (let k = 0; k < MANAGERS; k++) {
      const file = join(dir.path, `regent-m${k}.yaml`);
      apis.push(`http://127.0.0.1:${base + k}`);
      const secret = (f: string) => ({ file: join(secrets, f) });
      writeFileSync(
        file,
        toYaml({
          manager: {
            stateDir: join(dir.path, `state-m${k}`),
            api: { listen: `127.0.0.1:${base + k}`, token: secret('api-token.pw') },
            coordination: { backend: 'etcd', endpoints: etcd.endpoints, prefix: '/regent', leaseTtlSeconds: TTL },
          },
          credentials: { manager: { user: 'regent', password: secret('manager.pw') }, replication: { user: 'repl', password: secret('replication.pw') } },
          clusters: sandboxes.map(({ sandbox: sb }, i) => ({ name: name(i), instances: sb.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) })),
        }),
      );
      configs.push(file);
    }
    for (const f of configs) managers.push(new ManagerProcess(f));
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 90000, 'manager start')));
  });

  after(async () => {
    for (const m of managers) await m.stop().catch(() => undefined);
    for (const s of [...sandboxes, ...(extra ? [extra] : [])]) await s.cleanup().catch(() => undefined);
    await etcd?.destroy();
    dir.remove();
  });

  test('every cluster has one leader and every manager leads three to five', async (t) => {
    await eventually(async () => {
      const { l, per } = await share();
      return l.size === CLUSTERS && per.size === MANAGERS && [...per.values()].every((n) => n >= 3 && n <= 5);
    }, 20000, 'an even spread of the twelve clusters');
    const { per } = await share();
    t.diagnostic(`clusters per manager: ${[...per.values()].join(', ')}`);
    // regent status (through etcd) names the leader of each cluster.
    const status = await runCli(['cluster', 'list', '--config', configs[0]!]);
    assert.equal(status.code, 0, out(status));
    assert.equal(status.stdout.split('\n').filter((l) => / led by /.test(l)).length, CLUSTERS, status.stdout);
  });

  test('kill -9 of a manager: its clusters are led by the others within TTL + 1 s, and a primary killed right after is failed over', async (t) => {
    const { l } = await share();
    const victim = managers[1]!;
    const vid = [...l.values()].find((m) => m.includes(`:${victim.pid}:`))!;
    const itsClusters = [...l].filter(([, m]) => m === vid).map(([c]) => c);
    assert.ok(itsClusters.length >= 3, `the victim leads ${itsClusters.join(', ')}`);
    const t0 = Date.now();
    killedAt.set(victim, t0);
    await victim.kill9();
    let takeover = 0;
    await eventually(async () => {
      const now = await leaders();
      const ok = itsClusters.every((c) => now.get(c) && now.get(c) !== vid);
      if (ok) takeover = Date.now() - t0;
      return ok;
    }, (TTL + 1) * 1000 + 2000, 'the killed manager\'s clusters led by the others', 25);
    t.diagnostic(`clusters of the killed manager (${itsClusters.join(', ')}) taken over ${takeover} ms after the kill (TTL ${TTL} s)`);
    assert.ok(takeover <= (TTL + 1) * 1000, `takeover took ${takeover} ms, more than TTL + 1 s`);
    // A primary of one of those clusters, killed right away: its new leader fails it over.
    const cluster = itsClusters[0]!;
    const p = await killPrimary(cluster);
    const k0 = Date.now();
    process.kill(p.pid, 'SIGKILL');
    await eventually(async () => (await writableAt(cluster, k0)) !== undefined, 15000, `failover of ${cluster}`);
    t.diagnostic(`${cluster}: primary killed after the takeover, new primary writable ${(await writableAt(cluster, k0))! - k0} ms later`);
  });

  test('four primaries killed in one instant: each failed over within 1 s', async (t) => {
    const { l } = await share();
    // Four clusters spread over both live managers, none failed over yet.
    const done = new Set((await journal()).filter((x) => x.e.type === 'plan').map((x) => x.e.cluster));
    const byManager = new Map<string, string[]>();
    for (const [c, m] of l) if (!done.has(c)) byManager.set(m, [...(byManager.get(m) ?? []), c]);
    const picks: string[] = [];
    for (let i = 0; picks.length < 4 && i < 10; i++) for (const list of byManager.values()) if (list[i] && picks.length < 4) picks.push(list[i]!);
    assert.equal(picks.length, 4, `four clusters to kill (${JSON.stringify([...byManager])})`);
    const targets = await Promise.all(picks.map(killPrimary));
    const k0 = Date.now();
    for (const x of targets) process.kill(x.pid, 'SIGKILL');
    await eventually(async () => (await Promise.all(picks.map((c) => writableAt(c, k0)))).every((x) => x !== undefined), 15000, 'the four failovers');
    const times = await Promise.all(picks.map(async (c) => [c, (await writableAt(c, k0))! - k0] as const));
    const started = new Map((await journal()).map((x) => x.e).filter((e) => e.type === 'plan' && e.at >= k0).map((e) => [e.cluster, e.at - k0]));
    t.diagnostic(`kill -> failover started / new primary writable: ${times.map(([c, ms]) => `${c} ${started.get(c)}/${ms} ms`).join(', ')} (load ${loadavg()[0]!.toFixed(1)})`);
    for (const [c, ms] of times) assert.ok(ms <= 1000, `${c} took ${ms} ms`);
  });

  test('the killed manager comes back: clusters move to it (between recoveries) until the spread is even again', async (t) => {
    const back = new ManagerProcess(configs[1]!);
    managers[1] = back;
    await back.waitFor((e) => e.event === 'manager_started', 60000, 'restart');
    await eventually(async () => {
      const { l, per } = await share();
      return l.size === CLUSTERS && per.size === MANAGERS && [...per.values()].every((n) => n >= 3 && n <= 5);
    }, 30000, 'an even spread again');
    t.diagnostic(`clusters per manager after the return: ${[...(await share()).per.values()].join(', ')}`);
  });

  test('cluster add (etcd inventory): every manager sees it, one leads it, it fails over, and cluster remove stops it everywhere', async (t) => {
    const seed = `127.0.0.1:${extra!.sandbox.nodes[2]!.port}`;
    const r = await runCli(['cluster', 'add', 'c13', '--seed', seed, '--config', configs[2]!], { timeoutMs: 60000 });
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, /registered cluster c13 in etcd \/regent\/_inventory\//);
    assert.match(r.stdout, /led by manager /);
    for (const api of apis)
      await eventually(async () => {
        const list = ((await (await fetch(`${api}/api/v1/clusters`)).json()) as { clusters: { name: string; origin: string; health: string }[] }).clusters;
        const c13 = list.find((c) => c.name === 'c13');
        return c13?.origin === 'inventory' && c13.health === 'healthy';
      }, 15000, `c13 at ${api}`);
    const l = await leaders();
    assert.ok(l.get('c13'), 'c13 has a leader');
    const p = await killPrimary('c13');
    const k0 = Date.now();
    process.kill(p.pid, 'SIGKILL');
    await eventually(async () => (await writableAt('c13', k0)) !== undefined, 15000, 'failover of c13');
    t.diagnostic(`c13 (registered at run time): new primary writable ${(await writableAt('c13', k0))! - k0} ms after the kill`);

    const rm = await runCli(['cluster', 'remove', 'c13', '--config', configs[0]!]);
    assert.equal(rm.code, 0, out(rm));
    assert.match(rm.stdout, /no manager leads it any more/);
    for (const api of apis)
      await eventually(async () => !((await (await fetch(`${api}/api/v1/clusters`)).json()) as { clusters: { name: string }[] }).clusters.some((c) => c.name === 'c13'), 10000, `c13 gone at ${api}`);
    assert.equal((await leaders()).get('c13'), undefined);
  });

  test('no cluster ever had two acting managers (leadership from the logs, journal writers in etcd)', async () => {
    // Leadership intervals per cluster: from leader_elected to leadership_lost, the process's
    // death, or now.
    const intervals = new Map<string, { manager: string; from: number; to: number }[]>();
    const everyManager = [...new Set([...managers, ...killedAt.keys()])];
    for (const m of everyManager) {
      const open = new Map<string, number>();
      const end = killedAt.get(m) ?? Date.now();
      const push = (cluster: string, from: number, to: number) => intervals.set(cluster, [...(intervals.get(cluster) ?? []), { manager: String(m.pid), from, to }]);
      for (const e of m.events as LogEvent[]) {
        const at = Date.parse(e.time);
        const cluster = String(e['cluster'] ?? '');
        if (e.event === 'leader_elected') open.set(cluster, at);
        if ((e.event === 'leadership_lost' || e.event === 'leadership_released') && open.has(cluster)) {
          push(cluster, open.get(cluster)!, at);
          open.delete(cluster);
        }
      }
      for (const [cluster, from] of open) push(cluster, from, end);
    }
    for (const [cluster, list] of intervals) {
      const sorted = [...list].sort((a, b) => a.from - b.from);
      for (let i = 1; i < sorted.length; i++)
        assert.ok(sorted[i]!.from >= sorted[i - 1]!.to || sorted[i]!.manager === sorted[i - 1]!.manager, `${cluster}: ${JSON.stringify(sorted[i - 1])} and ${JSON.stringify(sorted[i])} overlap`);
    }
    // Every plan in the journal was written by one manager (the key names the writer), and plans
    // of one cluster by different managers never overlap in time.
    const plans = new Map<string, { cluster: string; writers: Set<string>; from: number; to: number }>();
    for (const { key, e } of await journal()) {
      const writer = key.split('-').slice(2).join('-');
      const p = plans.get(e.planId) ?? { cluster: e.cluster, writers: new Set<string>(), from: e.at, to: e.at };
      p.writers.add(writer);
      p.from = Math.min(p.from, e.at);
      p.to = Math.max(p.to, e.at);
      plans.set(e.planId, p);
    }
    assert.ok(plans.size >= 6, `the failovers of this test are journaled (${plans.size} plans)`);
    for (const [id, p] of plans) assert.equal(p.writers.size, 1, `plan ${id} of ${p.cluster} written by ${[...p.writers].join(' and ')}`);
    const byCluster = new Map<string, typeof plans extends Map<string, infer V> ? V[] : never>();
    for (const p of plans.values()) byCluster.set(p.cluster, [...(byCluster.get(p.cluster) ?? []), p]);
    for (const [cluster, list] of byCluster) {
      const sorted = list.sort((a, b) => a.from - b.from);
      for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i]!.from >= sorted[i - 1]!.to || [...sorted[i]!.writers][0] === [...sorted[i - 1]!.writers][0], `${cluster}: plans by two managers overlap`);
    }
  });
});
