import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { runCli, startSandbox } from '../helpers/env.ts';
import { EtcdCluster } from '../helpers/etcd.ts';
import { ManagerProcess, type LogEvent } from '../helpers/manager.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TTL = 3;

/**
 * One config per manager: same clusters and etcd, its own API port, and (since they share this
 * host) only manager 0 gets the router ports of the sandbox; the others get their own.
 */
function managerConfigs(sb: Sandbox, etcd: EtcdCluster, count: number): string[] {
  const base = sb.node(1).port;
  const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { manager: Record<string, unknown>; clusters: Record<string, unknown>[] };
  return Array.from({ length: count }, (_, k) => {
    const d = structuredClone(doc);
    d.manager['coordination'] = { backend: 'etcd', endpoints: etcd.endpoints, prefix: '/regent', leaseTtlSeconds: TTL };
    (d.manager['api'] as Record<string, unknown>)['listen'] = `127.0.0.1:${base + PORT.api + (k === 0 ? 0 : 4 + k)}`;
    const router = d.clusters[0]!['router'] as Record<string, unknown>;
    // The SQL endpoint is not under test here, and its port (base + 53) is where the next
    // managers' writers listen.
    delete router['sql'];
    if (k > 0) {
      // Every manager's data plane listens on endpoints of its own (44-47: free in the sandbox layout).
      router['writer'] = `127.0.0.1:${base + 44 + 2 * (k - 1)}`;
      router['reader'] = `127.0.0.1:${base + 45 + 2 * (k - 1)}`;
      delete router['healthCheckBasePort'];
      delete router['sql'];
    }
    const f = join(sb.dir, `regent-m${k}.yaml`);
    writeFileSync(f, toYaml(d));
    return f;
  });
}

async function journalPlans(etcd: EtcdCluster, cluster = 'sandbox'): Promise<{ type: string; planId: string; step?: string; phase?: string; ok?: boolean }[]> {
  const c = new Etcd3({ hosts: etcd.endpoints });
  try {
    const all = await c.getAll().prefix(`/regent/_journal/${cluster}/`).strings();
    return Object.keys(all)
      .sort()
      .map((k) => JSON.parse(all[k]!) as { type: string; planId: string; step?: string; phase?: string; ok?: boolean });
  } finally {
    c.close();
  }
}

async function readOnly(sb: Sandbox, n: number): Promise<string> {
  const [[row]] = (await sb.sql(sb.node(n), ['SELECT @@read_only AS v'])) as [[{ v: unknown }]];
  return String(row.v);
}

function leaderOf(managers: ManagerProcess[]): ManagerProcess | undefined {
  // The newest leadership event of each manager tells whether it leads now.
  return managers.find((m) => {
    const last = [...m.events].reverse().find((e) => e.event === 'leader_elected' || e.event === 'leadership_lost');
    return last?.event === 'leader_elected' && m.alive;
  });
}

async function waitForLeader(managers: ManagerProcess[], timeoutMs: number, except?: ManagerProcess): Promise<ManagerProcess> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const l = leaderOf(managers.filter((m) => m !== except));
    if (l) return l;
    await sleep(50);
  }
  throw new Error(`no leader within ${timeoutMs} ms`);
}

describe('several managers with etcd', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let etcd: EtcdCluster;
  let managers: ManagerProcess[] = [];
  let configs: string[];

  before(async () => {
    etcd = await EtcdCluster.start(3);
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    configs = managerConfigs(sb, etcd, 3);
  });
  after(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await cleanup?.();
    await etcd?.destroy();
  });

  const startManagers = async (env: Record<string, string> = {}) => {
    managers = configs.map((c) => new ManagerProcess(c, { env }));
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 15000, 'manager start')));
    return waitForLeader(managers, 10000);
  };

  test('kill -9 of the leader gives a new leader within the TTL; then one failover of a dead primary', async () => {
    const leader = await startManagers();
    const st = await runCli(['status', '--config', configs[0]!]);
    assert.match(st.stdout, /managers \(etcd\):/);
    assert.equal((st.stdout.match(/★ leader/g) ?? []).length, 1, st.stdout);
    assert.equal((st.stdout.match(/follower/g) ?? []).length, 2, st.stdout);
    assert.match(st.stdout, /lease \d+\/3 s left/);
    const killedAt = Date.now();
    await leader.kill9();
    const next = await waitForLeader(managers, (TTL + 3) * 1000, leader);
    const elected = next.events.find((e) => e.event === 'leader_elected' && Date.parse(e.time) >= killedAt)!;
    const took = Date.parse(elected.time) - killedAt;
    assert.ok(took <= (TTL + 1) * 1000, `new leader after ${took} ms (TTL ${TTL} s)`);

    await sleep(500);
    await sb.kill(sb.node(1));
    const done = await next.waitFor((e) => e.event === 'failover_succeeded', 15000, 'failover by the new leader');
    // Discovery keys follow within a second.
    const c = new Etcd3({ hosts: etcd.endpoints });
    try {
      // Polled from the moment the manager logged the failover: it must show within a second.
      const deadline = Date.parse(done.time) + 1000;
      let value = '';
      do value = (await c.get('/regent/sandbox/primary').string()) ?? '';
      while (value !== done['newPrimary'] && Date.now() < deadline);
      assert.equal(value, done['newPrimary'], 'discovery key not updated within 1 s of the failover');
      const replicas = JSON.parse((await c.get('/regent/sandbox/replicas').string()) ?? '[]') as string[];
      assert.ok(!replicas.includes(String(done['newPrimary'])));
    } finally {
      c.close();
    }
    await sleep(1500);
    const journal = await journalPlans(etcd);
    assert.equal(journal.filter((j) => j.type === 'plan').length, 1, 'the journal holds exactly one plan');
    assert.equal(journal.filter((j) => j.type === 'step' && j.step === 'promote' && j.phase === 'end' && j.ok).length, 1);
    // Followers did not act.
    for (const m of managers.filter((x) => x !== next)) assert.equal(m.count((e) => e.event === 'failover_started'), 0);
    const newPort = Number(String(done['newPrimary']).split(':')[1]);
    const promoted = sb.nodes.find((n) => n.port === newPort)!;
    assert.equal(await readOnly(sb, promoted.serverId), '0');

    await Promise.all(managers.map((m) => m.stop()));
    await sb.start(sb.node(1));
  });
});

describe('leader killed in the middle of a failover (etcd)', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let etcd: EtcdCluster;
  let managers: ManagerProcess[] = [];
  before(async () => {
    etcd = await EtcdCluster.start(3);
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
  });
  after(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await cleanup?.();
    await etcd?.destroy();
  });

  test('the new leader completes the same plan; no second promotion', async () => {
    const configs = managerConfigs(sb, etcd, 3);
    managers = configs.map((c) => new ManagerProcess(c, { env: { REGENT_TEST_PAUSE_AFTER_STEP: 'promote' } }));
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 15000)));
    const leader = await waitForLeader(managers, 10000);
    await sleep(500);
    await sb.kill(sb.node(1));
    await leader.waitFor((e) => e.event === 'test_pause', 10000, 'pause after promote');
    await leader.kill9();
    const next = await waitForLeader(managers, (TTL + 3) * 1000, leader);
    const resumed = await next.waitFor((e: LogEvent) => e.event === 'failover_resumed', 10000, 'resume');
    const done = await next.waitFor((e) => e.event === 'failover_succeeded', 10000, 'completion');
    assert.equal(done['planId'], resumed['planId']);
    const journal = await journalPlans(etcd);
    assert.equal(journal.filter((j) => j.type === 'plan').length, 1);
    assert.equal(journal.filter((j) => j.type === 'step' && j.step === 'promote' && j.phase === 'end').length, 1, 'promoted twice');
    assert.equal(journal.filter((j) => j.type === 'end').length, 1);
    // The replica that was not re-pointed before the leader died now follows the new primary.
    const newPort = Number(String(done['newPrimary']).split(':')[1]);
    const other = sb.nodes.find((n) => n.port !== newPort && n.name !== 'node1')!;
    const deadline = Date.now() + 5000;
    let port = 0;
    while (Date.now() < deadline && port !== newPort) {
      const [rows] = await sb.sql(other, ['SHOW SLAVE STATUS']);
      port = Number(rows![0]?.['Master_Port']);
      await sleep(100);
    }
    assert.equal(port, newPort);
  });
});

describe('leader partitioned from etcd, and etcd entirely down', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let etcd: EtcdCluster;
  let managers: ManagerProcess[] = [];
  const rules: string[][] = [];
  const GID = 65534;
  before(async () => {
    etcd = await EtcdCluster.start(3);
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
  });
  after(async () => {
    for (const r of rules) spawnSync('iptables', ['-D', ...r]);
    await Promise.all(managers.map((m) => m.stop()));
    await cleanup?.();
    await etcd?.destroy();
  });

  test('a leader cut off from etcd stops acting within the TTL and another takes over', async () => {
    const configs = managerConfigs(sb, etcd, 2);
    // Manager 0 runs in group nogroup: iptables can cut only its traffic to etcd.
    managers = [new ManagerProcess(configs[0]!, { gid: GID }), new ManagerProcess(configs[1]!)];
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 15000)));
    // Make manager 0 the leader: wait for a leader; if it is manager 1, restart manager 1 to hand over.
    let leader = await waitForLeader(managers, 10000);
    if (leader !== managers[0]) {
      await managers[1]!.stop();
      await waitForLeader([managers[0]!], (TTL + 3) * 1000);
      managers[1] = new ManagerProcess(configs[1]!);
      await managers[1].waitFor((e) => e.event === 'manager_started', 15000);
      leader = managers[0]!;
    }
    const cutAt = Date.now();
    for (const m of etcd.members) {
      const rule = ['OUTPUT', '-o', 'lo', '-p', 'tcp', '--dport', String(m.client), '-m', 'owner', '--gid-owner', String(GID), '-j', 'DROP'];
      assert.equal(spawnSync('iptables', ['-A', ...rule]).status, 0);
      rules.push(rule);
    }
    const lost = await leader.waitFor((e) => e.event === 'leadership_lost', (TTL + 2) * 1000, 'leadership lost');
    assert.ok(Date.parse(lost.time) - cutAt <= TTL * 1000, `stopped acting after ${Date.parse(lost.time) - cutAt} ms`);
    const next = await managers[1]!.waitFor((e) => e.event === 'leader_elected', (TTL + 4) * 1000, 'takeover');
    assert.ok(Date.parse(next.time) >= Date.parse(lost.time), 'two leaders at once');
    for (const r of rules.splice(0)) spawnSync('iptables', ['-D', ...r]);
  });

  test('etcd entirely down: no failover is attempted, writes keep flowing through the router', async () => {
    await etcd.stopAll();
    await sleep((TTL + 1) * 1000);
    const writerPort = sb.node(1).port + PORT.writer;
    const app = sb.appAccount();
    const c = await mysql.createConnection({ host: '127.0.0.1', port: writerPort, user: app.user, password: app.password, database: app.database, connectTimeout: 3000 });
    await c.query('CREATE TABLE IF NOT EXISTS etcd_down (id INT PRIMARY KEY)');
    for (let i = 1; i <= 20; i++) await c.query('INSERT INTO etcd_down VALUES (?)', [i]);
    await c.end();
    await sb.kill(sb.node(2));
    await sb.kill(sb.node(1));
    await sleep(4000);
    for (const m of managers) assert.equal(m.count((e) => e.event === 'failover_started'), 0, 'a failover was attempted without etcd');
    assert.equal(await readOnly(sb, 3), '1');
  });
});

describe('local backend: manager killed mid-failover', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess | undefined;
  before(async () => ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 })));
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('a restarted manager finds the unfinished plan and completes it', async () => {
    const first = new ManagerProcess(sb.configFile, { env: { REGENT_TEST_PAUSE_AFTER_STEP: 'promote' } });
    await first.waitFor((e) => e.event === 'manager_started', 15000);
    await sleep(700);
    await sb.kill(sb.node(1));
    await first.waitFor((e) => e.event === 'test_pause', 10000, 'pause after promote');
    await first.kill9();
    manager = new ManagerProcess(sb.configFile);
    const resumed = await manager.waitFor((e) => e.event === 'failover_resumed', 15000, 'resume');
    const done = await manager.waitFor((e) => e.event === 'failover_succeeded', 10000, 'completion');
    assert.equal(done['planId'], resumed['planId']);
    const journal = readFileSync(join(sb.dir, 'state/journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: string; phase?: string });
    assert.equal(journal.filter((j) => j.type === 'plan').length, 1);
    assert.equal(journal.filter((j) => j.type === 'step' && j.step === 'promote' && j.phase === 'end').length, 1);
    assert.equal(journal.filter((j) => j.type === 'end').length, 1);
  });
});

describe('primary-side lease (coordination.primaryLease)', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let etcd: EtcdCluster;
  let manager: ManagerProcess | undefined;
  before(async () => {
    etcd = await EtcdCluster.start(3);
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
    await etcd?.destroy();
  });

  test('etcd lost for the TTL: the primary goes read_only, and writable again when etcd is back; the only live node keeps serving', async () => {
    const [config] = managerConfigs(sb, etcd, 1);
    const doc = parseYaml(readFileSync(config!, 'utf8')) as { manager: { coordination: Record<string, unknown> } };
    doc.manager.coordination['primaryLease'] = true;
    writeFileSync(config!, toYaml(doc));
    manager = new ManagerProcess(config!);
    await manager.waitFor((e) => e.event === 'leader_elected', 15000, 'leadership');
    await sleep(500);
    const stoppedAt = Date.now();
    await etcd.stopAll();
    const fenced = await manager.waitFor((e) => e.event === 'primary_lease_expired', (TTL + 5) * 1000, 'primary lease fence');
    // The lease runs out TTL after its last renewal, and renewals happen every TTL/3.
    const after = Date.parse(fenced.time) - stoppedAt;
    assert.ok(after >= (TTL * 1000 * 2) / 3 - 300 && after <= TTL * 1000 + 2000, `fenced ${after} ms after etcd went away (TTL ${TTL} s)`);
    assert.equal(await readOnly(sb, 1), '1');
    const mark = manager.events.length;
    await etcd.startAll();
    await manager.waitFor((e) => e.event === 'primary_lease_restored', 30000, 'primary writable again', mark);
    assert.equal(await readOnly(sb, 1), '0');

    // The only live node: no fence.
    await sb.kill(sb.node(2));
    await sb.kill(sb.node(3));
    await sleep(1000);
    const mark2 = manager.events.length;
    await etcd.stopAll();
    await sleep((TTL + 3) * 1000);
    assert.equal(manager.events.slice(mark2).filter((e) => e.event === 'primary_lease_expired').length, 0);
    assert.equal(await readOnly(sb, 1), '0');
  });
});
