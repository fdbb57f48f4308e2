import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { openSandbox, PORT, type Sandbox, type SandboxNode } from '../../src/sandbox/sandbox.ts';
import { decidedPrimaryOf, eventually, runCli, startSandbox, type CliResult } from '../helpers/env.ts';
import { ManagerProcess, Writer, type LogEvent } from '../helpers/manager.ts';

/**
 * Healing on real servers: switchover (under writes, pre-check refusals, rollback on a failure in
 * the middle), rejoin of a former primary (clean, and with errant transactions rewound by flashback
 * or refused), automatic re-pointing of a stray replica, explicit repair of a broken replica, and
 * clone of a live dataset onto a new node.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rows(sb: Sandbox, n: SandboxNode, sql: string): Promise<Record<string, unknown>[]> {
  const [r] = await sb.sql(n, [sql]);
  return r!;
}

async function variable(sb: Sandbox, n: SandboxNode, expr: string): Promise<string> {
  const [row] = await rows(sb, n, `SELECT ${expr} AS v`);
  return String(row!['v']);
}

async function slaveStatus(sb: Sandbox, n: SandboxNode): Promise<Record<string, unknown> | undefined> {
  return (await rows(sb, n, 'SHOW SLAVE STATUS'))[0];
}

async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await cond()) return;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** Replicates from `source`, both threads running, no error. */
async function replicatingFrom(sb: Sandbox, n: SandboxNode, source: SandboxNode): Promise<boolean> {
  const st = await slaveStatus(sb, n);
  return Number(st?.['Master_Port']) === source.port && st?.['Slave_IO_Running'] === 'Yes' && st?.['Slave_SQL_Running'] === 'Yes';
}

function nodeById(sb: Sandbox, id: unknown): SandboxNode {
  const n = sb.nodes.find((x) => `127.0.0.1:${x.port}` === String(id));
  assert.ok(n, `no node ${String(id)}`);
  return n;
}

const idOf = (n: SandboxNode) => `127.0.0.1:${n.port}`;


function editCluster(sb: Sandbox, edit: (cluster: Record<string, unknown>) => void): void {
  const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { clusters: Record<string, unknown>[] };
  edit(doc.clusters[0]!);
  writeFileSync(sb.configFile, toYaml(doc));
}

/** Every replica has applied everything the primary has binlogged. */
async function waitCaughtUp(sb: Sandbox, primary: SandboxNode, replicas: SandboxNode[], timeoutS = 30): Promise<void> {
  const pos = await variable(sb, primary, '@@gtid_binlog_pos');
  for (const r of replicas) {
    const res = await variable(sb, r, `MASTER_GTID_WAIT('${pos}', ${timeoutS})`);
    assert.equal(res, '0', `${r.name} did not reach ${pos} within ${timeoutS} s: ${JSON.stringify(await slaveStatus(sb, r))}`);
  }
}

async function checksums(sb: Sandbox, nodes: SandboxNode[], table: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of nodes) out.set(n.name, String((await rows(sb, n, `CHECKSUM TABLE ${table}`))[0]!['Checksum']));
  return out;
}

async function assertSameChecksum(t: TestContext, sb: Sandbox, nodes: SandboxNode[], table: string): Promise<void> {
  const sums = await checksums(sb, nodes, table);
  t.diagnostic(`CHECKSUM TABLE ${table}: ${JSON.stringify(Object.fromEntries(sums))}`);
  assert.equal(new Set(sums.values()).size, 1, `checksums of ${table} differ: ${JSON.stringify(Object.fromEntries(sums))}`);
  assert.ok(![...sums.values()].includes('null'), `${table} missing somewhere`);
}

/** Every id the writer saw acknowledged is present on `n`. */
async function assertNoAckedWriteLost(sb: Sandbox, n: SandboxNode, writer: Writer): Promise<void> {
  const present = new Set((await rows(sb, n, `SELECT id FROM ${writer.table}`)).map((r) => Number(r['id'])));
  const lost = writer.acked.filter((a) => !present.has(a.id));
  assert.deepEqual(lost.map((a) => a.id), [], `${lost.length} of ${writer.acked.length} acknowledged writes are missing on ${n.name}`);
}

/** The largest gap between consecutive acknowledged writes that overlaps [from, to]. */
function largestAckGap(writer: Writer, from: number, to: number): number {
  let gap = 0;
  for (let i = 1; i < writer.acked.length; i++) {
    const a = writer.acked[i - 1]!;
    const b = writer.acked[i]!;
    if (b.at >= from && a.at <= to) gap = Math.max(gap, b.at - a.at);
  }
  return gap;
}

async function viaWriterPort(sb: Sandbox, sql: string): Promise<unknown[]> {
  const app = sb.appAccount();
  const c = await mysql.createConnection({ host: '127.0.0.1', port: sb.node(1).port + PORT.writer, user: app.user, password: app.password, database: app.database, connectTimeout: 5000 });
  try {
    const [r] = await c.query(sql);
    return r as unknown[];
  } finally {
    await c.end();
  }
}

/** The routing table of the running manager (API), as the data plane computes it from the same inputs. */
async function routing(sb: Sandbox): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${sb.node(1).port + PORT.api}/api/v1/clusters/${sb.manifest.cluster}`);
  return ((await res.json()) as { routing: { table: Record<string, unknown> } }).routing.table;
}

async function startManager(sb: Sandbox, env?: Record<string, string>): Promise<ManagerProcess> {
  const m = new ManagerProcess(sb.configFile, { env });
  try {
    await m.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    // The data plane routes writes (a fresh one, or the one an earlier manager left running).
    await eventually(async () => ((await routing(sb)).writer as { mode?: string }).mode === 'route', 5000, 'writer routing');
  } catch (e) {
    await m.stop(); // not left running when the start failed
    throw e;
  }
  // Every instance probed and analysed once.
  await sleep(500);
  return m;
}

/** Writers still running; stopped in `after` when a test failed before stopping its own. */
const writers = new Set<Writer>();

/** A fresh table for one writer (its ids start at 1), created on the current primary. */
async function startWriter(sb: Sandbox, primary: SandboxNode, table: string, target: () => { host: string; port: number }): Promise<Writer> {
  await sb.sql(primary, [`CREATE TABLE ${table} (id INT PRIMARY KEY, server_id INT NOT NULL, at BIGINT NOT NULL) ENGINE=InnoDB`]);
  const w = new Writer(sb, target, table);
  writers.add(w);
  return w;
}

async function stopWriter(w: Writer): Promise<void> {
  writers.delete(w);
  await w.stop();
}

async function stopAllWriters(): Promise<void> {
  await Promise.all([...writers].map((w) => stopWriter(w)));
}

function cliOutput(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

describe('switchover, rejoin and repair with a running manager', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess | undefined;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, clusterOverrides: { repair: { afterSeconds: 1 } } }));
    await Writer.prepare(sb);
    manager = await startManager(sb);
  });
  after(async () => {
    await stopAllWriters();
    await manager?.stop();
    await cleanup?.();
  });

  const writerPort = () => sb.node(1).port + PORT.writer;
  const started = (since: number) => manager!.events.slice(since).filter((e) => e.event === 'switchover_started').length;

  async function switchoverUnderWrites(t: TestContext, table: string, args: string[], expectOld: SandboxNode, expectNew?: SandboxNode): Promise<SandboxNode> {
    const writer = await startWriter(sb, expectOld, table, () => ({ host: '127.0.0.1', port: writerPort() }));
    await sleep(1000);
    const ackedBefore = writer.acked.length;
    assert.ok(ackedBefore > 10, `writer made only ${ackedBefore} writes before the switchover; failures: ${JSON.stringify(writer.failures.slice(0, 5))}`);
    const mark = manager!.events.length;
    const t0 = Date.now();
    const r = await runCli(['switchover', '--config', sb.configFile, ...args]);
    const t1 = Date.now();
    await sleep(1000);
    await stopWriter(writer);
    assert.equal(r.code, 0, cliOutput(r));
    assert.match(r.stdout, /switchover done in \d+ ms: .* writes paused \d+ ms/);
    const done = await manager!.waitFor((e) => e.event === 'switchover_succeeded', 5000, 'switchover_succeeded', mark);
    assert.equal(done['oldPrimary'], idOf(expectOld));
    const newP = nodeById(sb, done['newPrimary']);
    if (expectNew) assert.equal(newP, expectNew);
    assert.notEqual(newP, expectOld);

    // The write pause, as Regent reports it and as the client saw it.
    const reported = Number(done['writePauseMs']);
    const clientGap = largestAckGap(writer, t0, t1);
    t.diagnostic(`switchover ${expectOld.name} -> ${newP.name}: CLI ${t1 - t0} ms, reported write pause ${reported} ms, largest gap between acknowledged writes ${clientGap} ms, ${writer.acked.length} writes acknowledged, ${writer.failures.length} failed`);
    assert.ok(Number.isFinite(reported) && reported >= 0, `writePauseMs missing: ${JSON.stringify(done)}`);
    assert.ok(reported < 3000, `reported write pause ${reported} ms`);
    assert.ok(clientGap > 0 && clientGap < 3000, `client-side write pause ${clientGap} ms`);
    assert.ok(writer.acked.some((a) => a.at > t1), 'no write was acknowledged after the switchover');

    // No acknowledged write lost; writes after the switchover went to the new primary only.
    await assertNoAckedWriteLost(sb, newP, writer);
    const late = await rows(sb, newP, `SELECT DISTINCT server_id FROM ${table} WHERE at > ${t1}`);
    assert.deepEqual(late.map((x) => Number(x['server_id'])), [newP.serverId]);

    // Roles: the new primary writable, the old one a read_only replica of it.
    assert.equal(await variable(sb, newP, '@@read_only'), '0');
    assert.equal(await variable(sb, expectOld, '@@read_only'), '1');
    await waitUntil(() => replicatingFrom(sb, expectOld, newP), 5000, `${expectOld.name} replicating from ${newP.name}`);
    for (const other of sb.nodes.filter((n) => n !== newP && n !== expectOld)) await waitUntil(() => replicatingFrom(sb, other, newP), 5000, `${other.name} replicating from ${newP.name}`);
    assert.equal(decidedPrimaryOf(sb), idOf(newP));
    assert.equal((await viaWriterPort(sb, 'SELECT @@server_id AS s') as { s: number }[])[0]!.s, newP.serverId);
    return newP;
  }

  test('1. switchover under continuous writes through the writer port: nothing lost, short pause, old primary replicates from the new one; and back with --to', async (t) => {
    const newP = await switchoverUnderWrites(t, 'app.w_switch', [], sb.node(1));
    await switchoverUnderWrites(t, 'app.w_back', ['--to', 'node1'], newP, sb.node(1));
    await waitCaughtUp(sb, sb.node(1), [sb.node(2), sb.node(3)]);
    await assertSameChecksum(t, sb, sb.nodes, 'app.w_switch');
    await assertSameChecksum(t, sb, sb.nodes, 'app.w_back');
  });

  /** The primary node1 writable, node2 and node3 its replicas: nothing changed. */
  async function assertUntouched(): Promise<void> {
    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '0');
    assert.equal(decidedPrimaryOf(sb), idOf(sb.node(1)));
    assert.equal(await slaveStatus(sb, sb.node(1)), undefined, 'node1 replicates from someone');
    for (const n of [sb.node(2), sb.node(3)]) {
      assert.equal(await variable(sb, n, '@@read_only'), '1');
      assert.equal(Number((await slaveStatus(sb, n))?.['Master_Port']), sb.node(1).port);
    }
    assert.equal((await viaWriterPort(sb, 'SELECT @@server_id AS s') as { s: number }[])[0]!.s, 1);
  }

  test('2. pre-check refusals leave the cluster untouched: delayed target, never target', async () => {
    const mark = manager!.events.length;
    // A delayed replica.
    await sb.sql(sb.node(2), ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 30', 'START SLAVE']);
    try {
      const r = await runCli(['switchover', '--config', sb.configFile, '--to', 'node2']);
      assert.equal(r.code, 1, cliOutput(r));
      assert.match(r.stderr, /switchover refused: .*target 127\.0\.0\.1:\d+ is a delayed replica \(30 s\)/);
      await assertUntouched();
    } finally {
      await sb.sql(sb.node(2), ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 0', 'START SLAVE']);
    }

    // A target whose promotion rule is never (changed through the API, as an operator would).
    const token = readFileSync(join(sb.dir, 'secrets/api-token.pw'), 'utf8').trim();
    const setRule = async (rule: string) => {
      const res = await fetch(`http://127.0.0.1:${sb.node(1).port + PORT.api}/api/v1/clusters/${sb.manifest.cluster}/instances/node3/promotion`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ rule }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    await setRule('never');
    try {
      const r = await runCli(['switchover', '--config', sb.configFile, '--to', 'node3']);
      assert.equal(r.code, 1, cliOutput(r));
      assert.match(r.stderr, /switchover refused: .*target 127\.0\.0\.1:\d+ has promotion rule never/);
      await assertUntouched();
    } finally {
      await setRule('neutral');
    }
    assert.equal(started(mark), 0, 'a refused switchover started');
    assert.ok(manager!.count((e) => e.event === 'switchover_refused') >= 2);
    await waitUntil(() => replicatingFrom(sb, sb.node(2), sb.node(1)), 5000, 'node2 replicating again');
  });

  test('3. a target killed in the middle of the switchover: rolled back, the old primary writable and serving again', async (t) => {
    await manager!.stop();
    manager = await startManager(sb, { REGENT_TEST_DELAY_BEFORE_STEP: 'promote:2000' });
    const mark = manager.events.length;
    const cli = runCli(['switchover', '--config', sb.configFile, '--to', 'node2']);
    await manager.waitFor((e) => e.event === 'switchover_step' && e['step'] === 'wait-for-target', 15000, 'wait-for-target done', mark);
    // The delay before the promotion runs now: the target dies.
    await sb.kill(sb.node(2));
    const r = await cli;
    assert.equal(r.code, 1, cliOutput(r));
    // The reason and the rollback are reported. (Through the manager the CLI words an executed and
    // rolled-back switchover as "refused" and omits its steps: src/cli/switchover.ts treats every
    // HTTP status >= 400, including the 500 of a failed execution, as a refusal.)
    assert.match(r.stderr, new RegExp(`switchover (failed|refused): promote: 127\\.0\\.0\\.1:${sb.node(2).port}: .*rolled back: 127\\.0\\.0\\.1:${sb.node(1).port} is writable again and still the primary`));
    const failed = await manager.waitFor((e) => e.event === 'switchover_failed', 5000, 'switchover_failed', mark);
    t.diagnostic(`switchover failed as intended: ${String(failed['reason'])}; ${String(failed['state'])}`);
    assert.equal(manager.count((e) => e.event === 'switchover_succeeded'), 0);

    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '0');
    assert.equal(decidedPrimaryOf(sb), idOf(sb.node(1)));
    assert.equal(await slaveStatus(sb, sb.node(1)), undefined, 'node1 replicates from someone');
    assert.ok(await replicatingFrom(sb, sb.node(3), sb.node(1)), 'node3 no longer replicates from node1');
    // Writes through the writer endpoint work again, on node1.
    const id = 7_000_001;
    await viaWriterPort(sb, `INSERT INTO app.writes VALUES (${id}, @@server_id, ${Date.now()})`);
    assert.equal(await variable(sb, sb.node(1), `(SELECT server_id FROM app.writes WHERE id = ${id})`), '1');

    // node2 comes back as a replica of node1; the manager without the fault injection takes over.
    await sb.start(sb.node(2));
    await waitUntil(() => replicatingFrom(sb, sb.node(2), sb.node(1)), 10000, 'node2 replicating from node1 after restart');
    await manager.stop();
    manager = await startManager(sb);
    await waitCaughtUp(sb, sb.node(1), [sb.node(2), sb.node(3)]);
  });

  let failoverPrimary: SandboxNode;

  test('4a. (and 6.) kill -9 failover under writes; a replica then pointed at the dead old primary is re-pointed within seconds', async (t) => {
    const writer = await startWriter(sb, sb.node(1), 'app.w_failover', () => ({ host: '127.0.0.1', port: writerPort() }));
    await sleep(1000);
    assert.ok(writer.acked.length > 10, `writer made only ${writer.acked.length} writes before the crash`);
    const mark = manager!.events.length;
    await sb.kill(sb.node(1));
    const done = await manager!.waitFor((e) => e.event === 'failover_succeeded', 10000, 'failover', mark);
    await sleep(1000);
    await stopWriter(writer);
    assert.ok(writer.acked.some((a) => a.at > Date.parse(done.time)), 'no write acknowledged after the failover');
    failoverPrimary = nodeById(sb, done['newPrimary']);
    assert.notEqual(failoverPrimary, sb.node(1));
    await assertNoAckedWriteLost(sb, failoverPrimary, writer);
    const other = sb.nodes.find((n) => n !== failoverPrimary && n !== sb.node(1))!;
    await waitUntil(() => replicatingFrom(sb, other, failoverPrimary), 5000, `${other.name} replicating from the new primary`);

    // Someone points `other` at the dead former primary.
    const repointMark = manager!.events.length;
    const at = Date.now();
    await sb.sql(other, ['STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${sb.node(1).port}, MASTER_USE_GTID=slave_pos`, 'START SLAVE']);
    const e = await manager!.waitFor((x) => x.event === 'replica_repointed' && x['instance'] === idOf(other), 10000, 'replica_repointed', repointMark);
    t.diagnostic(`${other.name} re-pointed ${Date.parse(e.time) - at} ms after it was pointed at the dead ${sb.node(1).name}`);
    assert.equal(e['from'], idOf(sb.node(1)));
    assert.equal(e['to'], idOf(failoverPrimary));
    await waitUntil(() => replicatingFrom(sb, other, failoverPrimary), 5000, `${other.name} replicating from the primary again`);
    assert.ok(Date.parse(e.time) - at < 6000, 're-pointed too late');
  });

  test('4b. the restarted old primary is rejoined automatically as a read_only replica; checksums equal', async (t) => {
    const mark = manager!.events.length;
    await sb.start(sb.node(1));
    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '1');
    const e = await manager!.waitFor((x) => x.event === 'rejoin_succeeded', 15000, 'automatic rejoin', mark);
    assert.equal(e['instance'], idOf(sb.node(1)));
    assert.equal(e['action'], 'join');
    assert.equal(e['primary'], idOf(failoverPrimary));
    assert.equal(await variable(sb, sb.node(1), '@@read_only'), '1');
    await waitUntil(() => replicatingFrom(sb, sb.node(1), failoverPrimary), 5000, 'node1 replicating from the new primary');
    await waitCaughtUp(sb, failoverPrimary, sb.nodes.filter((n) => n !== failoverPrimary));
    await assertSameChecksum(t, sb, sb.nodes, 'app.w_failover');
    await assertSameChecksum(t, sb, sb.nodes, 'app.writes');
  });

  test('7. a replica stopped on a duplicate-key error is not restarted automatically; after the conflict is resolved, repair --retry restarts it', async (t) => {
    const replica = sb.nodes.find((n) => n !== failoverPrimary && n !== sb.node(1))!;
    const mark = manager!.events.length;
    const id = 8_000_001;
    await sb.sql(replica, ['SET SESSION sql_log_bin = 0', `INSERT INTO app.writes VALUES (${id}, 0, 0)`]);
    await sb.sql(failoverPrimary, [`INSERT INTO app.writes VALUES (${id}, @@server_id, ${Date.now()})`]);
    await waitUntil(async () => Number((await slaveStatus(sb, replica))?.['Last_SQL_Errno']) === 1062, 5000, 'duplicate-key error on the replica');
    const broken = await manager!.waitFor((e) => e.event === 'problem_started' && e['code'] === 'ReplicationBroken' && e['instance'] === idOf(replica), 5000, 'ReplicationBroken', mark);
    t.diagnostic(`problem: ${String(broken.msg)}`);

    // Well past repair.afterSeconds (1 s): still stopped with its error, nothing restarted it.
    await sleep(4000);
    const st = await slaveStatus(sb, replica);
    assert.equal(st?.['Slave_SQL_Running'], 'No');
    assert.equal(Number(st?.['Last_SQL_Errno']), 1062);
    assert.equal(manager!.events.slice(mark).filter((e) => e.event === 'replication_restarted' && e['instance'] === idOf(replica)).length, 0, 'replication restarted over an error');

    // Not replicating: not a switchover target either.
    const sw = await runCli(['switchover', '--config', sb.configFile, '--to', replica.name]);
    assert.equal(sw.code, 1, cliOutput(sw));
    assert.match(sw.stderr, /switchover refused: .*is not replicating \(IO yes, SQL no, error 1062\)/);
    assert.equal(await variable(sb, failoverPrimary, '@@read_only'), '0');

    // The DBA resolves the conflict, then asks for a retry.
    await sb.sql(replica, ['SET SESSION sql_log_bin = 0', `DELETE FROM app.writes WHERE id = ${id}`]);
    const r = await runCli(['repair', replica.name, '--retry', '--config', sb.configFile]);
    assert.equal(r.code, 0, cliOutput(r));
    assert.match(r.stdout, /replication running again/);
    assert.ok(await replicatingFrom(sb, replica, failoverPrimary), 'replication not running after repair --retry');
    await waitCaughtUp(sb, failoverPrimary, [replica]);
    assert.equal(await variable(sb, replica, `(SELECT server_id FROM app.writes WHERE id = ${id})`), String(failoverPrimary.serverId));
    await manager!.waitFor((e) => e.event === 'problem_resolved' && e['code'] === 'ReplicationBroken' && e['instance'] === idOf(replica), 5000, 'ReplicationBroken resolved', mark);
  });

  test('2c. a switchover to a target with an errant GTID is refused with the GTID, nothing changes', async () => {
    const target = sb.nodes.find((n) => n !== failoverPrimary && n !== sb.node(1))!;
    const mark = manager!.events.length;
    await sb.sql(target, ['SET SESSION gtid_domain_id = 9', 'CREATE TABLE app.errant9 (id INT PRIMARY KEY) ENGINE=InnoDB', 'INSERT INTO app.errant9 VALUES (1)']);
    const errantPos = await variable(sb, target, '@@gtid_binlog_pos');
    const errant = errantPos.split(',').find((g) => g.startsWith('9-'))!;
    assert.equal(errant, `9-${target.serverId}-2`);
    await manager!.waitFor((e) => e.event === 'problem_started' && e['code'] === 'ErrantGtid' && e['instance'] === idOf(target), 5000, 'ErrantGtid', mark);
    const r = await runCli(['switchover', '--config', sb.configFile, '--to', target.name]);
    assert.equal(r.code, 1, cliOutput(r));
    assert.match(r.stderr, new RegExp(`switchover refused: .*target ${idOf(target).replace(/\./g, '\\.')} has errant transactions ${errant}`));
    assert.equal(started(mark), 0);
    assert.equal(await variable(sb, failoverPrimary, '@@read_only'), '0');
    assert.equal(decidedPrimaryOf(sb), idOf(failoverPrimary));
    for (const n of sb.nodes.filter((x) => x !== failoverPrimary)) {
      assert.equal(await variable(sb, n, '@@read_only'), '1');
      assert.ok(await replicatingFrom(sb, n, failoverPrimary), `${n.name} no longer replicates from the primary`);
    }
  });
});

describe('rejoin with errant transactions (manual refuses, flashback rewinds); clone of a live dataset; switchover without a manager', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess | undefined;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({
      nodes: 3,
      clusterOverrides: { rejoin: { automatic: false, errant: 'manual' }, repair: { restartStoppedReplication: false }, switchover: { catchUpTimeoutSeconds: 1 } },
    }));
    await Writer.prepare(sb);
    manager = await startManager(sb);
  });
  after(async () => {
    await stopAllWriters();
    await manager?.stop();
    // `sandbox add` (run by the CLI) added nodes to sandbox.json: stop those too, by PID.
    if (sb) {
      const all = openSandbox(sb.dir).nodes;
      for (const n of all) if (!sb.nodes.some((x) => x.name === n.name)) sb.nodes.push(n);
    }
    await cleanup?.();
  });

  test('3b. SET read_only stuck behind a table lock times out: the rollback ends the pending statement, the primary stays writable', async (t) => {
    const n1 = sb.node(1);
    await sb.sql(n1, ['CREATE TABLE app.locked (id INT PRIMARY KEY) ENGINE=InnoDB']);
    const mark = manager!.events.length;
    const locker = await sb.root(n1);
    let r: CliResult;
    try {
      await locker.query('LOCK TABLES app.locked WRITE');
      const cli = runCli(['switchover', '--config', sb.configFile, '--to', 'node2']);
      // switchover.catchUpTimeoutSeconds is 1: the statement times out while the lock is held.
      await manager!.waitFor((e) => e.event === 'switchover_step_failed' && e['step'] === 'set-read-only', 20000, 'set-read-only timeout', mark);
      r = await cli;
      await sleep(200);
    } finally {
      await locker.query('UNLOCK TABLES').catch(() => undefined);
      await locker.close();
    }
    assert.equal(r.code, 1, cliOutput(r));
    assert.match(r.stderr, /set-read-only: .*query timeout.*rolled back: .* is writable again and still the primary/);
    t.diagnostic(r.stderr.trim());
    // Once the lock is gone, a statement still waiting on the server would make node1 read_only now.
    await sleep(500);
    assert.deepEqual(await rows(sb, n1, "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SET GLOBAL %read_only%'"), [], 'a SET read_only is still pending');
    assert.equal(await variable(sb, n1, '@@read_only'), '0', 'the rolled-back primary became read_only after all');
    assert.equal(decidedPrimaryOf(sb), idOf(n1));
    await viaWriterPort(sb, 'INSERT INTO app.locked VALUES (1)');
    assert.equal(await variable(sb, n1, '(SELECT COUNT(*) FROM app.locked)'), '1');
    assert.equal(manager!.events.slice(mark).filter((e) => e.event === 'switchover_succeeded').length, 0);
    for (const n of [sb.node(2), sb.node(3)]) assert.ok(await replicatingFrom(sb, n, n1), `${n.name} no longer replicates from node1`);
  });

  let newP: SandboxNode;
  let errantLast = '';
  let errantSeqs: number[] = [];

  test('5a. errant transactions on a crashed primary: with errant: manual the rejoin is refused with the exact GTIDs, the node stays read_only', async (t) => {
    const [n1, n2, n3] = [sb.node(1), sb.node(2), sb.node(3)];
    const values = Array.from({ length: 50 }, (_, i) => `(${i + 1}, @@server_id, ${Date.now()})`).join(',');
    await sb.sql(n1, [`INSERT INTO app.writes VALUES ${values}`]);
    await waitCaughtUp(sb, n1, [n2, n3]);
    const common = await variable(sb, n1, '@@gtid_binlog_pos');
    const commonSeq = Number(common.split('-')[2]);

    // Make node1 diverge: no semi-sync, replicas not receiving, then writes only node1 has.
    await sb.sql(n1, ['SET GLOBAL rpl_semi_sync_master_enabled = OFF']);
    for (const n of [n2, n3]) await sb.sql(n, ['STOP SLAVE IO_THREAD']);
    await sb.sql(n1, ['INSERT INTO app.writes VALUES (900001, @@server_id, 0), (900002, @@server_id, 0)']);
    await sb.sql(n1, ['UPDATE app.writes SET at = 42 WHERE id = 1']);
    await sb.sql(n1, ['DELETE FROM app.writes WHERE id = 2']);
    errantLast = await variable(sb, n1, '@@gtid_binlog_pos');
    errantSeqs = [commonSeq + 1, commonSeq + 2, commonSeq + 3];
    assert.equal(errantLast, `0-1-${commonSeq + 3}`);
    t.diagnostic(`common point ${common}, node1 diverged to ${errantLast}`);

    const mark = manager!.events.length;
    await sb.kill(n1);
    const done = await manager!.waitFor((e) => e.event === 'failover_succeeded', 10000, 'failover', mark);
    newP = nodeById(sb, done['newPrimary']);
    assert.notEqual(newP, n1);
    const other = newP === n2 ? n3 : n2;
    await waitUntil(() => replicatingFrom(sb, other, newP), 5000, 'the other replica follows the new primary');
    // The new primary moves on, past node1's sequence numbers (the errant ones are then only told
    // apart by their server id).
    await sb.sql(newP, ['INSERT INTO app.writes VALUES (1001, @@server_id, 1), (1002, @@server_id, 2)', 'UPDATE app.writes SET at = 7 WHERE id = 3']);
    for (let i = 0; i < 4; i++) await sb.sql(newP, [`INSERT INTO app.writes VALUES (${1003 + i}, @@server_id, 3)`]);
    assert.ok(Number((await variable(sb, newP, '@@gtid_binlog_pos')).split('-')[2]) > errantSeqs[2]!, 'the new primary is not past the errant sequence numbers');

    await sb.start(n1);
    assert.equal(await variable(sb, n1, '@@read_only'), '1');
    // Its errant transactions survived the crash (they were committed, not merely prepared).
    assert.equal(await variable(sb, n1, '@@gtid_binlog_pos'), errantLast);
    await sleep(1500);
    assert.equal(manager!.count((e) => e.event === 'rejoin_started' || e.event === 'rejoin_succeeded'), 0, 'rejoined although rejoin.automatic is false');

    const r = await runCli(['rejoin', 'node1', '--config', sb.configFile]);
    assert.equal(r.code, 1, cliOutput(r));
    assert.match(r.stderr, new RegExp(`rejoin of 127\\.0\\.0\\.1:${n1.port} refused: .*has errant transactions ${errantLast} \\(rejoin policy is manual`));
    const refused = await manager!.waitFor((e) => e.event === 'rejoin_refused', 5000, 'rejoin_refused', mark);
    assert.equal(refused['errant'], errantLast);
    assert.equal(await variable(sb, n1, '@@read_only'), '1');
    assert.equal(await slaveStatus(sb, n1), undefined, 'node1 was made a replica');
    assert.equal(await variable(sb, n1, '(SELECT COUNT(*) FROM app.writes WHERE id >= 900001)'), '2', 'errant rows touched');
  });

  test('5b. with errant: flashback, regent rejoin saves the errant events, rewinds them and rejoins; checksums equal', async (t) => {
    const n1 = sb.node(1);
    await manager!.stop();
    editCluster(sb, (c) => {
      c['rejoin'] = { automatic: false, errant: 'flashback' };
    });
    manager = await startManager(sb);
    const mark = manager.events.length;
    const r = await runCli(['rejoin', 'node1', '--config', sb.configFile]);
    assert.equal(r.code, 0, cliOutput(r));
    const m = new RegExp(`rejoined \\(rewind\\); errant transactions ${errantLast} were saved to (\\S+) and rewound`).exec(r.stdout);
    assert.ok(m, r.stdout);
    const saved = m[1]!;
    t.diagnostic(`errant events saved to ${saved}`);
    assert.ok(saved.startsWith(join(sb.dir, 'state')), `saved outside the state directory: ${saved}`);
    assert.ok(existsSync(saved), `${saved} does not exist`);
    const text = readFileSync(saved, 'utf8');
    for (const seq of errantSeqs) assert.match(text, new RegExp(`GTID 0-1-${seq}\\b`), `saved file lacks errant transaction 0-1-${seq}`);
    assert.doesNotMatch(text, new RegExp(`GTID 0-1-${errantSeqs[0]! - 1}\\b`), 'saved file holds a transaction before the common point');
    const e = await manager.waitFor((x) => x.event === 'rejoin_succeeded', 5000, 'rejoin_succeeded', mark);
    assert.equal(e['action'], 'rewind');
    assert.equal(e['savedTo'], saved);

    assert.equal(await variable(sb, n1, '@@read_only'), '1');
    await waitUntil(() => replicatingFrom(sb, n1, newP), 5000, 'node1 replicating from the new primary');
    await waitCaughtUp(sb, newP, sb.nodes.filter((n) => n !== newP));
    assert.equal(await variable(sb, n1, '(SELECT COUNT(*) FROM app.writes WHERE id >= 900001)'), '0', 'errant inserts still on node1');
    assert.equal(await variable(sb, n1, '(SELECT COUNT(*) FROM app.writes WHERE id IN (1001, 1002))'), '2', 'new primary writes missing on node1');
    await assertSameChecksum(t, sb, sb.nodes, 'app.writes');
  });

  test('8. clone of a 100k-row dataset while writes continue (regent sandbox add); clone onto a non-empty server refused', async (t) => {
    await sb.sql(newP, ['CREATE TABLE app.big (id INT PRIMARY KEY, k INT NOT NULL, pad VARCHAR(64) NOT NULL) ENGINE=InnoDB']);
    for (let b = 0; b < 20; b++) {
      const values = Array.from({ length: 5000 }, (_, i) => {
        const id = b * 5000 + i + 1;
        return `(${id}, ${(id * 7919) % 100003}, 'row-${id}-abcdefghijklmnopqrstuvwxyz')`;
      }).join(',');
      await sb.sql(newP, [`INSERT INTO app.big VALUES ${values}`]);
    }
    assert.equal(await variable(sb, newP, '(SELECT COUNT(*) FROM app.big)'), '100000');
    // As on any primary that has run for a while, its binlogs no longer hold the whole history: the
    // clone must start replicating exactly at its snapshot's position, not from the beginning.
    await waitCaughtUp(sb, newP, sb.nodes.filter((n) => n !== newP));
    await sb.sql(newP, ['FLUSH BINARY LOGS']);
    const current = String((await rows(sb, newP, 'SHOW MASTER STATUS'))[0]!['File']);
    await waitUntil(async () => {
      await sb.sql(newP, [`PURGE BINARY LOGS TO '${current}'`]);
      const logs = await rows(sb, newP, 'SHOW BINARY LOGS');
      return logs.length === 1 && logs[0]!['Log_name'] === current;
    }, 5000, 'old binlogs purged on the primary');

    const writer = await startWriter(sb, newP, 'app.w_clone', () => ({ host: '127.0.0.1', port: newP.port }));
    await sleep(500);
    const before = writer.acked.length;
    const t0 = Date.now();
    const add = await runCli(['sandbox', 'add', '--dir', sb.dir], { timeoutMs: 60000 });
    const addMs = Date.now() - t0;
    await sleep(500);
    await stopWriter(writer);
    assert.equal(add.code, 0, cliOutput(add));
    assert.match(add.stdout, /added node4 on 127\.0\.0\.1:\d+/);
    assert.ok(writer.acked.length > before + 20, `writes did not continue during the clone (${writer.acked.length - before})`);
    assert.ok(writer.acked.some((a) => a.at > t0 && a.at < t0 + addMs), 'no write acknowledged while the clone ran');

    for (const n of openSandbox(sb.dir).nodes) if (!sb.nodes.some((x) => x.name === n.name)) sb.nodes.push(n);
    const n4 = sb.node(4);
    t.diagnostic(`sandbox add (clone of 100k rows) took ${addMs} ms with ${writer.acked.length - before} writes acknowledged meanwhile`);
    assert.equal(await variable(sb, n4, '@@read_only'), '1');
    assert.ok(await replicatingFrom(sb, n4, newP), 'node4 does not replicate from the primary');
    await waitCaughtUp(sb, newP, sb.nodes.filter((n) => n !== newP));
    await assertSameChecksum(t, sb, sb.nodes, 'app.big');
    await assertSameChecksum(t, sb, sb.nodes, 'app.w_clone');
    await assertSameChecksum(t, sb, sb.nodes, 'app.writes');
    await assertNoAckedWriteLost(sb, n4, writer);

    // A server with data is never overwritten by a clone.
    const replica = sb.nodes.find((n) => n !== newP && n !== n4)!;
    const before1 = await variable(sb, replica, '(SELECT COUNT(*) FROM app.big)');
    const r = await runCli(['clone', '--config', sb.configFile, '--from', n4.name, '--to', replica.name]);
    assert.equal(r.code, 2, cliOutput(r));
    assert.match(r.stderr, new RegExp(`target 127\\.0\\.0\\.1:${replica.port} is not empty \\(databases: app\\)`));
    assert.equal(await variable(sb, replica, '(SELECT COUNT(*) FROM app.big)'), before1);
    assert.ok(await replicatingFrom(sb, replica, newP), 'the refused clone disturbed the target');
  });

  let soloPrimary: SandboxNode | undefined;

  test('9. without a running manager, regent switchover acts alone (target given by name)', async (t) => {
    await manager!.stop();
    manager = undefined;
    const target = sb.nodes.find((n) => n !== newP && n.name !== 'node4')!;
    soloPrimary = target;
    const r = await runCli(['switchover', '--config', sb.configFile, '--to', target.name]);
    assert.equal(r.code, 0, cliOutput(r));
    t.diagnostic(r.stdout.trim().split('\n').pop()!);
    assert.match(r.stdout, new RegExp(`switchover done in \\d+ ms: ${idOf(newP).replace(/\./g, '\\.')} -> ${idOf(target).replace(/\./g, '\\.')}`));
    assert.equal(await variable(sb, target, '@@read_only'), '0');
    assert.equal(decidedPrimaryOf(sb), idOf(target));
    for (const n of sb.nodes.filter((x) => x !== target)) {
      assert.equal(await variable(sb, n, '@@read_only'), '1');
      await waitUntil(() => replicatingFrom(sb, n, target), 5000, `${n.name} replicating from ${target.name}`);
    }
  });

  test('10. a promotion that fails half-way (replication reset, not yet writable) is undone: the target replicates from the old primary again, which stays the one writer', async (t) => {
    const primary = soloPrimary!;
    const target = sb.nodes.find((n) => n !== primary && n.name !== 'node4')!;
    const r = await runCli(['switchover', '--config', sb.configFile, '--to', target.name], { env: { REGENT_TEST_FAILPOINT: 'promote:before-writable' } });
    assert.equal(r.code, 1, cliOutput(r));
    t.diagnostic(r.stderr.trim());
    assert.match(r.stderr, new RegExp(`promote: failpoint promote:before-writable.*rolled back: ${idOf(primary).replace(/\./g, '\\.')} is writable again.*${idOf(target).replace(/\./g, '\\.')} read_only and replicating from ${idOf(primary).replace(/\./g, '\\.')} again`));
    assert.equal(await variable(sb, primary, '@@read_only'), '0');
    assert.equal(await variable(sb, target, '@@read_only'), '1');
    assert.equal(decidedPrimaryOf(sb), idOf(primary));
    await waitUntil(() => replicatingFrom(sb, target, primary), 5000, `${target.name} replicating from ${primary.name} again`);
    // And it really follows: a write on the primary arrives.
    await sb.sql(primary, ['CREATE TABLE app.after_undo (id INT PRIMARY KEY) ENGINE=InnoDB', 'INSERT INTO app.after_undo VALUES (1)']);
    await waitUntil(async () => (await variable(sb, target, "(SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='app' AND table_name='after_undo')")) === '1', 5000, 'the write replicated to the target');
  });
});
