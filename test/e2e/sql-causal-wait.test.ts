import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { Registry } from 'prom-client';
import { loadConfigFile, type ClusterConfig } from '../../src/config/load.ts';
import { SqlEndpoint, type SqlRouting } from '../../src/router/sql/endpoint.ts';
import { createSqlMetrics } from '../../src/router/sql/metrics.ts';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { createLogger } from '../../src/util/log.ts';
import { freePorts, startSandbox } from '../helpers/env.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A read-your-writes wait on a replica that goes away (the replica leaves the reader pool, or its
 * connection breaks) while the wait runs: the read itself was never sent there, so it goes to the
 * primary instead of failing. Found by the chaos suite's SQL mode (`--endpoint sql`, seed 1515):
 * 15 read-backs failed with "connection to <replica> lost: quit" or "read ECONNRESET" when a
 * replica was stopped or killed while a writer session waited on it for its own write; and 3
 * read-backs failed with "Connection lost: The server closed the connection" in switchovers: the
 * session was closed as busy on the primary being replaced, because its previous statement (the
 * write) ran there, while it only waited on a replica.
 *
 * The endpoint runs in this process with a routing table the test sets, on a 2-node sandbox.
 */
/** Until a read waits on `node` for a session's write (MASTER_GTID_WAIT in its processlist). */
async function readWaitingOn(node: Sandbox['nodes'][number]): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const rows = (await sb.sql(node, ["SELECT COUNT(*) AS n FROM information_schema.processlist WHERE info LIKE 'SELECT MASTER_GTID_WAIT%'"]))[0]!;
    if (Number(rows[0]!['n']) > 0) return;
    await sleep(50);
  }
  assert.fail('the read never waited on the replica');
}

let sb: Sandbox;
let cleanup: () => Promise<void>;
let cl: ClusterConfig;
let ep: SqlEndpoint | undefined;
let port: number;

before(async () => {
  ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 2 }));
  cl = loadConfigFile(sb.configFile).clusters[0]!;
  port = await freePorts(1);
});

after(async () => {
  await ep?.stop();
  await cleanup?.();
});

test('a causal wait on a replica that leaves the pool mid-wait: the read goes to the primary, no client error', { timeout: 120000 }, async () => {
  const [primary, replica] = cl.instances.map((i) => i.id) as [string, string];
  const [p, r] = [sb.node(1), sb.node(2)];
  await sb.sql(p, ['CREATE TABLE app.cw (id INT PRIMARY KEY) ENGINE=InnoDB']);
  for (let i = 0; i < 100 && ((await sb.sql(r, ["SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'app' AND table_name = 'cw'"]))[0]![0]!['n'] as number) == 0; i++) await sleep(100);
  // The replica receives but does not apply: a session's own write is not there yet, so a read waits.
  await sb.sql(r, ['STOP SLAVE SQL_THREAD']);

  const routing = (readers: string[]): SqlRouting => ({
    table: { writer: { mode: 'route', target: primary }, readers, excluded: readers.length ? {} : { [replica]: 'stopped' } },
    // Nothing known applied, lag 0: a read after a write waits on the replica (MASTER_GTID_WAIT).
    applied: new Map(),
    lag: new Map([[replica, 0]]),
    flavor: 'mariadb',
  });
  ep = new SqlEndpoint({
    cluster: cl.name,
    listen: { host: '127.0.0.1', port },
    settings: { ...cl.sql!.settings, causalReads: 'session', causalWaitTimeoutMs: 30000, holdTimeoutMs: 5000 },
    serviceAccount: cl.accounts.router,
    passwords: cl.sql!.passwords,
    address: (id) => {
      const i = cl.instances.find((x) => x.id === id);
      return i && { host: i.host, port: i.port };
    },
    instances: cl.instances.map((i) => i.id),
    metrics: createSqlMetrics(new Registry()),
    log: createLogger('silent'),
  });
  ep.update(routing([replica]));
  await ep.start();

  const app = sb.appAccount();
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database });
  try {
    await c.query('INSERT INTO cw VALUES (1)');
    const read = c.query('SELECT COUNT(*) AS n, @@server_id AS s FROM cw').then(
      ([rows]) => ({ ok: true as const, row: (rows as { n: number; s: number }[])[0]! }),
      (e: Error) => ({ ok: false as const, error: e.message }),
    );
    // The read is waiting on the replica for the session's write.
    await readWaitingOn(r);
    // The replica leaves the pool (as when it stops answering probes): the endpoint drops its connection.
    ep.update(routing([]));
    const got = await read;
    assert.ok(got.ok, `the client got an error for a read that was never sent to the replica: ${got.ok ? '' : got.error}`);
    assert.equal(Number(got.row.n), 1, 'the read saw the session write');
    assert.equal(Number(got.row.s), p.serverId, 'answered by the primary');
    // The session goes on.
    const [[again]] = (await c.query('SELECT COUNT(*) AS n FROM cw')) as unknown as [[{ n: number }]];
    assert.equal(Number(again.n), 1);
  } finally {
    c.destroy();
    await sb.sql(r, ['START SLAVE SQL_THREAD']).catch(() => undefined);
  }
});

test('a causal wait on a replica while a switchover starts: the read is answered, the session is not closed', { timeout: 120000 }, async () => {
  const [primary, replica] = cl.instances.map((i) => i.id) as [string, string];
  const r = sb.node(2);
  await sb.sql(r, ['STOP SLAVE SQL_THREAD']);
  ep!.update({ table: { writer: { mode: 'route', target: primary }, readers: [replica], excluded: {} }, applied: new Map(), lag: new Map([[replica, 0]]), flavor: 'mariadb' });
  const app = sb.appAccount();
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database });
  try {
    await c.query('INSERT INTO cw VALUES (2)');
    const read = c.query('SELECT COUNT(*) AS n FROM cw').then(
      ([rows]) => ({ ok: true as const, n: Number((rows as { n: number }[])[0]!.n) }),
      (e: Error) => ({ ok: false as const, error: e.message }),
    );
    await readWaitingOn(r);
    // A switchover starts: writes held, the primary being replaced. The session runs nothing on it.
    ep!.update({ table: { writer: { mode: 'hold', reason: 'switchover under way' }, readers: [replica], excluded: {} }, applied: new Map(), lag: new Map([[replica, 0]]), flavor: 'mariadb', changing: true });
    await sleep(200);
    await sb.sql(r, ['START SLAVE SQL_THREAD']);
    const got = await read;
    assert.ok(got.ok, `the read failed: ${got.ok ? '' : got.error}`);
    assert.equal(got.n, 2);
  } finally {
    c.destroy();
    await sb.sql(r, ['START SLAVE SQL_THREAD']).catch(() => undefined);
  }
});

test('while writes are held (the primary unreachable), a session logs in through a replica, reads there, and its write waits for a primary', { timeout: 120000 }, async () => {
  const [primary, replica] = cl.instances.map((i) => i.id) as [string, string];
  const [p, r] = [sb.node(1), sb.node(2)];
  const held: SqlRouting = { table: { writer: { mode: 'hold', reason: `primary ${primary} unreachable` }, readers: [replica], excluded: {} }, applied: new Map(), lag: new Map([[replica, 0]]), flavor: 'mariadb' };
  ep!.update(held);
  const app = sb.appAccount();
  const t0 = Date.now();
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database });
  try {
    // Well under router.holdTimeoutMs (5 s here): the login did not wait for a primary.
    assert.ok(Date.now() - t0 < 2000, `login took ${Date.now() - t0} ms`);
    const [[row]] = (await c.query('SELECT @@server_id AS s')) as unknown as [[{ s: number }]];
    assert.equal(Number(row.s), r.serverId, 'read from the replica');
    // A wrong password is still refused while the primary is away.
    await assert.rejects(mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: 'wrong', database: app.database }), (e: { errno?: number }) => e.errno === 1045);
    // A write waits for a writer, then runs on the primary once there is one.
    const write = c.query('INSERT INTO cw VALUES (3)');
    await sleep(300);
    ep!.update({ ...held, table: { ...held.table, writer: { mode: 'route', target: primary } } });
    await write;
    const [[at]] = (await sb.sql(p, ['SELECT COUNT(*) AS n FROM app.cw WHERE id = 3'])) as [[{ n: number }]];
    assert.equal(Number(at.n), 1, 'the write ran on the primary');
  } finally {
    c.destroy();
  }
});

test('a frozen primary nobody has judged yet (hang tolerance running): a login completes on a replica and reads go on', { timeout: 120000 }, async () => {
  const [primary, replica] = cl.instances.map((i) => i.id) as [string, string];
  const [p, r] = [sb.node(1), sb.node(2)];
  // Still routed to: no manager has decided anything about the stall yet.
  ep!.update({ table: { writer: { mode: 'route', target: primary }, readers: [replica], excluded: {} }, applied: new Map(), lag: new Map([[replica, 0]]), flavor: 'mariadb' });
  const pid = sb.pid(p)!;
  const app = sb.appAccount();
  process.kill(pid, 'SIGSTOP');
  try {
    const t0 = Date.now();
    // Without asking a replica too, this login failed: "no login to <primary> within 2000 ms".
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database, connectTimeout: 20000 });
    try {
      const loginMs = Date.now() - t0;
      const [[row]] = (await c.query('SELECT @@server_id AS s')) as unknown as [[{ s: number }]];
      assert.equal(Number(row.s), r.serverId, 'read from the replica');
      process.stderr.write(`login with the primary frozen: ${loginMs} ms\n`);
      // Not after the primary's connection attempt timed out: a replica was asked while it ran.
      assert.ok(loginMs < cl.sql!.settings.connectTimeoutMs, `login took ${loginMs} ms, the backend connect timeout is ${cl.sql!.settings.connectTimeoutMs} ms`);
    } finally {
      c.destroy();
    }
    // The account is still checked (by the replica).
    await assert.rejects(mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: 'wrong', database: app.database }), (e: { errno?: number }) => e.errno === 1045);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
});
