import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterConfig } from '../../src/config/load.ts';
import { doctorExitCode, evaluateCluster, hostMatches } from '../../src/doctor/evaluate.ts';
import type { ClusterFacts, Finding, InstanceFacts } from '../../src/doctor/facts.ts';
import { renderDoctorText, doctorReport } from '../../src/doctor/render.ts';
import type { InstanceObservation } from '../../src/monitor/observation.ts';
import { managerPrivileges } from '../../src/sql/grants.ts';
import type { ServerSettings } from '../../src/sql/flavor.ts';
import { cluster, deadObs, id, primaryObs, replicaObs } from '../helpers/views.ts';

/** The pure half of `regent doctor`: facts built by hand, findings checked one by one. */

const ALL_PRIVILEGES = managerPrivileges('mariadb').map((p) => p.privilege);

function instanceFacts(obs: InstanceObservation, extra: Partial<InstanceFacts> = {}): InstanceFacts {
  return {
    id: obs.id,
    obs,
    connected: true,
    version: '10.11.19-MariaDB',
    managerAccount: { user: 'regent', host: '10.0.0.%' },
    managerPrivileges: ALL_PRIVILEGES,
    vars: { relay_log_recovery: 'ON', binlog_expire_logs_seconds: '604800', expire_logs_days: '7.000000' },
    clock: { offsetMs: 2, roundTripMs: 0.4 },
    replicationAccountHosts: ['%'],
    replicationLogin: { ok: true, privileges: ['REPLICATION SLAVE'] },
    replicaUser: obs.replica ? 'repl' : undefined,
    errors: [],
    ...extra,
  };
}

const withSettings = (obs: InstanceObservation, s: Partial<ServerSettings>): InstanceObservation => ({ ...obs, settings: { ...obs.settings!, ...s } });

/** A healthy 3-node cluster: n1 semi-sync primary, n2 and n3 replicas, GTID 0-1-10 everywhere. */
function healthy(c: ClusterConfig = cluster(3)): ClusterFacts {
  const p = withSettings(primaryObs(1, '0-1-10'), { semiSyncPrimaryEnabled: true, slaveNetTimeout: 10 });
  const primary: InstanceObservation = { ...p, semiSync: { primaryActive: true, primaryClients: 2, replicaActive: false } };
  const replicas = [2, 3].map((n) => withSettings(replicaObs(n, '0-1-10'), { slaveNetTimeout: 10 }));
  return { cluster: c, instances: [primary, ...replicas].map((o) => instanceFacts(o)), now: 1000, configFile: '/etc/regent/regent.yaml' };
}

/** Replaces instance n's facts. */
function change(f: ClusterFacts, n: number, fn: (i: InstanceFacts) => InstanceFacts): ClusterFacts {
  return { ...f, instances: f.instances.map((i) => (i.id === id(n) ? fn(i) : i)) };
}

const notOk = (findings: Finding[]) => findings.filter((f) => f.severity !== 'ok');
const show = (findings: Finding[]) => notOk(findings).map((f) => `[${f.severity}] ${f.name ?? '-'} ${f.check}: ${f.message} | ${f.fix}`).join('\n');
const one = (findings: Finding[], n: number | undefined, check: string): Finding => {
  const found = notOk(findings).filter((f) => f.check === check && f.instance === (n === undefined ? undefined : id(n)));
  assert.equal(found.length, 1, `expected one ${check} finding on ${n ?? 'the cluster'}, got:\n${show(findings)}`);
  return found[0]!;
};

test('a healthy cluster: only ok findings, exit 0, one per check per instance', () => {
  const findings = evaluateCluster(healthy());
  assert.deepEqual(notOk(findings), [], show(findings));
  assert.equal(doctorExitCode(findings), 0);
  for (const n of [1, 2, 3]) for (const check of ['connect', 'privileges', 'gtid-strict', 'server-id', 'read-only', 'semi-sync', 'binlog-retention', 'clock', 'replication-account']) assert.ok(findings.some((f) => f.instance === id(n) && f.check === check), `n${n} ${check}`);
  for (const n of [2, 3]) for (const check of ['heartbeat', 'replication', 'lag', 'errant-gtid']) assert.ok(findings.some((f) => f.instance === id(n) && f.check === check), `n${n} ${check}`);
  assert.ok(findings.every((f) => f.fix === undefined), 'ok findings carry no fix');
  const candidate = findings.find((f) => f.check === 'failover-candidate')!;
  assert.match(candidate.message, /a failover from n1 now would promote n2 127\.0\.0\.1:3302/);
});

test('a missing privilege a failover needs is critical and names the feature; one only clone needs is a warning', () => {
  const critical = evaluateCluster(change(healthy(), 2, (i) => ({ ...i, managerPrivileges: ALL_PRIVILEGES.filter((p) => p !== 'READ_ONLY ADMIN' && p !== 'EVENT') })));
  const f = one(critical, 2, 'privileges');
  assert.equal(f.severity, 'critical');
  assert.match(f.message, /lacks READ_ONLY ADMIN \(failover: setting read_only .*\), EVENT \(clone: mariadb-dump of events\)/);
  assert.equal(f.fix, "SET SESSION sql_log_bin = 0; GRANT READ_ONLY ADMIN, EVENT ON *.* TO 'regent'@'10.0.0.%';");
  assert.equal(doctorExitCode(critical), 2);

  const warning = evaluateCluster(change(healthy(), 3, (i) => ({ ...i, managerPrivileges: ALL_PRIVILEGES.filter((p) => p !== 'SHOW VIEW') })));
  assert.equal(one(warning, 3, 'privileges').severity, 'warning');
  assert.equal(doctorExitCode(warning), 1);

  const all = evaluateCluster(change(healthy(), 3, (i) => ({ ...i, managerPrivileges: ['ALL PRIVILEGES'] })));
  assert.deepEqual(notOk(all), []);
});

test('gtid_strict_mode off is critical; MySQL gets the gtid_mode steps', () => {
  const f = one(evaluateCluster(change(healthy(), 3, (i) => ({ ...i, obs: withSettings(i.obs, { gtidStrict: false }) }))), 3, 'gtid-strict');
  assert.equal(f.severity, 'critical');
  assert.match(f.message, /^gtid_strict_mode is OFF: /);
  assert.match(f.fix!, /^SET GLOBAL gtid_strict_mode = ON; and gtid_strict_mode=ON under \[mariadbd\]/);

  const mysql = change(healthy(), 3, (i) => ({ ...i, obs: { ...withSettings(i.obs, { gtidStrict: false }), flavor: 'mysql' }, vars: { ...i.vars, gtid_mode: 'OFF_PERMISSIVE', enforce_gtid_consistency: 'ON' } }));
  const m = one(evaluateCluster(mysql), 3, 'gtid-strict');
  assert.match(m.message, /gtid_mode is OFF_PERMISSIVE and enforce_gtid_consistency is ON/);
  assert.match(m.fix!, /SET GLOBAL gtid_mode = ON_PERMISSIVE; .*SET GLOBAL gtid_mode = ON; .*\[mysqld\]/);
});

test('duplicate server_id: critical on each holder, with an unused id; server_id 0 too', () => {
  const findings = evaluateCluster(change(healthy(), 3, (i) => ({ ...i, obs: withSettings(i.obs, { serverId: 2 }) })));
  const f = one(findings, 3, 'server-id');
  assert.equal(f.severity, 'critical');
  assert.match(f.message, /server_id 2 is also used by n2 127\.0\.0\.1:3302/);
  assert.match(f.fix!, /on n3, SET GLOBAL server_id = 3;/);
  assert.equal(one(findings, 2, 'server-id').severity, 'critical');
  const zero = one(evaluateCluster(change(healthy(), 2, (i) => ({ ...i, obs: withSettings(i.obs, { serverId: 0 }) }))), 2, 'server-id');
  assert.match(zero.message, /server_id is 0/);
});

test('errant transactions on a replica: critical, named, the reclone fix, and the candidate avoids it', () => {
  const findings = evaluateCluster(change(healthy(), 2, (i) => ({ ...i, obs: replicaObs(2, '0-1-10,9-2-3') })));
  const f = one(findings, 2, 'errant-gtid');
  assert.equal(f.severity, 'critical');
  assert.match(f.message, /\(9-2-3\)/);
  assert.match(f.fix!, /regent repair n2 --reclone --config \/etc\/regent\/regent\.yaml/);
  assert.match(findings.find((x) => x.check === 'failover-candidate')!.message, /would promote n3 .*not n2 \(errant transactions 9-2-3\)/);
});

test('heartbeats: disabled or not shorter than confirmReplicaSilenceMs is critical, under two per window a warning, slow vs net timeout a warning', () => {
  const hb = (period: number, net = 10) => evaluateCluster(change(healthy(), 2, (i) => ({ ...i, obs: withSettings({ ...i.obs, replica: { ...i.obs.replica!, heartbeatPeriod: period } }, { slaveNetTimeout: net }) })));
  const off = one(hb(0), 2, 'heartbeat');
  assert.equal(off.severity, 'critical');
  assert.match(off.fix!, /^STOP SLAVE; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 0\.5; START SLAVE;$/);
  const slow = one(hb(30, 60), 2, 'heartbeat');
  assert.equal(slow.severity, 'critical');
  assert.match(slow.message, /heartbeat period 30 s is not shorter than failover\.confirmReplicaSilenceMs \(1200 ms\)/);
  assert.match(slow.fix!, /or raise failover\.confirmReplicaSilenceMs to at least 60000/);
  assert.equal(one(hb(0.8), 2, 'heartbeat').severity, 'warning');
  const net = one(hb(0.5, 0.8), 2, 'heartbeat');
  assert.equal(net.severity, 'warning');
  assert.match(net.message, /not well below slave_net_timeout \(0\.8 s\)/);
  // MySQL reports the period apart from the replica status.
  const mysql = change(healthy(), 3, (i) => ({ ...i, obs: { ...i.obs, flavor: 'mysql', replica: { ...i.obs.replica!, heartbeatPeriod: null } }, heartbeatPeriodSeconds: 5 }));
  assert.equal(one(evaluateCluster(mysql), 3, 'heartbeat').severity, 'critical');
});

test('the configured heartbeat period must fit the silence window too', () => {
  const c = cluster(3);
  const slowCfg = { ...c, replication: { ...c.replication, heartbeatPeriodSeconds: 2 } };
  const f = one(evaluateCluster(healthy(slowCfg)), undefined, 'heartbeat');
  assert.equal(f.severity, 'critical');
  assert.match(f.fix!, /replication\.heartbeatPeriodSeconds: 0\.6 \(or failover\.confirmReplicaSilenceMs: 4000\)/);
});

test('hang tolerance: shorter than 2 s or than the replica silence window is a warning; a replica net timeout within it too', () => {
  const c = cluster(3);
  const withTolerance = (ms: number, silence = c.failover.confirmReplicaSilenceMs) => ({ ...c, failover: { ...c.failover, hangToleranceMs: ms, confirmReplicaSilenceMs: silence } });
  // The default (3000 ms, slave_net_timeout 10 s in the healthy facts): ok on the cluster and every replica.
  const ok = evaluateCluster(healthy());
  assert.ok(ok.some((f) => f.check === 'hang-tolerance' && f.severity === 'ok' && /declared dead after 3000 ms/.test(f.message)), show(ok));
  assert.equal(notOk(ok).filter((f) => f.check === 'hang-tolerance').length, 0);

  const short = one(evaluateCluster(healthy(withTolerance(1500))), undefined, 'hang-tolerance');
  assert.equal(short.severity, 'warning');
  assert.match(short.message, /a primary that stalls for 2 s .* is failed over/);
  assert.match(short.fix!, /failover\.hangToleranceMs: 3000/);

  const belowWindow = one(evaluateCluster(healthy(withTolerance(2000, 2500))), undefined, 'hang-tolerance');
  assert.match(belowWindow.message, /shorter than failover\.confirmReplicaSilenceMs \(2500 ms\)/);

  // slave_net_timeout 10 s against a 12 s tolerance: each replica reconnects mid-stall.
  const long = evaluateCluster(healthy(withTolerance(12000)));
  for (const n of [2, 3]) {
    const f = one(long, n, 'hang-tolerance');
    assert.equal(f.severity, 'warning');
    assert.match(f.fix!, /SET GLOBAL slave_net_timeout = 14;/);
  }
});

test('a replica whose IO thread gets error 1045: critical, CHANGE MASTER with a placeholder', () => {
  const findings = evaluateCluster(
    change(healthy(), 3, (i) => ({
      ...i,
      obs: { ...i.obs, replica: { ...i.obs.replica!, ioThread: 'connecting', lastIoErrno: 1045, lastIoError: "error connecting to master 'repl@127.0.0.1:3301' - retry-time: 1 message: Access denied for user 'repl'@'localhost'" } },
    })),
  );
  const f = one(findings, 3, 'replication');
  assert.equal(f.severity, 'critical');
  assert.match(f.message, /cannot log in to its source n1 127\.0\.0\.1:3301 as 'repl' \(error 1045/);
  assert.equal(f.fix, "STOP SLAVE; CHANGE MASTER TO MASTER_USER = 'repl', MASTER_PASSWORD = '<REPLICATION_PASSWORD>'; START SLAVE; with <REPLICATION_PASSWORD> = credentials.replication.password");
  assert.equal(doctorExitCode(findings), 2);
});

test('the replication account: wrong password, missing account, missing privilege', () => {
  const wrong = one(evaluateCluster(change(healthy(), 1, (i) => ({ ...i, replicationAccountHosts: ['10.0.0.%'], replicationLogin: { ok: false, errorKind: 'auth', error: "127.0.0.1:3301: access denied for user 'repl'" } }))), 1, 'replication-account');
  assert.equal(wrong.severity, 'critical');
  assert.match(wrong.message, /rejects the configured password .*its replicas cannot reconnect to it/);
  assert.equal(wrong.fix, "put the account's real password in credentials.replication.password, or set it on every instance: SET SESSION sql_log_bin = 0; ALTER USER 'repl'@'10.0.0.%' IDENTIFIED BY '<REPLICATION_PASSWORD>';");
  const missing = one(evaluateCluster(change(healthy(), 2, (i) => ({ ...i, replicationAccountHosts: [], replicationLogin: { ok: false, errorKind: 'auth', error: 'denied' } }))), 2, 'replication-account');
  assert.match(missing.message, /does not exist here: if it is promoted, no replica can replicate from it/);
  assert.match(missing.fix!, /^SET SESSION sql_log_bin = 0; CREATE USER 'repl'@'%' IDENTIFIED BY '<REPLICATION_PASSWORD>'; GRANT REPLICATION SLAVE ON \*\.\* TO 'repl'@'%';/);
  const noPriv = one(evaluateCluster(change(healthy(), 2, (i) => ({ ...i, replicationLogin: { ok: true, privileges: ['USAGE'] } }))), 2, 'replication-account');
  assert.equal(noPriv.fix, "SET SESSION sql_log_bin = 0; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';");
});

test('a login refused from a host the replication account does not admit proves nothing: a warning, not critical', () => {
  const f = one(
    evaluateCluster(change(healthy(), 1, (i) => ({ ...i, clientHost: '10.9.0.5', replicationAccountHosts: ['10.0.1.%'], replicationLogin: { ok: false, errorKind: 'auth', error: 'denied' } }))),
    1,
    'replication-account',
  );
  assert.equal(f.severity, 'warning');
  assert.match(f.message, /admits only '10\.0\.1\.%', not this host \(10\.9\.0\.5\)/);
  // From an admitted host the same refusal is a wrong password.
  const g = one(
    evaluateCluster(change(healthy(), 1, (i) => ({ ...i, clientHost: '10.0.1.7', replicationAccountHosts: ['10.0.1.%'], replicationLogin: { ok: false, errorKind: 'auth', error: 'denied' } }))),
    1,
    'replication-account',
  );
  assert.equal(g.severity, 'critical');
});

test('where refused logins could block the account, its password is not tried: a warning says so', () => {
  const f = one(evaluateCluster(change(healthy(), 2, (i) => ({ ...i, replicationLogin: undefined, loginsSkipped: 'max_password_errors is 3: refused logins count towards blocking the account' }))), 2, 'replication-account');
  assert.equal(f.severity, 'warning');
  assert.match(f.message, /was not tried here: max_password_errors is 3/);
  assert.match(f.fix!, /IO thread error 1045 means a wrong password/);
});

test('account host patterns match as the server matches them', () => {
  assert.ok(hostMatches('%', '10.1.2.3'));
  assert.ok(hostMatches('10.0.1.%', '10.0.1.77'));
  assert.ok(!hostMatches('10.0.1.%', '10.0.2.1'));
  assert.ok(hostMatches('db_.example.com', 'db1.example.com'));
  assert.ok(!hostMatches('db_.example.com', 'db12.example.com'));
  assert.ok(hostMatches('10.0.0.0/255.255.0.0', '10.0.200.3'));
  assert.ok(!hostMatches('10.0.0.0/255.255.0.0', '10.1.0.3'));
  assert.ok(hostMatches('LOCALHOST', 'localhost'));
  assert.ok(!hostMatches('127.0.0.1', '127.0.0.10'));
});

test('the manager account: wrong password is critical; an unreachable replica a warning, an unreachable primary critical', () => {
  const auth = change(healthy(), 2, (i) => ({ ...i, connected: false, obs: { id: i.id, at: 1000, reachable: false, error: { kind: 'auth', message: `${i.id}: access denied for user 'regent': wrong password` } } }));
  const a = one(evaluateCluster(auth), 2, 'connect');
  assert.equal(a.severity, 'critical');
  assert.match(a.message, /^the manager account 'regent' cannot log in: access denied/);
  assert.match(a.fix!, /regent grants --config \/etc\/regent\/regent\.yaml/);

  const down = evaluateCluster(change(healthy(), 3, (i) => ({ ...i, connected: false, obs: deadObs(3) })));
  assert.equal(one(down, 3, 'connect').severity, 'warning');
  assert.match(one(down, 3, 'connect').fix!, /start the server/);

  const deadPrimary = evaluateCluster(change(healthy(), 1, (i) => ({ ...i, connected: false, obs: deadObs(1) })));
  assert.equal(one(deadPrimary, 1, 'connect').severity, 'critical');
});

const refusedLogin = (i: InstanceFacts): InstanceFacts => ({ ...i, connected: false, obs: { id: i.id, at: 1000, reachable: false, error: { kind: 'auth', message: `${i.id}: access denied for user 'regent': wrong password` } } });

test('every instance refuses the manager account: the headline is authentication with the password/grant fix, never "start the servers"', () => {
  const findings = evaluateCluster([1, 2, 3].reduce((f, n) => change(f, n, refusedLogin), healthy()));
  const first = notOk(findings)[0]!;
  assert.equal(first.check, 'authentication', show(findings));
  assert.equal(first.severity, 'critical');
  assert.equal(first.instance, undefined);
  assert.match(first.message, /^every instance refuses the manager account 'regent' \(access denied\)/);
  assert.match(first.fix!, /credentials\.manager .*user 'regent', password read from nowhere \(none is configured\); or create the account .*regent grants --config \/etc\/regent\/regent\.yaml/);
  // Nothing is concluded from the silence of servers that only refused a login.
  assert.equal(findings.filter((f) => f.check === 'topology' || f.check === 'failover-candidate').length, 0, show(findings));
  assert.doesNotMatch(show(findings), /start the server/);
  assert.equal(doctorExitCode(findings), 2);
  // The text report leads with it too.
  const text = renderDoctorText(doctorReport([{ name: 'c', findings }]));
  assert.match(text.split('\n')[1]!, /CRITICAL +\(cluster\) +authentication +every instance refuses/);
});

test('only the primary refuses the manager account: authentication first, and the topology finding points at the credentials, not the network', () => {
  const findings = evaluateCluster(change(healthy(), 1, refusedLogin));
  const bad = notOk(findings);
  assert.equal(bad[0]!.check, 'authentication', show(findings));
  assert.match(bad[0]!.message, /^n1 refuses the manager account 'regent' \(access denied\): it looks unreachable to Regent but may be running fine/);
  const topo = bad.find((f) => f.check === 'topology');
  assert.ok(topo, show(findings));
  assert.match(topo.message, /Regent's login is refused there/);
  assert.match(topo.fix!, /credentials\.manager/);
  assert.doesNotMatch(topo.fix!, /network|firewall|start the/);
});

test('settings: relay_log_recovery, binlog_format, log_slave_updates, read_only, semi-sync, binlog retention, clock', () => {
  const cases: { n: number; change: (i: InstanceFacts) => InstanceFacts; check: string; severity: 'warning' | 'critical'; message: RegExp; fix?: RegExp }[] = [
    { n: 2, change: (i) => ({ ...i, vars: { ...i.vars, relay_log_recovery: 'OFF' } }), check: 'relay-log-recovery', severity: 'warning', message: /relay_log_recovery is OFF/, fix: /relay_log_recovery=ON under \[mariadbd\]/ },
    { n: 2, change: (i) => ({ ...i, obs: withSettings(i.obs, { binlogFormat: 'MIXED' }) }), check: 'binlog-format', severity: 'warning', message: /binlog_format is MIXED/, fix: /SET GLOBAL binlog_format = ROW/ },
    { n: 3, change: (i) => ({ ...i, obs: withSettings(i.obs, { logReplicaUpdates: false }) }), check: 'log-replica-updates', severity: 'warning', message: /log_slave_updates is OFF/ },
    { n: 1, change: (i) => ({ ...i, obs: withSettings(i.obs, { logBin: false }) }), check: 'log-bin', severity: 'critical', message: /binary log is off on the primary/ },
    { n: 2, change: (i) => ({ ...i, obs: withSettings(i.obs, { logBin: false }) }), check: 'log-bin', severity: 'warning', message: /can never be promoted/ },
    { n: 3, change: (i) => ({ ...i, obs: withSettings(i.obs, { readOnly: false }) }), check: 'read-only', severity: 'warning', message: /read_only is OFF on a replica/, fix: /SET GLOBAL read_only = ON/ },
    { n: 1, change: (i) => ({ ...i, obs: withSettings(i.obs, { semiSyncPrimaryEnabled: false }) }), check: 'semi-sync', severity: 'warning', message: /semi-sync is off on the primary/, fix: /SET GLOBAL rpl_semi_sync_master_enabled = ON/ },
    { n: 1, change: (i) => ({ ...i, obs: { ...i.obs, semiSync: { primaryActive: false, primaryClients: 0, replicaActive: false } } }), check: 'semi-sync', severity: 'warning', message: /enabled but not active/, fix: /STOP SLAVE IO_THREAD; START SLAVE IO_THREAD/ },
    { n: 1, change: (i) => ({ ...i, obs: withSettings(i.obs, { semiSyncTimeoutMs: 200 }) }), check: 'semi-sync', severity: 'warning', message: /rpl_semi_sync_master_timeout is 200 ms/ },
    { n: 1, change: (i) => ({ ...i, obs: withSettings(i.obs, { semiSyncTimeoutMs: 3000 }) }), check: 'semi-sync', severity: 'warning', message: /but replication\.semiSyncTimeoutMs is 5000/ },
    { n: 2, change: (i) => ({ ...i, obs: withSettings(i.obs, { semiSyncReplicaEnabled: false }) }), check: 'semi-sync', severity: 'warning', message: /replica side of semi-sync is off/ },
    { n: 2, change: (i) => ({ ...i, obs: withSettings(i.obs, { semiSyncPrimaryEnabled: true }) }), check: 'semi-sync', severity: 'warning', message: /primary side of semi-sync is on although this is a replica/, fix: /SET GLOBAL rpl_semi_sync_master_enabled = OFF/ },
    { n: 2, change: (i) => ({ ...i, vars: { ...i.vars, binlog_expire_logs_seconds: '3600', expire_logs_days: '0.041667' } }), check: 'binlog-retention', severity: 'warning', message: /expire after 1 h/, fix: /SET GLOBAL binlog_expire_logs_seconds = 604800/ },
    { n: 3, change: (i) => ({ ...i, clock: { offsetMs: -1500, roundTripMs: 0.5 } }), check: 'clock', severity: 'warning', message: /1\.50 s behind this host's/ },
  ];
  for (const c of cases) {
    const findings = evaluateCluster(change(healthy(), c.n, c.change));
    const f = one(findings, c.n, c.check);
    assert.equal(f.severity, c.severity, `${c.check}: ${f.message}`);
    assert.match(f.message, c.message);
    if (c.fix) assert.match(f.fix ?? '', c.fix);
  }
  // Retention: 0 never expires, and expire_logs_days counts when the seconds are 0.
  assert.deepEqual(notOk(evaluateCluster(change(healthy(), 2, (i) => ({ ...i, vars: { ...i.vars, binlog_expire_logs_seconds: '0', expire_logs_days: '0' } })))), []);
  assert.deepEqual(notOk(evaluateCluster(change(healthy(), 2, (i) => ({ ...i, vars: { ...i.vars, binlog_expire_logs_seconds: '0', expire_logs_days: '3' } })))), []);
});

test('replication health and topology from the analysis: stopped, SQL error, lag, dead primary, outside source', () => {
  const stopped = one(evaluateCluster(change(healthy(), 2, (i) => ({ ...i, obs: { ...i.obs, replica: { ...i.obs.replica!, ioThread: 'no', sqlThread: false } } }))), 2, 'replication');
  assert.equal(stopped.severity, 'warning');
  assert.match(stopped.fix!, /^START SLAVE;/);
  const sqlError = one(evaluateCluster(change(healthy(), 3, (i) => ({ ...i, obs: { ...i.obs, replica: { ...i.obs.replica!, sqlThread: false, lastSqlErrno: 1062, lastSqlError: 'Duplicate entry' } } }))), 3, 'replication');
  assert.equal(sqlError.severity, 'critical');
  assert.match(sqlError.fix!, /regent repair n3 --retry/);
  const lag = one(evaluateCluster(change(healthy(), 3, (i) => ({ ...i, obs: { ...i.obs, replica: { ...i.obs.replica!, secondsBehind: 60 } } }))), 3, 'lag');
  assert.equal(lag.severity, 'warning');
  const elsewhere = evaluateCluster(change(healthy(), 3, (i) => ({ ...i, obs: { ...i.obs, replica: { ...i.obs.replica!, sourceHost: '10.9.9.9', sourcePort: 3306 } } })));
  assert.match(one(elsewhere, 3, 'replication').message, /outside the cluster/);

  const connecting = { ioThread: 'connecting' as const, lastIoErrno: 2003, lastIoError: "Can't connect" };
  const dead = change(change(change(healthy(), 1, (i) => ({ ...i, connected: false, obs: deadObs(1) })), 2, (i) => ({ ...i, obs: { ...i.obs, replica: { ...i.obs.replica!, ...connecting } } })), 3, (i) => ({ ...i, obs: { ...i.obs, replica: { ...i.obs.replica!, ...connecting } } }));
  const findings = evaluateCluster(dead);
  const topo = notOk(findings).find((f) => f.check === 'topology');
  assert.equal(topo?.severity, 'critical', show(findings));
  assert.match(topo!.message, /is dead/);
  assert.match(topo!.fix!, /regent failover c --dry-run/);
});

test('a single instance cannot fail over; no allowed replica is critical', () => {
  const single = cluster(1);
  const f = evaluateCluster({ ...healthy(single), instances: healthy(single).instances.slice(0, 1).map((i) => ({ ...i, obs: { ...i.obs, semiSync: { primaryActive: true, primaryClients: 0, replicaActive: false } } })) });
  assert.equal(one(f, undefined, 'failover-candidate').severity, 'warning');

  const never = cluster(3, { promotion: { 2: 'never', 3: 'never' } });
  const n = one(evaluateCluster(healthy(never)), undefined, 'failover-candidate');
  assert.equal(n.severity, 'critical');
  assert.match(n.message, /no replica could be promoted in a failover from n1 now: .*promotion rule is never/);
});

test('the text report: one line per finding, the fix under it, the exit code in the summary', () => {
  const findings = evaluateCluster(change(healthy(), 3, (i) => ({ ...i, obs: withSettings(i.obs, { gtidStrict: false }) })));
  const text = renderDoctorText(doctorReport([{ name: 'c', findings }]));
  assert.match(text, /^cluster c: 1 critical, 0 warning\(s\), \d+ ok$/m);
  assert.match(text, /CRITICAL {2}n3 127\.0\.0\.1:3303 +gtid-strict +gtid_strict_mode is OFF: /);
  assert.match(text, /\n +fix: SET GLOBAL gtid_strict_mode = ON;/);
  assert.match(text, /summary: 1 critical, 0 warning\(s\), \d+ ok: a failover would be unsafe or impossible: fix the CRITICAL findings first \(exit 2\)\n$/);
});
