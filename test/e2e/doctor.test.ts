import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { managerPrivileges, missingPrivileges, parseGlobalGrants } from '../../src/sql/grants.ts';
import { runCli, startSandbox, type CliResult } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

/**
 * `regent doctor` on real servers: a healthy sandbox passes; each thing broken on purpose is
 * reported with the right check, severity and fix, and doctor changes nothing on any server.
 * `regent grants`: the printed statements alone make a cluster Regent can bootstrap and fail over.
 */

type Row = Record<string, unknown>;

interface Finding {
  severity: 'ok' | 'warning' | 'critical';
  cluster: string;
  instance?: string;
  name?: string;
  check: string;
  message: string;
  fix?: string;
}
interface Report {
  clusters: { name: string; findings: Finding[] }[];
  summary: { ok: number; warning: number; critical: number };
  exitCode: number;
}

const out = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rows(sb: Sandbox, n: number, sql: string): Promise<Row[]> {
  const [r] = await sb.sql(sb.node(n), [sql]);
  return r ?? [];
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Everything doctor could conceivably change on a node, read as root over the socket. */
async function nodeState(sb: Sandbox, n: number): Promise<Row> {
  const [vars] = await rows(
    sb,
    n,
    'SELECT @@server_id AS server_id, @@read_only AS read_only, @@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_slave_pos AS gtid_slave_pos, ' +
      '@@gtid_strict_mode AS gtid_strict_mode, @@rpl_semi_sync_master_enabled AS semi_master, @@rpl_semi_sync_slave_enabled AS semi_slave, ' +
      '@@rpl_semi_sync_master_timeout AS semi_timeout, @@binlog_format AS binlog_format, @@slave_net_timeout AS net_timeout',
  );
  const slave = (await rows(sb, n, 'SHOW SLAVE STATUS'))[0];
  const keys = ['Master_Host', 'Master_Port', 'Master_User', 'Slave_IO_Running', 'Slave_SQL_Running', 'Using_Gtid', 'Last_IO_Errno', 'Last_SQL_Errno', 'Master_Log_File', 'Read_Master_Log_Pos', 'Exec_Master_Log_Pos', 'Gtid_IO_Pos'];
  const grants = await rows(sb, n, "SHOW GRANTS FOR 'regent'@'127.0.0.1'");
  const logs = await rows(sb, n, 'SHOW BINARY LOGS');
  return {
    ...vars,
    slave: slave ? Object.fromEntries(keys.map((k) => [k, slave[k]])) : null,
    grants: grants.map((g) => String(Object.values(g)[0])),
    binlogs: logs.map((l) => `${String(l['Log_name'])}:${String(l['File_size'])}`),
  };
}

const clusterState = (sb: Sandbox): Promise<Row[]> => Promise.all(sb.nodes.map((_, i) => nodeState(sb, i + 1)));

/** Runs doctor (--json) and checks that no server changed while it ran. */
async function doctor(sb: Sandbox, configFile = sb.configFile): Promise<{ r: CliResult; report: Report; findings: Finding[] }> {
  const before = await clusterState(sb);
  const r = await runCli(['doctor', '--config', configFile, '--json'], { timeoutMs: 30000 });
  assert.doesNotMatch(r.stderr, /unexpected error/, out(r));
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`doctor did not print JSON:\n${out(r)}`);
  }
  assert.equal(r.code, report.exitCode, 'the exit code is the one the report states');
  assert.deepEqual(await clusterState(sb), before, 'doctor changed something on a server');
  return { r, report, findings: report.clusters.flatMap((c) => c.findings) };
}

const problems = (findings: Finding[]) => findings.filter((f) => f.severity !== 'ok');
const describeFindings = (findings: Finding[]) => problems(findings).map((f) => `[${f.severity}] ${f.name ?? '(cluster)'} ${f.check}: ${f.message} | fix: ${f.fix}`).join('\n');

function secretsOf(sb: Sandbox): string[] {
  return ['manager', 'replication', 'admin', 'app'].map((k) => readFileSync(join(sb.dir, 'secrets', `${k}.pw`), 'utf8').trim());
}

function assertNoSecrets(sb: Sandbox, r: CliResult, extra: string[] = []): void {
  for (const s of [...secretsOf(sb), ...extra]) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), 'a password appeared in the output');
  // SHOW GRANTS carries password hashes: they must not leak either.
  assert.doesNotMatch(r.stdout + r.stderr, /IDENTIFIED BY PASSWORD|\*[0-9A-F]{40}/);
}

describe('doctor: a healthy sandbox, then one thing broken at a time', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  const id = (n: number) => `127.0.0.1:${sb.node(n).port}`;
  const finding = (findings: Finding[], n: number, check: string): Finding | undefined => findings.find((f) => f.instance === id(n) && f.check === check && f.severity !== 'ok');

  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    // Some history, so GTID positions are not empty.
    await sb.sql(sb.node(1), ['CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB', 'INSERT INTO app.t VALUES (1), (2)']);
    const [{ p }] = (await rows(sb, 1, 'SELECT @@gtid_binlog_pos AS p')) as [{ p: string }];
    for (const n of [2, 3]) await rows(sb, n, `SELECT MASTER_GTID_WAIT('${p}', 10)`);
  });
  after(async () => cleanup?.());

  /** Breaks one thing, runs doctor, and restores it even when an assertion fails. */
  const broken = async (
    breakIt: () => Promise<unknown>,
    restore: () => Promise<unknown>,
    check: (d: Awaited<ReturnType<typeof doctor>>) => void | Promise<void>,
    opts: { binlogRewrittenOn?: number } = {},
  ) => {
    // A node whose binary log the restore had to reset keeps everything else exactly.
    const comparable = (state: Row[]) => state.map((s, i) => (i + 1 === opts.binlogRewrittenOn ? { ...s, binlogs: '(reset)' } : s));
    const pristine = comparable(await clusterState(sb));
    try {
      await breakIt();
      const d = await doctor(sb);
      await check(d);
      assertNoSecrets(sb, d.r);
    } finally {
      await restore();
    }
    assert.deepEqual(comparable(await clusterState(sb)), pristine, 'the sandbox was not restored exactly');
  };

  test('healthy: every check ok, exit 0, in text and JSON, no secret printed', async () => {
    const { r, findings } = await doctor(sb);
    assert.equal(r.code, 0, describeFindings(findings));
    assert.deepEqual(problems(findings), []);
    // Every instance got every per-instance check.
    for (const n of [1, 2, 3])
      for (const check of ['connect', 'privileges', 'gtid-strict', 'server-id', 'read-only', 'semi-sync', 'binlog-retention', 'clock', 'replication-account', 'relay-log-recovery'])
        assert.ok(findings.some((f) => f.instance === id(n) && f.check === check && f.severity === 'ok'), `node${n} ${check}`);
    for (const n of [2, 3]) for (const check of ['replication', 'lag', 'errant-gtid', 'heartbeat']) assert.ok(findings.some((f) => f.instance === id(n) && f.check === check), `node${n} ${check}`);
    assert.match(findings.find((f) => f.check === 'failover-candidate')!.message, /would promote node2/);
    assertNoSecrets(sb, r);

    const text = await runCli(['doctor', '--config', sb.configFile], { timeoutMs: 30000 });
    assert.equal(text.code, 0, out(text));
    assert.match(text.stdout, /summary: 0 critical, 0 warning\(s\), \d+ ok: everything Regent depends on is in place \(exit 0\)/);
    assert.match(text.stdout, /ok +node2 127\.0\.0\.1:\d+ +heartbeat +heartbeat every 0\.5 s/);
    assertNoSecrets(sb, text);
  });

  test('a privilege a failover needs is missing on one node: critical, names the feature and the GRANT', async () => {
    await broken(
      () => sb.sql(sb.node(2), ['SET SESSION sql_log_bin = 0', "REVOKE READ_ONLY ADMIN ON *.* FROM 'regent'@'127.0.0.1'"]),
      () => sb.sql(sb.node(2), ['SET SESSION sql_log_bin = 0', "GRANT READ_ONLY ADMIN ON *.* TO 'regent'@'127.0.0.1'"]),
      ({ r, findings }) => {
        assert.equal(r.code, 2, describeFindings(findings));
        const f = finding(findings, 2, 'privileges');
        assert.ok(f, describeFindings(findings));
        assert.equal(f.severity, 'critical');
        assert.match(f.message, /lacks READ_ONLY ADMIN \(failover: setting read_only/);
        assert.equal(f.fix, "SET SESSION sql_log_bin = 0; GRANT READ_ONLY ADMIN ON *.* TO 'regent'@'127.0.0.1';");
        assert.equal(problems(findings).filter((x) => x.check === 'privileges').length, 1, 'only node2 lacks a privilege');
      },
    );
  });

  test('a privilege only clone needs is missing: a warning, exit 1', async () => {
    await broken(
      () => sb.sql(sb.node(3), ['SET SESSION sql_log_bin = 0', "REVOKE EVENT ON *.* FROM 'regent'@'127.0.0.1'"]),
      () => sb.sql(sb.node(3), ['SET SESSION sql_log_bin = 0', "GRANT EVENT ON *.* TO 'regent'@'127.0.0.1'"]),
      ({ r, findings }) => {
        assert.equal(r.code, 1, describeFindings(findings));
        const f = finding(findings, 3, 'privileges');
        assert.equal(f?.severity, 'warning', describeFindings(findings));
        assert.match(f!.message, /lacks EVENT \(clone: mariadb-dump of events\)/);
        assert.equal(f!.fix, "SET SESSION sql_log_bin = 0; GRANT EVENT ON *.* TO 'regent'@'127.0.0.1';");
      },
    );
  });

  test('gtid_strict_mode off on one replica: critical with the SET GLOBAL and the option-file line', async () => {
    await broken(
      () => sb.sql(sb.node(3), ['SET GLOBAL gtid_strict_mode = OFF']),
      () => sb.sql(sb.node(3), ['SET GLOBAL gtid_strict_mode = ON']),
      ({ r, findings }) => {
        assert.equal(r.code, 2, describeFindings(findings));
        const f = finding(findings, 3, 'gtid-strict');
        assert.equal(f?.severity, 'critical', describeFindings(findings));
        assert.match(f!.message, /gtid_strict_mode is OFF/);
        assert.match(f!.fix!, /SET GLOBAL gtid_strict_mode = ON; and gtid_strict_mode=ON under \[mariadbd\]/);
        assert.equal(finding(findings, 2, 'gtid-strict'), undefined);
      },
    );
  });

  test('duplicate server_id: critical on both, with a free server_id to use', async () => {
    await broken(
      () => sb.sql(sb.node(3), ['SET GLOBAL server_id = 2']),
      () => sb.sql(sb.node(3), ['SET GLOBAL server_id = 3']),
      ({ r, findings }) => {
        assert.equal(r.code, 2, describeFindings(findings));
        const f = finding(findings, 3, 'server-id');
        assert.equal(f?.severity, 'critical', describeFindings(findings));
        assert.match(f!.message, new RegExp(`server_id 2 is also used by node2 ${id(2)}`));
        assert.match(f!.fix!, /on node3, SET GLOBAL server_id = 3; and server_id=3 under \[mariadbd\]/);
        assert.ok(finding(findings, 2, 'server-id'), 'node2 is told too');
      },
    );
  });

  test('a replica whose IO thread cannot log in (wrong replication password, error 1045): critical, CHANGE MASTER with a placeholder', async () => {
    const real = readFileSync(join(sb.dir, 'secrets/replication.pw'), 'utf8').trim();
    const ioErrno = async () => Number((await rows(sb, 3, 'SHOW SLAVE STATUS'))[0]?.['Last_IO_Errno']);
    await broken(
      async () => {
        await sb.sql(sb.node(3), ['STOP SLAVE', "CHANGE MASTER TO MASTER_PASSWORD = 'wrong-on-purpose'", 'START SLAVE']);
        await waitFor('IO error 1045 on node3', async () => (await ioErrno()) === 1045);
      },
      async () => {
        await sb.sql(sb.node(3), ['STOP SLAVE']);
        const c = await sb.root(sb.node(3));
        try {
          await c.query('CHANGE MASTER TO MASTER_PASSWORD = ?', [real]);
        } finally {
          await c.close();
        }
        await sb.sql(sb.node(3), ['START SLAVE']);
        await waitFor('node3 replicating again', async () => (await rows(sb, 3, 'SHOW SLAVE STATUS'))[0]?.['Slave_IO_Running'] === 'Yes' && (await ioErrno()) === 0);
      },
      ({ r, findings }) => {
        assert.equal(r.code, 2, describeFindings(findings));
        const f = finding(findings, 3, 'replication');
        assert.equal(f?.severity, 'critical', describeFindings(findings));
        assert.match(f!.message, new RegExp(`cannot log in to its source node1 ${id(1)} as 'repl' \\(error 1045`));
        assert.equal(f!.fix, "STOP SLAVE; CHANGE MASTER TO MASTER_USER = 'repl', MASTER_PASSWORD = '<REPLICATION_PASSWORD>'; START SLAVE; with <REPLICATION_PASSWORD> = credentials.replication.password");
        // The configured password itself is right: the replication account check passes.
        assert.ok(!problems(findings).some((x) => x.check === 'replication-account'), describeFindings(findings));
        assert.ok(!r.stdout.includes('wrong-on-purpose'));
      },
    );
  });

  test('a wrong replication password in the config: the login to every instance fails, critical, nothing printed', async () => {
    const wrong = 'Wr0ng-repl-Passw0rd';
    writeFileSync(join(sb.dir, 'secrets/wrong-repl.pw'), `${wrong}\n`);
    const f = join(sb.dir, 'wrong-repl.yaml');
    writeFileSync(f, readFileSync(sb.configFile, 'utf8').replace('secrets/replication.pw', 'secrets/wrong-repl.pw'));
    const { r, findings } = await doctor(sb, f);
    assert.equal(r.code, 2, describeFindings(findings));
    for (const n of [1, 2, 3]) {
      const x = finding(findings, n, 'replication-account');
      assert.equal(x?.severity, 'critical', describeFindings(findings));
      assert.match(x!.message, /the replication account 'repl' rejects the configured password \(from file .*wrong-repl\.pw\)/);
      assert.match(x!.fix!, /ALTER USER 'repl'@'127\.0\.0\.1' IDENTIFIED BY '<REPLICATION_PASSWORD>';/);
    }
    assert.match(finding(findings, 1, 'replication-account')!.message, /its replicas cannot reconnect to it/);
    assertNoSecrets(sb, r, [wrong]);
  });

  test('where refused logins count towards blocking an account (max_password_errors), the password is not tried', async () => {
    writeFileSync(join(sb.dir, 'secrets/wrong-repl.pw'), 'Wr0ng-repl-Passw0rd\n');
    const f = join(sb.dir, 'wrong-repl.yaml');
    writeFileSync(f, readFileSync(sb.configFile, 'utf8').replace('secrets/replication.pw', 'secrets/wrong-repl.pw'));
    await sb.sql(sb.node(1), ['SET GLOBAL max_password_errors = 2']);
    try {
      const { r, findings } = await doctor(sb, f);
      assert.equal(r.code, 2, describeFindings(findings));
      const x = finding(findings, 1, 'replication-account');
      assert.equal(x?.severity, 'warning', describeFindings(findings));
      assert.match(x!.message, /was not tried here: max_password_errors is 2/);
      // Elsewhere the wrong password is still caught.
      assert.equal(finding(findings, 2, 'replication-account')?.severity, 'critical');
    } finally {
      await sb.sql(sb.node(1), ['SET GLOBAL max_password_errors = 4294967295']);
    }
  });

  test('a wrong manager password: the headline names authentication with the fix, critical connect findings, exit 2, no stack trace', async () => {
    writeFileSync(join(sb.dir, 'secrets/wrong-manager.pw'), 'not-the-password\n');
    const f = join(sb.dir, 'wrong-manager.yaml');
    writeFileSync(f, readFileSync(sb.configFile, 'utf8').replace('secrets/manager.pw', 'secrets/wrong-manager.pw'));
    const { r, findings } = await doctor(sb, f);
    assert.equal(r.code, 2, out(r));
    const headline = findings.find((x) => x.severity !== 'ok')!;
    assert.equal(headline.check, 'authentication', describeFindings(findings));
    assert.match(headline.message, /every instance refuses the manager account 'regent' \(access denied\)/);
    assert.match(headline.fix!, /credentials\.manager .*password read from file .*wrong-manager\.pw; or create the account .*regent grants --config /);
    assert.ok(!findings.some((x) => /start the server/.test(x.fix ?? '')), describeFindings(findings));
    const text = await runCli(['doctor', '--config', f], { timeoutMs: 30000 });
    assert.match(text.stdout.split('\n')[1] ?? '', /CRITICAL +\(cluster\) +authentication +every instance refuses the manager account/, out(text));
    const x = finding(findings, 1, 'connect');
    assert.equal(x?.severity, 'critical');
    assert.match(x!.message, /the manager account 'regent' cannot log in: access denied/);
    assert.match(x!.fix!, /regent grants/);
    assertNoSecrets(sb, r, ['not-the-password']);
  });

  test('a replica with an errant GTID: critical, the GTIDs named, the reclone that fixes it', async () => {
    const [{ state }] = (await rows(sb, 2, 'SELECT @@gtid_binlog_state AS state')) as [{ state: string }];
    await broken(
      () => sb.sql(sb.node(2), ['SET SESSION gtid_domain_id = 9', 'CREATE TABLE app.e (i INT)', 'INSERT INTO app.e VALUES (1)']),
      // Undo it exactly: the table without binlogging, and node2's binlog GTID state as it was.
      () => sb.sql(sb.node(2), ['SET SESSION sql_log_bin = 0', 'DROP TABLE app.e', 'RESET MASTER', `SET GLOBAL gtid_binlog_state = '${state}'`]),
      ({ r, findings }) => {
        assert.equal(r.code, 2, describeFindings(findings));
        const f = finding(findings, 2, 'errant-gtid');
        assert.equal(f?.severity, 'critical', describeFindings(findings));
        assert.match(f!.message, /has transactions the primary lacks \(9-2-2\)/);
        assert.match(f!.fix!, /regent repair node2 --reclone/);
        // The failover choice avoids it.
        assert.match(findings.find((x) => x.check === 'failover-candidate')!.message, /would promote node3 .*not node2 \(errant transactions 9-2-2\)/);
      },
      { binlogRewrittenOn: 2 },
    );
  });

  test('an unknown cluster is unusable input: exit 2, one line', async () => {
    const r = await runCli(['doctor', '--config', sb.configFile, '--cluster', 'nope']);
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^regent: no cluster named "nope" in .*regent\.yaml \(clusters: sandbox\)$/);
  });
});

describe('grants: the printed statements are enough to bootstrap, pass doctor and fail over', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  let manager: ManagerProcess | undefined;
  before(async () => ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, noReplication: true })));
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('users re-created from `regent grants` alone; bootstrap, doctor exit 0, kill -9 of the primary fails over', async () => {
    const g = await runCli(['grants', '--config', sb.configFile, '--host', '127.0.0.1']);
    assert.equal(g.code, 0, out(g));
    assertNoSecrets(sb, g);
    for (const p of ['<MANAGER_PASSWORD>', '<REPLICATION_PASSWORD>', '<CLONE_PASSWORD>', '<ROUTER_PASSWORD>']) assert.ok(g.stdout.includes(p), `${p} placeholder missing`);
    assert.match(g.stdout, /READ_ONLY ADMIN, +-- failover: setting read_only/);
    assert.match(g.stdout, /says 10\.\d+\.\d+-MariaDB/, 'the flavor was detected from a server');

    const pw = (k: string) => readFileSync(join(sb.dir, 'secrets', `${k}.pw`), 'utf8').trim();
    const script = g.stdout
      .replaceAll('<MANAGER_PASSWORD>', pw('manager'))
      .replaceAll('<REPLICATION_PASSWORD>', pw('replication'))
      .replaceAll('<CLONE_PASSWORD>', pw('admin'))
      .replaceAll('<ROUTER_PASSWORD>', pw('router'));
    for (const node of sb.nodes) {
      await sb.sql(node, ['SET SESSION sql_log_bin = 0', "DROP USER 'regent'@'127.0.0.1'", "DROP USER 'repl'@'127.0.0.1'", "DROP USER 'admin'@'127.0.0.1'", "DROP USER 'regent_router'@'127.0.0.1'"]);
      // Exactly what an operator would do: feed the printed script to the client.
      const run = spawnSync('mariadb', [`--socket=${node.socket}`, '--user=root', '--batch'], { input: script, encoding: 'utf8' });
      assert.equal(run.status, 0, `${node.name}: ${run.stderr}`);
      const grants = (await rows(sb, Number(node.name.slice(4)), "SHOW GRANTS FOR 'regent'@'127.0.0.1'")).map((x) => String(Object.values(x)[0]));
      assert.deepEqual(missingPrivileges(parseGlobalGrants(grants), managerPrivileges('mariadb')), [], `${node.name}: ${grants.join(' | ')}`);
      assert.doesNotMatch(grants.join(' '), /ALL PRIVILEGES/);
    }

    const boot = await runCli(['bootstrap', '--config', sb.configFile], { timeoutMs: 60000 });
    assert.equal(boot.code, 0, out(boot));

    const d = await runCli(['doctor', '--config', sb.configFile], { timeoutMs: 30000 });
    assert.equal(d.code, 0, out(d));

    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    // Let every prober see the cluster once before the crash.
    await sleep(1000);
    await sb.kill(sb.node(1));
    const done = await manager.waitFor((e) => e.event === 'failover_succeeded', 15000, 'failover_succeeded');
    assert.equal(done['oldPrimary'], `127.0.0.1:${sb.node(1).port}`);
    assert.ok([2, 3].map((n) => `127.0.0.1:${sb.node(n).port}`).includes(String(done['newPrimary'])));
  });

  test('without a reachable instance the flavor must be given; with --flavor mysql the MySQL names are printed', async () => {
    const f = join(sb.dir, 'nowhere.yaml');
    writeFileSync(f, 'clusters:\n  - name: gone\n    instances:\n      - host: 127.0.0.1\n        port: 1\n');
    const r = await runCli(['grants', '--config', f]);
    assert.equal(r.code, 2, out(r));
    assert.match(r.stderr, /cluster gone: no instance answered .*pass --flavor mariadb or --flavor mysql/);
    const m = await runCli(['grants', '--config', f, '--flavor', 'mysql']);
    assert.equal(m.code, 0, out(m));
    assert.match(m.stdout, /CREATE USER 'regent'@'%' IDENTIFIED BY '<MANAGER_PASSWORD>';/);
    assert.match(m.stdout, /REPLICATION_SLAVE_ADMIN, +-- failover:/);
    assert.match(m.stdout, /GRANT REPLICATION SLAVE +-- replicas connect/);
  });
});
