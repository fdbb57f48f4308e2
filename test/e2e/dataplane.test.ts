// regent-test: alone (measures pauses in milliseconds: runs after the other files, one at a time)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { dataPlanePaths } from '../../src/router/dataplane.ts';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { isAlive, readPidFile } from '../../src/util/processes.ts';
import { LocalCoordinator } from '../../src/coordination/local.ts';
import { runCli, startSandbox } from '../helpers/env.ts';
import { ManagerProcess, Writer, type LogEvent } from '../helpers/manager.ts';

/**
 * The data plane outlives the manager: a kill -9 or a restart of `regent run` costs applications
 * nothing on the L4 writer endpoint or the SQL endpoint (no error, no pause worth the name), the
 * restarted manager adopts the running data plane, and a data plane without a manager learns a
 * decision made meanwhile from the shared state before it routes a write again.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads in a loop through an endpoint, one connection; counts failures. */
class Reader {
  count = 0;
  readonly failures: string[] = [];
  #running = true;
  readonly done: Promise<void>;
  constructor(port: number, sb: Sandbox) {
    this.done = (async () => {
      const app = sb.appAccount();
      let conn: mysql.Connection | undefined;
      while (this.#running) {
        try {
          conn ??= await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database, connectTimeout: 5000 });
          await conn.query('SELECT COUNT(*) AS n FROM app.writes');
          this.count++;
        } catch (e) {
          this.failures.push((e as Error).message);
          conn?.destroy();
          conn = undefined;
          await sleep(20);
        }
      }
      await conn?.end().catch(() => undefined);
    })();
  }
  async stop(): Promise<void> {
    this.#running = false;
    await this.done;
  }
}

/** The longest time between two acknowledged writes within [from, to] (ms). */
function longestGap(acked: { at: number }[], from: number, to: number): number {
  const at = acked.map((a) => a.at).filter((t) => t >= from - 500 && t <= to + 500);
  let gap = 0;
  for (let i = 1; i < at.length; i++) gap = Math.max(gap, at[i]! - at[i - 1]!);
  return gap;
}

describe('the data plane outlives the manager', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  let l4: Writer;
  let sqlWriter: Writer;
  let l4Reader: Reader;
  let sqlReader: Reader;
  let dpPid: number;

  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    await Writer.prepare(sb);
    await Writer.prepare(sb, 'app.writes_sql');
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await manager.waitFor((e) => e.event === 'router_writer_changed', 5000, 'writer routing');
    dpPid = readPidFile(dataPlanePaths(sb.config()).pidFile)!;
    const base = sb.node(1).port;
    l4 = new Writer(sb, () => ({ host: '127.0.0.1', port: base + PORT.writer }));
    sqlWriter = new Writer(sb, () => ({ host: '127.0.0.1', port: base + PORT.sql }), 'app.writes_sql');
    l4Reader = new Reader(base + PORT.reader, sb);
    sqlReader = new Reader(base + PORT.sql, sb);
    await sleep(1500);
  });
  after(async () => {
    await Promise.all([l4?.stop(), sqlWriter?.stop(), l4Reader?.stop(), sqlReader?.stop()]);
    await manager?.stop();
    await cleanup?.();
  });

  const clean = () => {
    for (const [name, failures] of [
      ['L4 writer', l4.failures.map((f) => f.error)],
      ['SQL writer', sqlWriter.failures.map((f) => f.error)],
      ['L4 reader', l4Reader.failures],
      ['SQL reader', sqlReader.failures],
    ] as const)
      assert.deepEqual(failures, [], `${name} saw errors`);
  };

  for (const how of ['kill -9', 'SIGTERM'] as const) {
    test(`${how} of the manager, then regent run again: no client error, no write pause over 100 ms, the data plane adopted`, async (t) => {
      const before = { l4: l4.acked.length, sql: sqlWriter.acked.length, l4r: l4Reader.count, sqlr: sqlReader.count };
      const t0 = Date.now();
      if (how === 'kill -9') await manager.kill9();
      else await manager.stop();
      assert.ok(isAlive(dpPid), 'the data plane ended with the manager');
      await sleep(2000);
      manager = new ManagerProcess(sb.configFile);
      const adopted = await manager.waitFor((e) => e.event === 'dataplane_adopted', 15000, 'adoption of the running data plane');
      assert.equal(adopted['pid'], dpPid);
      await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
      await sleep(1500);
      const t1 = Date.now();
      clean();
      const gaps = { l4: longestGap(l4.acked, t0, t1), sql: longestGap(sqlWriter.acked, t0, t1) };
      t.diagnostic(
        `${how}: ${l4.acked.length - before.l4} L4 and ${sqlWriter.acked.length - before.sql} SQL-endpoint writes, ${l4Reader.count - before.l4r} L4 and ${sqlReader.count - before.sqlr} SQL reads meanwhile; longest write gap L4 ${gaps.l4} ms, SQL ${gaps.sql} ms`,
      );
      assert.ok(l4.acked.length > before.l4 + 100 && sqlWriter.acked.length > before.sql + 100, 'writes did not go on');
      assert.ok(gaps.l4 <= 100, `L4 writes paused ${gaps.l4} ms`);
      assert.ok(gaps.sql <= 100, `SQL-endpoint writes paused ${gaps.sql} ms`);
      assert.equal(readPidFile(dataPlanePaths(sb.config()).pidFile), dpPid, 'a new data plane replaced the running one');
    });
  }

  test('without a manager, a failover made meanwhile reaches the data plane through the shared state before the next write', async () => {
    await manager.kill9();
    await sleep(500);
    // A person fails over with no manager running: the command writes the decision to the state
    // directory, the data plane reads it from there.
    const r = await runCli(['failover', '--force', '--config', sb.configFile], { timeoutMs: 60000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const fenceAt = Date.now();
    const newId = /-> (127\.0\.0\.1:\d+)/.exec(r.stdout)?.[1];
    const newPrimary = sb.nodes.find((n) => `127.0.0.1:${n.port}` === newId)!;
    assert.ok(newPrimary && newPrimary !== sb.node(1), r.stdout);
    await sleep(1500);
    await l4.stop();
    await sqlWriter.stop();
    // Every write acknowledged after the new decision could be read (with margin for the
    // data plane's poll) ran on the new primary: the fenced old one took none.
    for (const [table, writer] of [['app.writes', l4], ['app.writes_sql', sqlWriter]] as const) {
      const [rows] = (await sb.sql(newPrimary, [`SELECT id, server_id, at FROM ${table} WHERE at > ${fenceAt + 300}`])) as [{ id: number; server_id: number }[]];
      assert.ok(rows.length > 0, `no write through ${table === 'app.writes' ? 'the L4 writer' : 'the SQL endpoint'} reached the new primary`);
      assert.deepEqual([...new Set(rows.map((x) => Number(x.server_id)))], [newPrimary.serverId]);
      assert.ok(writer.acked.some((a) => a.at > fenceAt + 300));
    }
  });
});

describe('regent dataplane upgrade: a new process takes the endpoints, no session dropped', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  const clients: { stop(): Promise<void> }[] = [];

  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    await Writer.prepare(sb);
    await Writer.prepare(sb, 'app.writes_sql');
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await manager.waitFor((e) => e.event === 'router_writer_changed', 5000, 'writer routing');
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await manager?.stop();
    await cleanup?.();
  });

  test('open sessions stay with the old process (and get every decision), new ones go to the new one; the old one exits when they end', async (t) => {
    const paths = dataPlanePaths(sb.config());
    const oldPid = readPidFile(paths.pidFile)!;
    const base = sb.node(1).port;
    const l4 = new Writer(sb, () => ({ host: '127.0.0.1', port: base + PORT.writer }));
    const sql = new Writer(sb, () => ({ host: '127.0.0.1', port: base + PORT.sql }), 'app.writes_sql');
    const l4r = new Reader(base + PORT.reader, sb);
    const sqlr = new Reader(base + PORT.sql, sb);
    clients.push(l4, sql, l4r, sqlr);
    await sleep(1000);
    const before = { l4: l4.acked.length, sql: sql.acked.length, l4r: l4r.count, sqlr: sqlr.count };
    const since = manager.events.length;
    const t0 = Date.now();
    const r = await runCli(['dataplane', 'upgrade', '--config', sb.configFile], { timeoutMs: 90000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const newPid = Number(/replaced by (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(newPid > 0 && newPid !== oldPid, r.stdout);
    assert.equal(readPidFile(paths.pidFile), newPid, 'the new process owns the PID file');
    assert.ok(isAlive(oldPid), 'the old process keeps its open sessions');
    await manager.waitFor((e) => e.event === 'dataplane_manager_attached' && e['pid'] === newPid, 15000, 'the manager attached to the new data plane', since);
    await manager.waitFor((e) => e.event === 'dataplane_peer_attached' && e['peer'] === oldPid && e['pid'] === newPid, 15000, 'the old data plane following the new one', since);
    await sleep(1000);
    const t1 = Date.now();
    for (const [what, failures] of [['L4 writer', l4.failures], ['SQL writer', sql.failures], ['L4 reader', l4r.failures], ['SQL reader', sqlr.failures]] as const) assert.deepEqual(failures, [], `${what} saw errors`);
    t.diagnostic(`upgrade: ${l4.acked.length - before.l4} L4 and ${sql.acked.length - before.sql} SQL writes, ${l4r.count - before.l4r} and ${sqlr.count - before.sqlr} reads meanwhile; longest write gap L4 ${longestGap(l4.acked, t0, t1)} ms, SQL ${longestGap(sql.acked, t0, t1)} ms`);
    assert.ok(l4.acked.length > before.l4 + 50 && sql.acked.length > before.sql + 50, 'writes did not go on');

    // A new connection is served (only the new process accepts now).
    const app = sb.appAccount();
    const fresh = await mysql.createConnection({ host: '127.0.0.1', port: base + PORT.writer, user: app.user, password: app.password, database: app.database });
    await fresh.query('SELECT 1');
    await fresh.end();

    // A switchover: the old process, holding sessions to the old primary, follows it too, and no
    // write after the switchover executes on the old primary.
    const sw = await runCli(['switchover', '--config', sb.configFile], { timeoutMs: 60000 });
    assert.equal(sw.code, 0, sw.stdout + sw.stderr);
    const doneAt = Date.now();
    const newPrimary = /-> (127\.0\.0\.1:\d+)/.exec(sw.stdout)?.[1];
    assert.ok(newPrimary, sw.stdout);
    await manager.waitFor((e) => e.event === 'router_writer_changed' && e['pid'] === oldPid && (e['writer'] as { target?: string })?.target === newPrimary, 10000, 'the switchover applied in the old data plane too', since);
    await sleep(1500);
    await Promise.all([l4.stop(), sql.stop(), l4r.stop(), sqlr.stop()]);
    const oldPrimary = sb.node(1);
    for (const table of ['app.writes', 'app.writes_sql']) {
      const [rows] = (await sb.sql(oldPrimary, [`SELECT COUNT(*) AS n FROM ${table} WHERE at > ${doneAt}`])) as [{ n: number }[]];
      // The old primary replicates from the new one now: a row there came through replication,
      // so compare with the server that executed it.
      const [mine] = (await sb.sql(oldPrimary, [`SELECT COUNT(*) AS n FROM ${table} WHERE at > ${doneAt} AND server_id = ${oldPrimary.serverId}`])) as [{ n: number }[]];
      assert.equal(Number(mine[0]!.n), 0, `${table}: ${mine[0]!.n} of ${rows[0]!.n} writes after the switchover executed on the old primary`);
    }
    // Its sessions ended: the old process exits by itself.
    await manager.waitFor((e) => e.event === 'dataplane_drained' && e['pid'] === oldPid, 15000, 'the old data plane drained');
    const deadline = Date.now() + 5000;
    while (isAlive(oldPid) && Date.now() < deadline) await sleep(50);
    assert.ok(!isAlive(oldPid), 'the old data plane did not exit');
    assert.ok(isAlive(newPid));
  });
});

/**
 * A data plane that learns a fence from the shared state closes what it has open to the fenced
 * instance, also after a hold in between. Here the data plane of `regent proxy` (observe and route
 * only, as a follower manager's data plane does): it sees the frozen primary unreachable and holds,
 * then learns that another manager failed over. Otherwise a write waiting in the frozen primary is
 * acknowledged when the server wakes up (found by the multi-manager chaos run).
 */
describe('a fence learned from the shared state closes the connections to the fenced instance', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let proxy: ManagerProcess | undefined;
  before(async () => ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 })));
  after(async () => {
    await proxy?.stop();
    await cleanup?.();
  });

  test('a write sent to the frozen old primary is never acknowledged', async () => {
    const old = sb.node(1);
    const oldId = `127.0.0.1:${old.port}`;
    await sb.sql(old, ['CREATE TABLE app.frozen (id INT PRIMARY KEY)']);
    // The decision a manager made earlier, in the shared state the proxy follows.
    const config = sb.config();
    const state = new LocalCoordinator(config.stateDir);
    await state.updateClusterState(sb.manifest.cluster, (s) => ({ ...s, decidedPrimary: oldId, decidedAt: Date.now() }));
    proxy = new ManagerProcess(sb.configFile, { command: 'proxy' });
    const writer = (e: LogEvent) => e.event === 'router_writer_changed' && e['source'] === 'dataplane';
    await proxy.waitFor((e) => writer(e) && (e['writer'] as { target?: string }).target === oldId, 15000, 'writer routing');
    const app = sb.appAccount();
    const client = await mysql.createConnection({ host: '127.0.0.1', port: old.port + PORT.writer, user: app.user, password: app.password, database: app.database });
    const [[who]] = (await client.query('SELECT @@server_id AS s')) as unknown as [[{ s: number }]];
    assert.equal(Number(who.s), old.serverId);

    const since = proxy.events.length;
    sb.pause(old);
    const outcome = client.query('INSERT INTO frozen VALUES (1)').then(
      () => 'acknowledged',
      (e: Error) => `error: ${e.message}`,
    );
    await proxy.waitFor((e) => writer(e) && /unreachable/.test(String((e['writer'] as { reason?: string }).reason)), 15000, 'the writer held: primary unreachable', since);
    // Another manager failed over meanwhile: the shared state names node2 and fences node1.
    await state.updateClusterState(sb.manifest.cluster, (s) => ({ ...s, decidedPrimary: `127.0.0.1:${sb.node(2).port}`, decidedAt: Date.now(), fenced: [oldId] }));
    await proxy.waitFor((e) => e.event === 'dataplane_decision' && e['decidedPrimary'] === `127.0.0.1:${sb.node(2).port}`, 15000, 'the new decision followed', since);
    await sleep(500);
    // The old primary wakes up with the write in its socket: its replicas still follow it, so
    // it would commit and answer at once if the connection were still open.
    sb.resume(old);
    assert.match(await outcome, /^error: /);
    client.destroy();
  });
});
