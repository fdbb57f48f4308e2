import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox, SandboxNode } from '../../src/sandbox/sandbox.ts';
import { decidedPrimaryOf, eventually, runCli, startSandbox } from '../helpers/env.ts';
import { ManagerProcess, Writer } from '../helpers/manager.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The primary Regent published (its state file), falling back to node1 before the first decision. */
function publishedPrimary(sb: Sandbox): { host: string; port: number } {
  const [host, port] = (decidedPrimaryOf(sb) ?? `127.0.0.1:${sb.node(1).port}`).split(':');
  return { host: host!, port: Number(port) };
}

async function variable(sb: Sandbox, n: SandboxNode, expr: string): Promise<string> {
  const [[row]] = (await sb.sql(n, [`SELECT ${expr} AS v`])) as [[{ v: unknown }]];
  return String(row.v);
}

async function slaveStatus(sb: Sandbox, n: SandboxNode): Promise<Record<string, unknown> | undefined> {
  const [rows] = await sb.sql(n, ['SHOW SLAVE STATUS']);
  return rows![0];
}


const failoverDone = (e: { event?: string }) => e.event === 'failover_succeeded';

describe('failover: kill -9 under writes, anti-flapping, ack', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, clusterOverrides: { failover: { blockPeriodSeconds: 3600 } } }));
    await Writer.prepare(sb);
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  let newPrimary: SandboxNode;

  test('a replica is promoted, the other follows it, every acknowledged write survives', async () => {
    const writer = new Writer(sb, () => publishedPrimary(sb));
    await sleep(1500);
    const ackedBefore = writer.acked.length;
    assert.ok(ackedBefore > 10, `writer made only ${ackedBefore} writes`);
    const killedAt = Date.now();
    await sb.kill(sb.node(1));
    const done = await manager.waitFor(failoverDone, 10000, 'failover');
    const detectToPromote = Date.parse(done.time) - killedAt;
    await sleep(1000);
    await writer.stop();
    assert.ok(writer.acked.length > ackedBefore, 'no write was accepted after the failover');

    const newId = String(done['newPrimary']);
    newPrimary = sb.nodes.find((n) => `127.0.0.1:${n.port}` === newId)!;
    assert.ok(newPrimary && newPrimary.name !== 'node1', `unexpected new primary ${newId}`);
    const other = sb.nodes.find((n) => n.name !== 'node1' && n !== newPrimary)!;
    assert.equal(await variable(sb, newPrimary, '@@read_only'), '0');
    const st = await slaveStatus(sb, other);
    assert.equal(st?.['Master_Port'], newPrimary.port);
    await eventually(async () => (await slaveStatus(sb, other))?.['Slave_IO_Running'] === 'Yes', 5000, 'other replica IO thread');

    // Semi-sync: every write the client saw acknowledged is on the new primary.
    const [rows] = (await sb.sql(newPrimary, ['SELECT id FROM app.writes'])) as [{ id: number }[]];
    const present = new Set(rows.map((r) => Number(r.id)));
    const lost = writer.acked.filter((a) => !present.has(a.id));
    assert.deepEqual(lost, [], `${lost.length} acknowledged writes lost of ${writer.acked.length}`);
    assert.ok(detectToPromote < 5000, `failover finished ${detectToPromote} ms after the kill`);

    // The journal holds the plan with every step.
    const journal = readFileSync(join(sb.dir, 'state/journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: string; phase?: string });
    assert.equal(journal.filter((j) => j.type === 'plan').length, 1);
    for (const s of ['fence-old-primary', 'stop-io-threads', 'drain-relay-logs', 'choose-candidate', 'promote', 'repoint-replicas', 'verify', 'publish'])
      assert.ok(journal.some((j) => j.type === 'step' && j.step === s && j.phase === 'end'), `journal lacks step ${s}`);
  });

  test('the restarted old primary comes back read_only and is rejoined as a replica, not as a writer', async () => {
    await sb.start(sb.node(1));
    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '1');
    const rejoined = await manager.waitFor((e) => e.event === 'rejoin_succeeded', 15000, 'automatic rejoin');
    assert.equal(rejoined['instance'], `127.0.0.1:${sb.node(1).port}`);
    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '1');
    await eventually(async () => (await slaveStatus(sb, sb.node(1)))?.['Master_Port'] === newPrimary.port && (await slaveStatus(sb, sb.node(1)))?.['Slave_IO_Running'] === 'Yes', 5000, 'node1 replicating from the new primary');
  });

  test('a second crash inside the block period is not recovered; after regent ack it is', async () => {
    const before = manager.count(failoverDone);
    const mark = manager.events.length;
    await sb.kill(newPrimary);
    await manager.waitFor((e) => e.event === 'recovery_blocked' && /anti-flapping/.test(String(e.msg)), 10000, 'anti-flapping block');
    await sleep(1500);
    assert.equal(manager.count((e) => e.event === 'failover_started'), before, 'a failover started inside the block period');

    const ack = await runCli(['ack', '--config', sb.configFile]);
    assert.equal(ack.code, 0, ack.stderr);
    assert.match(ack.stdout, /acknowledged/);
    const done = await manager.waitFor(failoverDone, 10000, 'failover after ack', mark);
    const promoted = sb.nodes.find((n) => `127.0.0.1:${n.port}` === done['newPrimary'])!;
    assert.ok(promoted && promoted !== newPrimary, `unexpected new primary ${String(done['newPrimary'])}`);
    assert.equal(await variable(sb, promoted, '@@read_only'), '0');
  });
});

describe('failover: SIGSTOPped primary', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await sleep(700);
  });
  after(async () => {
    try {
      sb?.resume(sb.node(1));
    } catch {
      // not running
    }
    await manager?.stop();
    await cleanup?.();
  });

  test('fails over within the window; after SIGCONT the old primary is fenced read_only', async () => {
    const stoppedAt = Date.now();
    sb.pause(sb.node(1));
    const done = await manager.waitFor(failoverDone, 10000, 'failover of a frozen primary');
    // A frozen primary is dead only after failover.hangToleranceMs of silence (test/e2e/hang-tolerance.test.ts measures it closely).
    const took = Date.parse(done.time) - stoppedAt;
    const tolerance = sb.config().clusters[0]!.failover.hangToleranceMs;
    assert.ok(took >= tolerance - 600 && took < tolerance + 3000, `failover took ${took} ms (hang tolerance ${tolerance} ms)`);
    sb.resume(sb.node(1));
    await manager.waitFor((e) => e.event === 'fenced_stray_primary', 10000, 'fence of the woken primary');
    // The fence kills client sessions, so a query racing it may lose its connection: ask again.
    await eventually(async () => (await variable(sb, sb.node(1), '@@read_only').catch(() => '')) === '1', 5000, 'read_only on the woken primary');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '1');
  });
});

describe('failover rules on 5 nodes: never ahead, prefer wins the tie', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 5 }));
    // Labels: node2 never, node4 prefer (regent.yaml is rewritten with them).
    const { readFileSync: read, writeFileSync: write } = await import('node:fs');
    const yaml = await import('yaml');
    const doc = yaml.parse(read(sb.configFile, 'utf8')) as { clusters: { instances: { name: string; promotion?: string }[] }[] };
    for (const i of doc.clusters[0]!.instances) {
      if (i.name === 'node2') i.promotion = 'never';
      if (i.name === 'node4') i.promotion = 'prefer';
    }
    write(sb.configFile, yaml.stringify(doc));
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('the never replica that is ahead is not promoted; the prefer one catches up from it', async () => {
    await sb.sql(sb.node(1), ['CREATE TABLE app.r (id INT PRIMARY KEY) ENGINE=InnoDB']);
    await eventually(async () => (await variable(sb, sb.node(5), "(SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='app' AND table_name='r')")) === '1', 5000, 'table on node5');
    for (const n of [3, 4, 5]) await sb.sql(sb.node(n), ['STOP SLAVE IO_THREAD']);
    for (let i = 1; i <= 20; i++) await sb.sql(sb.node(1), [`INSERT INTO app.r VALUES (${i})`]);
    await eventually(async () => (await variable(sb, sb.node(2), '(SELECT COUNT(*) FROM app.r)')) === '20', 5000, 'node2 has the rows');
    await sb.kill(sb.node(1));
    const done = await manager.waitFor(failoverDone, 15000, 'failover');
    assert.equal(done['newPrimary'], `127.0.0.1:${sb.node(4).port}`);
    assert.equal(await variable(sb, sb.node(4), '(SELECT COUNT(*) FROM app.r)'), '20');
    const catchUp = manager.events.find((e) => e.event === 'failover_step' && e['step'] === 'catch-up');
    assert.ok(catchUp, 'no catch-up step');
    assert.match(String(catchUp['detail']), new RegExp(`caught up with 127.0.0.1:${sb.node(2).port}`));
    const choose = manager.events.find((e) => e.event === 'failover_step' && e['step'] === 'choose-candidate');
    assert.match(String(choose?.['detail']), /prefer/);
    // The never replica follows the new primary.
    await eventually(async () => (await slaveStatus(sb, sb.node(2)))?.['Master_Port'] === sb.node(4).port, 5000, 'node2 re-pointed');
  });
});

describe('no failover: unreachable only from Regent, errant or forbidden candidates', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  let rule: string[] | undefined;
  const GID = 65534; // run the manager in group nogroup so iptables can block only its packets
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    const { readFileSync: read, writeFileSync: write } = await import('node:fs');
    const yaml = await import('yaml');
    const doc = yaml.parse(read(sb.configFile, 'utf8')) as { clusters: { instances: { name: string; promotion?: string }[] }[] };
    doc.clusters[0]!.instances.find((i) => i.name === 'node2')!.promotion = 'never';
    write(sb.configFile, yaml.stringify(doc));
    manager = new ManagerProcess(sb.configFile, { gid: GID });
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await sleep(700);
  });
  after(async () => {
    if (rule) spawnSync('iptables', ['-D', ...rule]);
    await manager?.stop();
    await cleanup?.();
  });

  test('Regent cannot reach the primary but the replicas can: UnreachablePrimary, no failover', async () => {
    rule = ['OUTPUT', '-o', 'lo', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(sb.node(1).port), '-m', 'owner', '--gid-owner', String(GID), '-j', 'DROP'];
    const add = spawnSync('iptables', ['-A', ...rule], { encoding: 'utf8' });
    assert.equal(add.status, 0, `iptables failed: ${add.stderr}`);
    await manager.waitFor((e) => e.event === 'problem_started' && e['code'] === 'UnreachablePrimary', 10000, 'UnreachablePrimary');
    await sleep(3000);
    assert.equal(manager.count((e) => e.event === 'failover_started'), 0, 'failed over although the replicas still reach the primary');
    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '0');
    spawnSync('iptables', ['-D', ...rule]);
    rule = undefined;
    await manager.waitFor((e) => e.event === 'problem_resolved' && e['code'] === 'UnreachablePrimary', 10000, 'primary reachable again');
  });

  test('a replica with errant GTIDs is never promoted; with no allowed candidate nothing happens and the reason is reported', async () => {
    // node3 writes a transaction of its own in another domain: errant, the primary never had it.
    await sb.sql(sb.node(3), ['SET SESSION gtid_domain_id = 9', 'CREATE TABLE app.errant (id INT PRIMARY KEY)', 'INSERT INTO app.errant VALUES (1)']);
    await manager.waitFor((e) => e.event === 'problem_started' && e['code'] === 'ErrantGtid', 10000, 'ErrantGtid');
    await sb.kill(sb.node(1));
    const blocked = await manager.waitFor((e) => e.event === 'recovery_blocked' && /no replica may be promoted/.test(String(e.msg)), 10000, 'refusal');
    assert.match(String(blocked.msg), /errant/);
    assert.match(String(blocked.msg), /never/);
    await sleep(1000);
    assert.equal(manager.count((e) => e.event === 'failover_started'), 0);
    assert.equal(await variable(sb, sb.node(2), '@@read_only'), '1');
    assert.equal(await variable(sb, sb.node(3), '@@read_only'), '1');
  });
});

describe('manual failover: automatic off, dry run, hooks', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    const { writeFileSync: write, readFileSync: read } = await import('node:fs');
    const yaml = await import('yaml');
    const doc = yaml.parse(read(sb.configFile, 'utf8')) as { clusters: Record<string, unknown>[] };
    doc.clusters[0]!['failover'] = { automatic: false };
    doc.clusters[0]!['hooks'] = {
      preFailover: [`test -f ${sb.dir}/allow-failover || { echo "change freeze"; exit 3; }`],
      postFailover: [`echo "$REGENT_CLUSTER $REGENT_OLD_PRIMARY $REGENT_NEW_PRIMARY" > ${sb.dir}/post-hook.out`],
      timeoutSeconds: 5,
    };
    write(sb.configFile, yaml.stringify(doc));
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await sleep(700);
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('with automatic failover off, a dead primary is only reported', async () => {
    await sb.kill(sb.node(1));
    const e = await manager.waitFor((x) => x.event === 'recovery_blocked', 10000, 'report');
    assert.match(String(e.msg), /automatic failover is off/);
    await sleep(500);
    assert.equal(manager.count((x) => x.event === 'failover_started'), 0);
  });

  test('failover --dry-run prints the plan with its reasons and changes nothing', async () => {
    const r = await runCli(['failover', '--dry-run', '--config', sb.configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`old primary: 127.0.0.1:${sb.node(1).port}`));
    assert.match(r.stdout, /new primary: 127\.0\.0\.1:\d+/);
    assert.match(r.stdout, /drain-relay-logs/);
    assert.equal(await variable(sb, sb.node(2), '@@read_only'), '1');
    assert.equal(await variable(sb, sb.node(3), '@@read_only'), '1');
  });

  test('a failing pre-failover hook aborts; replication is left as it was', async () => {
    const r = await runCli(['failover', '--config', sb.configFile]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /pre-failover hook .* exited with 3: change freeze; failover aborted/);
    for (const n of [2, 3]) {
      assert.equal(await variable(sb, sb.node(n), '@@read_only'), '1');
      assert.equal((await slaveStatus(sb, sb.node(n)))?.['Master_Port'], sb.node(1).port);
    }
  });

  test('manual failover succeeds and post-failover hooks get the facts', async () => {
    const { writeFileSync: write, readFileSync: read } = await import('node:fs');
    write(join(sb.dir, 'allow-failover'), '');
    const r = await runCli(['failover', '--config', sb.configFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /failover of sandbox done in \d+ ms/);
    const [cluster, oldP, newP] = read(join(sb.dir, 'post-hook.out'), 'utf8').trim().split(' ');
    assert.equal(cluster, 'sandbox');
    assert.equal(oldP, `127.0.0.1:${sb.node(1).port}`);
    assert.equal(newP, `127.0.0.1:${sb.node(2).port}`, r.stdout);
    assert.equal(await variable(sb, sb.node(2), '@@read_only'), '0');
  });
});
