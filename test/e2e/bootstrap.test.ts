import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { runCli, startSandbox, type CliResult } from '../helpers/env.ts';

/**
 * `regent bootstrap` on real servers that run but do not replicate yet (sandboxes created with
 * noReplication): what it sets up, that a second run changes nothing, creating the replication
 * account, and the refusals, each of which must leave every server exactly as it was.
 */

type Row = Record<string, unknown>;

const bootstrap = (sb: Sandbox): Promise<CliResult> => runCli(['bootstrap', '--config', sb.configFile], { timeoutMs: 60000 });
const id = (sb: Sandbox, n: number): string => `127.0.0.1:${sb.node(n).port}`;
const out = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

async function rows(sb: Sandbox, n: number, sql: string): Promise<Row[]> {
  const [r] = await sb.sql(sb.node(n), [sql]);
  return r ?? [];
}

async function one(sb: Sandbox, n: number, sql: string): Promise<Row> {
  const r = await rows(sb, n, sql);
  assert.ok(r[0], `no row from ${sql} on node${n}`);
  return r[0];
}

async function replicaStatus(sb: Sandbox, n: number): Promise<Row | undefined> {
  return (await rows(sb, n, 'SHOW SLAVE STATUS'))[0];
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Everything bootstrap could change on a node, read as root over the socket. */
async function nodeState(sb: Sandbox, n: number): Promise<Row> {
  const vars = await one(
    sb,
    n,
    'SELECT @@server_id AS server_id, @@read_only AS read_only, @@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_slave_pos AS gtid_slave_pos, ' +
      '@@rpl_semi_sync_master_enabled AS semi_master, @@rpl_semi_sync_slave_enabled AS semi_slave, @@rpl_semi_sync_master_timeout AS semi_timeout',
  );
  const users = await rows(sb, n, "SELECT CONCAT(User, '@', Host) AS u FROM mysql.user ORDER BY 1");
  const slaves = await rows(sb, n, 'SHOW ALL SLAVES STATUS');
  return { ...vars, users: users.map((u) => String(u['u'])).join(','), replicaConnections: slaves.length };
}

async function clusterState(sb: Sandbox): Promise<Row[]> {
  return Promise.all(sb.nodes.map((_, i) => nodeState(sb, i + 1)));
}

/** A refusal: exit code 2, the expected reason on stderr, and no server touched. */
async function assertRefusedUnchanged(sb: Sandbox, before: Row[], reason: RegExp): Promise<CliResult> {
  const r = await bootstrap(sb);
  assert.equal(r.code, 2, out(r));
  assert.match(r.stderr, /bootstrap refused, nothing was changed/, out(r));
  assert.match(r.stderr, reason, out(r));
  assert.doesNotMatch(r.stderr, /unexpected error/, out(r));
  const afterState = await clusterState(sb);
  assert.deepEqual(afterState, before, 'a refused bootstrap changed a server');
  for (let n = 1; n <= sb.nodes.length; n++) assert.equal(await replicaStatus(sb, n), undefined, `node${n} got a replica configuration`);
  return r;
}

/** Replication from node1 works end to end: a row written on node1 arrives on every replica. */
async function assertReplicates(sb: Sandbox, table: string): Promise<void> {
  await sb.sql(sb.node(1), [`CREATE TABLE app.${table} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB`, `INSERT INTO app.${table} VALUES (1, 'from-node1')`]);
  const pos = String((await one(sb, 1, 'SELECT @@gtid_binlog_pos AS p'))['p']);
  for (const n of [2, 3]) {
    const w = await one(sb, n, `SELECT MASTER_GTID_WAIT('${pos}', 10) AS w`);
    assert.equal(Number(w['w']), 0, `node${n} did not reach ${pos}`);
    const got = await rows(sb, n, `SELECT id, v FROM app.${table}`);
    assert.deepEqual(got, [{ id: 1, v: 'from-node1' }], `node${n}`);
  }
}

async function assertReplicaOf(sb: Sandbox, n: number, primary: number): Promise<void> {
  const s = await replicaStatus(sb, n);
  assert.ok(s, `node${n} has no replica configuration`);
  assert.equal(s['Slave_IO_Running'], 'Yes', `node${n} IO thread: ${String(s['Last_IO_Error'])}`);
  assert.equal(s['Slave_SQL_Running'], 'Yes', `node${n} SQL thread: ${String(s['Last_SQL_Error'])}`);
  assert.equal(s['Master_Host'], '127.0.0.1');
  assert.equal(Number(s['Master_Port']), sb.node(primary).port);
  assert.equal(s['Using_Gtid'], 'Slave_Pos');
}

describe('bootstrap of fresh servers', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  before(async () => ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, noReplication: true })));
  after(async () => cleanup?.());

  test('sets up GTID replication from the configured primary, read_only and semi-sync', async () => {
    for (let n = 1; n <= 3; n++) assert.equal(await replicaStatus(sb, n), undefined, 'the sandbox should start without replication');

    const r = await bootstrap(sb);
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, /cluster sandbox: bootstrapped/, out(r));
    for (const n of [2, 3]) assert.match(r.stdout, new RegExp(`${id(sb, n)}: .*replicate from ${id(sb, 1)} by GTID`), out(r));
    assert.match(r.stdout, new RegExp(`${id(sb, 1)}: .*semi-sync primary.*read_only=OFF`), out(r));

    for (const n of [2, 3]) await assertReplicaOf(sb, n, 1);
    assert.equal(await replicaStatus(sb, 1), undefined, 'the primary must not replicate');

    assert.equal(Number((await one(sb, 1, 'SELECT @@read_only AS ro'))['ro']), 0, 'primary must be writable');
    for (const n of [2, 3]) assert.equal(Number((await one(sb, n, 'SELECT @@read_only AS ro'))['ro']), 1, `node${n} must be read_only`);

    // The replicas register as semi-sync clients once their IO threads connected.
    let semi: Record<string, string> = {};
    await waitFor('semi-sync on node1 with 2 clients', async () => {
      const st = await rows(sb, 1, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')");
      semi = Object.fromEntries(st.map((x) => [String(x['Variable_name']), String(x['Value'])]));
      return semi['Rpl_semi_sync_master_status'] === 'ON' && semi['Rpl_semi_sync_master_clients'] === '2';
    }).catch((e: Error) => assert.fail(`${e.message}; last seen ${JSON.stringify(semi)}`));

    await assertReplicates(sb, 'first');
    // The write above went through semi-sync, not around it after a timeout.
    assert.equal((await one(sb, 1, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'"))['Value'], 'ON');
    assert.equal((await one(sb, 1, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_no_tx'"))['Value'], '0');
  });

  test('a second run says nothing changed and changes nothing', async () => {
    const fields = ['Master_Host', 'Master_Port', 'Master_User', 'Connect_Retry', 'Using_Gtid', 'Slave_IO_Running', 'Slave_SQL_Running', 'Relay_Log_File', 'Relay_Log_Pos', 'Master_Log_File', 'Exec_Master_Log_Pos', 'Gtid_IO_Pos', 'Gtid_Slave_Pos'];
    const replicaFields = async () =>
      Promise.all(
        [2, 3].map(async (n) => {
          const s = await replicaStatus(sb, n);
          assert.ok(s, `node${n} lost its replica configuration`);
          return Object.fromEntries(fields.map((f) => [f, s[f]]));
        }),
      );
    // STOP/START SLAVE or CHANGE MASTER leaves the fields above as they were when nothing was
    // written, but always replaces the replication threads and the primary's binlog dump threads.
    const threads = async () =>
      Promise.all(
        [1, 2, 3].map(async (n) =>
          (
            await rows(sb, n, "SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Slave_IO', 'Slave_SQL', 'Slave_worker') ORDER BY ID")
          ).map((t) => `${String(t['COMMAND'])}#${String(t['ID'])}`),
        ),
      );
    const beforeState = await clusterState(sb);
    const beforeReplicas = await replicaFields();
    const beforeThreads = await threads();
    assert.deepEqual(beforeThreads.map((t) => t.length), [2, 2, 2], JSON.stringify(beforeThreads));

    const r = await bootstrap(sb);
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, /cluster sandbox: already bootstrapped, nothing changed/, out(r));
    assert.doesNotMatch(r.stdout, /bootstrapped\n/, out(r));

    assert.deepEqual(await clusterState(sb), beforeState);
    assert.deepEqual(await replicaFields(), beforeReplicas);
    assert.deepEqual(await threads(), beforeThreads, 'replication was restarted');
    for (const n of [2, 3]) await assertReplicaOf(sb, n, 1);
    await assertReplicates(sb, 'second');
  });
});

describe('bootstrap creates a missing replication account', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, noReplication: true }));
    for (let n = 1; n <= 3; n++) await sb.sql(sb.node(n), ['SET SESSION sql_log_bin = 0', "DROP USER 'repl'@'127.0.0.1'"]);
  });
  after(async () => cleanup?.());

  test('without the right to create it: refuses with the statements to run', async () => {
    const beforeState = await clusterState(sb);
    const r = await assertRefusedUnchanged(
      sb,
      beforeState,
      new RegExp(`${id(sb, 1)}: replication account 'repl' does not exist and the manager account may not create it; run: CREATE USER 'repl'@'%' IDENTIFIED BY '<password>'; GRANT REPLICATION SLAVE ON \\*\\.\\* TO 'repl'@'%'`),
    );
    const pw = readFileSync(join(sb.dir, 'secrets/replication.pw'), 'utf8').trim();
    assert.ok(!r.stdout.includes(pw) && !r.stderr.includes(pw), 'the replication password leaked into the output');
  });

  test('with CREATE USER and GRANT OPTION on the primary: creates it and replication works', async () => {
    // The manager already holds REPLICATION SLAVE; WITH GRANT OPTION lets it pass that on.
    await sb.sql(sb.node(1), ['SET SESSION sql_log_bin = 0', "GRANT CREATE USER ON *.* TO 'regent'@'127.0.0.1' WITH GRANT OPTION"]);
    const r = await bootstrap(sb);
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, new RegExp(`${id(sb, 1)}: create replication account 'repl'@'%'`), out(r));
    const pw = readFileSync(join(sb.dir, 'secrets/replication.pw'), 'utf8').trim();
    assert.ok(!r.stdout.includes(pw) && !r.stderr.includes(pw), 'the replication password leaked into the output');

    for (const n of [2, 3]) await assertReplicaOf(sb, n, 1);
    await assertReplicates(sb, 'created');
    // Created through the binary log, so every node has it and any of them can become primary.
    for (let n = 1; n <= 3; n++) {
      const grants = (await rows(sb, n, "SHOW GRANTS FOR 'repl'@'%'")).map((g) => String(Object.values(g)[0]));
      assert.ok(grants.some((g) => /^GRANT REPLICATION SLAVE ON \*\.\* TO `repl`@`%`/.test(g)), `node${n}: ${grants.join(' | ')}`);
    }

    // CREATE USER travels through the binary log to every node: the password must not travel with it.
    for (let n = 1; n <= 3; n++) {
      const events: string[] = [];
      for (const log of await rows(sb, n, 'SHOW BINARY LOGS')) {
        for (const e of await rows(sb, n, `SHOW BINLOG EVENTS IN '${String(log['Log_name'])}'`)) events.push(String(e['Info']));
      }
      assert.ok(events.some((e) => e.includes("CREATE USER IF NOT EXISTS 'repl'@'%'")), `node${n}: CREATE USER not in its binary log`);
      assert.ok(!events.some((e) => e.includes(pw)), `node${n}: the replication password is in its binary log in plain text`);
    }

    const again = await bootstrap(sb);
    assert.equal(again.code, 0, out(again));
    assert.match(again.stdout, /already bootstrapped, nothing changed/, out(again));
  });
});

describe('bootstrap refuses and changes nothing', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  let pristine: Row[];
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, noReplication: true }));
    pristine = await clusterState(sb);
  });
  after(async () => cleanup?.());

  /** Each case breaks one thing, checks the refusal, and restores the sandbox exactly. */
  const refusal = async (breakIt: () => Promise<void>, restore: () => Promise<void>, reason: () => RegExp): Promise<CliResult> => {
    let result: CliResult;
    try {
      await breakIt();
      result = await assertRefusedUnchanged(sb, await clusterState(sb), reason());
    } finally {
      // Restore even when an assertion failed, without masking that assertion.
      await restore();
    }
    assert.deepEqual(await clusterState(sb), pristine, 'the sandbox was not restored exactly');
    return result;
  };

  test('a replica holding transactions the primary lacks', async () => {
    await refusal(
      () => sb.sql(sb.node(2), ['CREATE TABLE app.x (id INT PRIMARY KEY) ENGINE=InnoDB', 'INSERT INTO app.x VALUES (1)']).then(() => {}),
      () => sb.sql(sb.node(2), ['SET SESSION sql_log_bin = 0', 'DROP TABLE IF EXISTS app.x', 'RESET MASTER']).then(() => {}),
      () => new RegExp(`${id(sb, 2)}: holds transactions the primary ${id(sb, 1)} lacks \\(0-2-2\\)`),
    );
  });

  test('duplicate server_id', async () => {
    await refusal(
      () => sb.sql(sb.node(3), ['SET GLOBAL server_id = 1']).then(() => {}),
      () => sb.sql(sb.node(3), ['SET GLOBAL server_id = 3']).then(() => {}),
      () => new RegExp(`${id(sb, 3)}: server_id 1 is also used by ${id(sb, 1)}`),
    );
  });

  test('the manager account lacks a privilege on one node: names it and the GRANT that fixes it', async () => {
    const r = await refusal(
      () => sb.sql(sb.node(2), ['SET SESSION sql_log_bin = 0', "REVOKE BINLOG MONITOR ON *.* FROM 'regent'@'127.0.0.1'"]).then(() => {}),
      () => sb.sql(sb.node(2), ['SET SESSION sql_log_bin = 0', "GRANT BINLOG MONITOR ON *.* TO 'regent'@'127.0.0.1'"]).then(() => {}),
      () => new RegExp(`${id(sb, 2)}: manager account 'regent' lacks BINLOG MONITOR; run: GRANT BINLOG MONITOR ON \\*\\.\\* TO 'regent'@`),
    );
    assert.doesNotMatch(r.stderr, new RegExp(`${id(sb, 1)}: manager|${id(sb, 3)}: manager`), 'only node2 lacks a privilege');
  });

  test('a replication password that does not work: says so without printing it', async () => {
    const pwFile = join(sb.dir, 'secrets/replication.pw');
    const real = readFileSync(pwFile, 'utf8');
    const wrong = 'Wr0ng-repl-Passw0rd';
    const r = await refusal(
      async () => writeFileSync(pwFile, `${wrong}\n`),
      async () => writeFileSync(pwFile, real),
      () => new RegExp(`${id(sb, 1)}: replication account 'repl' exists but cannot log in with the configured password`),
    );
    for (const secret of [wrong, real.trim()]) assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'a replication password appeared in the output');
  });

  test('once restored, the same servers bootstrap fine', async () => {
    const r = await bootstrap(sb);
    assert.equal(r.code, 0, out(r));
    for (const n of [2, 3]) await assertReplicaOf(sb, n, 1);
    await assertReplicates(sb, 'restored');
  });
});

describe('bootstrap refuses a node without binary log', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  before(async () => ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, noReplication: true, nodeServerConfig: { 3: ['skip-log-bin'] } })));
  after(async () => cleanup?.());

  test('names the node and the missing binary log', async () => {
    assert.equal(Number((await one(sb, 3, 'SELECT @@log_bin AS b'))['b']), 0, 'skip-log-bin did not take effect');
    const r = await assertRefusedUnchanged(sb, await clusterState(sb), new RegExp(`${id(sb, 3)}: binary log is off; add log_bin to its config and restart`));
    assert.doesNotMatch(r.stderr, new RegExp(`${id(sb, 1)}: binary log|${id(sb, 2)}: binary log`));
  });
});
