import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MysqlGtidSet } from '../../src/gtid/index.ts';
import type { Row } from '../../src/sql/flavor.ts';
import { flavorForVersion } from '../../src/sql/flavors.ts';
import { UnsupportedServerError } from '../../src/errors.ts';
import { MariadbFlavor } from '../../src/sql/mariadb/mariadb-flavor.ts';
import { MysqlFlavor } from '../../src/sql/mysql/mysql-flavor.ts';
import { foldVariables } from '../../src/sql/row-values.ts';
import { Secret } from '../../src/util/secret.ts';

// Server uuids: the primary (db1) and the replica (db2) that these rows were taken from.
const PRIMARY = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const REPLICA = '8a94f357-aab4-11df-86ab-c80aa9429562';
const OTHER = 'd3b8c2e0-0000-4000-8000-000000000003';

const mysql80 = new MysqlFlavor({ major: 8, minor: 0, patch: 36 });
const mysql8025 = new MysqlFlavor({ major: 8, minor: 0, patch: 25 });
const mysql84 = new MysqlFlavor({ major: 8, minor: 4, patch: 5 });

/**
 * SHOW REPLICA STATUS as mysql2 returns it with supportBigNumbers + bigNumberStrings: LONG
 * columns (ports, errnos, server ids, delays) as numbers, LONGLONG columns (positions,
 * Seconds_Behind_Source) as strings, NULL as null, multi-line GTID sets as the server prints them.
 */
function replicaRow(overrides: Row = {}): Row {
  return {
    Replica_IO_State: 'Waiting for source to send event',
    Source_Host: 'db1.internal',
    Source_User: 'repl',
    Source_Port: 3306,
    Connect_Retry: 1,
    Source_Log_File: 'binlog.000007',
    Read_Source_Log_Pos: '48213377',
    Relay_Log_File: 'db2-relay-bin.000012',
    Relay_Log_Pos: '48213593',
    Relay_Source_Log_File: 'binlog.000007',
    Replica_IO_Running: 'Yes',
    Replica_SQL_Running: 'Yes',
    Replicate_Do_DB: '',
    Replicate_Ignore_DB: '',
    Replicate_Do_Table: '',
    Replicate_Ignore_Table: '',
    Replicate_Wild_Do_Table: '',
    Replicate_Wild_Ignore_Table: '',
    Last_Errno: 0,
    Last_Error: '',
    Skip_Counter: 0,
    Exec_Source_Log_Pos: '48213377',
    Relay_Log_Space: '48214012',
    Until_Condition: 'None',
    Until_Log_File: '',
    Until_Log_Pos: '0',
    Source_SSL_Allowed: 'No',
    Source_SSL_CA_File: '',
    Source_SSL_CA_Path: '',
    Source_SSL_Cert: '',
    Source_SSL_Cipher: '',
    Source_SSL_Key: '',
    Seconds_Behind_Source: '0',
    Source_SSL_Verify_Server_Cert: 'No',
    Last_IO_Errno: 0,
    Last_IO_Error: '',
    Last_SQL_Errno: 0,
    Last_SQL_Error: '',
    Replicate_Ignore_Server_Ids: '',
    Source_Server_Id: 101,
    Source_UUID: PRIMARY,
    Source_Info_File: 'mysql.slave_master_info',
    SQL_Delay: 0,
    SQL_Remaining_Delay: null,
    Replica_SQL_Running_State: 'Replica has read all relay log; waiting for more updates',
    Source_Retry_Count: '86400',
    Source_Bind: '',
    Last_IO_Error_Timestamp: '',
    Last_SQL_Error_Timestamp: '',
    Source_SSL_Crl: '',
    Source_SSL_Crlpath: '',
    Retrieved_Gtid_Set: `${PRIMARY}:1042-1187`,
    Executed_Gtid_Set: `${PRIMARY}:1-1187,\n${REPLICA}:1-5`,
    Auto_Position: 1,
    Replicate_Rewrite_DB: '',
    Channel_Name: '',
    Source_TLS_Version: '',
    Source_public_key_path: '',
    Get_Source_public_key: 1,
    Network_Namespace: '',
    ...overrides,
  };
}

// --- SHOW REPLICA STATUS ------------------------------------------------------

test('mysql: parses a healthy replica', () => {
  const st = mysql80.parseReplicaStatus([replicaRow()]);
  assert.ok(st);
  assert.equal(st.sourceHost, 'db1.internal');
  assert.equal(st.sourcePort, 3306);
  assert.equal(st.ioThread, 'yes');
  assert.equal(st.sqlThread, true);
  assert.equal(st.lastIoErrno, 0);
  assert.equal(st.lastIoError, '');
  assert.equal(st.lastSqlErrno, 0);
  assert.equal(st.lastSqlError, '');
  assert.equal(st.secondsBehind, 0);
  assert.equal(st.sqlDelay, 0);
  assert.equal(st.usesGtid, true);
  assert.equal(st.readSourceLogFile, 'binlog.000007');
  assert.equal(st.readSourceLogPos, 48213377n);
  assert.equal(st.receivedHeartbeats, null);
  assert.equal(st.heartbeatPeriod, null);
  assert.equal(st.sourceServerId, 101);
  // The GTID origin of the source is its server_uuid, not its server id.
  assert.equal(st.sourceOrigin, PRIMARY);
  assert.equal(st.receivedGtid.flavor, 'mysql');
  // Retrieved ∪ Executed: never behind what the replica has applied.
  assert.equal(st.receivedGtid.toString(), `${PRIMARY}:1-1187,${REPLICA}:1-5`);
});

test('mysql: received GTIDs are not empty after a restart emptied Retrieved_Gtid_Set', () => {
  const st = mysql80.parseReplicaStatus([
    replicaRow({ Retrieved_Gtid_Set: '', Executed_Gtid_Set: `${PRIMARY}:1-1187` }),
  ]);
  assert.ok(st);
  assert.ok(st.receivedGtid.equals(MysqlGtidSet.parse(`${PRIMARY}:1-1187`)));
});

test('mysql: received GTIDs include what was retrieved but not yet applied', () => {
  const st = mysql80.parseReplicaStatus([
    replicaRow({ Retrieved_Gtid_Set: `${PRIMARY}:1100-1250`, Executed_Gtid_Set: `${PRIMARY}:1-1187` }),
  ]);
  assert.ok(st);
  assert.equal(st.receivedGtid.toString(), `${PRIMARY}:1-1250`);
});

test('mysql: parses an IO thread that cannot reach its source', () => {
  const st = mysql80.parseReplicaStatus([
    replicaRow({
      Replica_IO_State: 'Reconnecting after a failed source event read',
      Replica_IO_Running: 'Connecting',
      Seconds_Behind_Source: null,
      Last_IO_Errno: 2003,
      Last_IO_Error:
        "Error reconnecting to source 'repl@db1.internal:3306'. This was attempt 3/86400, with a delay of 1 seconds between attempts. Message: Can't connect to MySQL server on 'db1.internal:3306' (111)",
      Last_IO_Error_Timestamp: '240612 14:03:27',
    }),
  ]);
  assert.ok(st);
  assert.equal(st.ioThread, 'connecting');
  assert.equal(st.sqlThread, true);
  assert.equal(st.lastIoErrno, 2003);
  assert.match(st.lastIoError, /Can't connect to MySQL server on 'db1.internal:3306' \(111\)/);
  assert.equal(st.secondsBehind, null);
  assert.equal(st.lastSqlErrno, 0);
});

test('mysql: parses a stopped SQL thread with a duplicate-key error', () => {
  const error =
    "Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 1 failed executing transaction '3e11fa47-71ca-11e1-9e33-c80aa9429562:1188' at source log binlog.000007, end_log_pos 48213690. See error log and/or performance_schema.replication_applier_status_by_worker table for more details about this failure or others, if any.";
  const st = mysql80.parseReplicaStatus([
    replicaRow({
      Replica_SQL_Running: 'No',
      Seconds_Behind_Source: null,
      Last_Errno: 1062,
      Last_Error: error,
      Last_SQL_Errno: 1062,
      Last_SQL_Error: error,
      Last_SQL_Error_Timestamp: '240612 14:05:11',
      Replica_SQL_Running_State: '',
      Read_Source_Log_Pos: '48214102',
      Retrieved_Gtid_Set: `${PRIMARY}:1042-1190`,
    }),
  ]);
  assert.ok(st);
  assert.equal(st.ioThread, 'yes');
  assert.equal(st.sqlThread, false);
  assert.equal(st.lastSqlErrno, 1062);
  assert.equal(st.lastSqlError, error);
  assert.equal(st.secondsBehind, null);
  assert.equal(st.readSourceLogPos, 48214102n);
  assert.equal(st.receivedGtid.toString(), `${PRIMARY}:1-1190,${REPLICA}:1-5`);
});

test('mysql: a stopped replica with a delay reports no for both threads', () => {
  const st = mysql80.parseReplicaStatus([
    replicaRow({ Replica_IO_Running: 'No', Replica_SQL_Running: 'No', Seconds_Behind_Source: null, SQL_Delay: 3600 }),
  ]);
  assert.ok(st);
  assert.equal(st.ioThread, 'no');
  assert.equal(st.sqlThread, false);
  assert.equal(st.sqlDelay, 3600);
});

test('mysql: multi-source result picks the default channel', () => {
  const reporting = replicaRow({
    Source_Host: 'warehouse.internal',
    Source_Port: 3307,
    Source_Server_Id: 900,
    Source_UUID: OTHER,
    Channel_Name: 'reporting',
    Replica_IO_Running: 'No',
    Retrieved_Gtid_Set: `${OTHER}:1-50`,
  });
  const main = replicaRow();
  const st = mysql80.parseReplicaStatus([reporting, main]);
  assert.ok(st);
  assert.equal(st.sourceHost, 'db1.internal');
  assert.equal(st.sourcePort, 3306);
  assert.equal(st.sourceServerId, 101);
  assert.equal(st.ioThread, 'yes');
});

test('mysql: not a replica when there is no row', () => {
  assert.equal(mysql80.parseReplicaStatus([]), undefined);
});

test('mysql: several named channels and no default channel is not a replica of anyone in particular', () => {
  const a = replicaRow({ Channel_Name: 'a' });
  const b = replicaRow({ Channel_Name: 'b' });
  assert.equal(mysql80.parseReplicaStatus([a, b]), undefined);
});

// --- SHOW VARIABLES / SHOW STATUS --------------------------------------------

test('mysql: variables query names both spellings of renamed variables', () => {
  for (const name of [
    'server_id',
    'server_uuid',
    'super_read_only',
    'log_replica_updates',
    'log_slave_updates',
    'gtid_mode',
    'enforce_gtid_consistency',
    'gtid_executed',
    'rpl_semi_sync_source_enabled',
    'rpl_semi_sync_master_enabled',
    'rpl_semi_sync_replica_enabled',
    'rpl_semi_sync_slave_enabled',
    'rpl_semi_sync_source_timeout',
    'rpl_semi_sync_master_timeout',
    'replica_net_timeout',
    'slave_net_timeout',
  ]) {
    assert.ok(mysql80.variablesQuery.includes(`'${name}'`), name);
  }
  assert.match(mysql80.variablesQuery, /^SHOW GLOBAL VARIABLES WHERE Variable_name IN \(/);
  assert.match(mysql80.statusQuery, /^SHOW GLOBAL STATUS WHERE Variable_name IN \(/);
  for (const name of ['Rpl_semi_sync_source_status', 'Rpl_semi_sync_master_clients', 'Rpl_semi_sync_replica_status', 'Rpl_semi_sync_slave_status']) {
    assert.ok(mysql80.statusQuery.includes(`'${name}'`), name);
  }
  assert.equal(mysql80.replicaStatusQuery, 'SHOW REPLICA STATUS');
  assert.equal(mysql80.name, 'mysql');
});

/** SHOW GLOBAL VARIABLES of an 8.0.25 replica with the semisync_master/slave plugins. */
const vars8025 = foldVariables([
  { Variable_name: 'binlog_format', Value: 'ROW' },
  { Variable_name: 'enforce_gtid_consistency', Value: 'ON' },
  { Variable_name: 'gtid_executed', Value: `${PRIMARY}:1-1187,\n${REPLICA}:1-5` },
  { Variable_name: 'gtid_mode', Value: 'ON' },
  { Variable_name: 'log_bin', Value: 'ON' },
  { Variable_name: 'log_slave_updates', Value: 'ON' },
  { Variable_name: 'read_only', Value: 'ON' },
  { Variable_name: 'rpl_semi_sync_master_enabled', Value: 'OFF' },
  { Variable_name: 'rpl_semi_sync_master_timeout', Value: '10000' },
  { Variable_name: 'rpl_semi_sync_slave_enabled', Value: 'ON' },
  { Variable_name: 'server_id', Value: '102' },
  { Variable_name: 'server_uuid', Value: '8A94F357-AAB4-11DF-86AB-C80AA9429562' },
  { Variable_name: 'slave_net_timeout', Value: '60' },
  { Variable_name: 'super_read_only', Value: 'ON' },
  { Variable_name: 'version', Value: '8.0.25' },
]);

/** SHOW GLOBAL VARIABLES of an 8.4 primary with semisync_source/replica. */
const vars84 = foldVariables([
  { Variable_name: 'binlog_format', Value: 'ROW' },
  { Variable_name: 'enforce_gtid_consistency', Value: 'ON' },
  { Variable_name: 'gtid_executed', Value: `${PRIMARY}:1-2000` },
  { Variable_name: 'gtid_mode', Value: 'ON' },
  { Variable_name: 'log_bin', Value: 'ON' },
  { Variable_name: 'log_replica_updates', Value: 'ON' },
  { Variable_name: 'read_only', Value: 'OFF' },
  { Variable_name: 'replica_net_timeout', Value: '30' },
  { Variable_name: 'rpl_semi_sync_replica_enabled', Value: 'ON' },
  { Variable_name: 'rpl_semi_sync_source_enabled', Value: 'ON' },
  { Variable_name: 'rpl_semi_sync_source_timeout', Value: '2000' },
  { Variable_name: 'server_id', Value: '101' },
  { Variable_name: 'server_uuid', Value: PRIMARY },
  { Variable_name: 'super_read_only', Value: 'OFF' },
  { Variable_name: 'version', Value: '8.4.5' },
]);

test('mysql: settings of an 8.0.25 replica (old variable names)', () => {
  assert.deepEqual(mysql8025.parseSettings(vars8025), {
    serverId: 102,
    gtidOrigin: REPLICA,
    version: '8.0.25',
    readOnly: true,
    superReadOnly: true,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'ROW',
    gtidStrict: true,
    semiSyncPrimaryEnabled: false,
    semiSyncReplicaEnabled: true,
    semiSyncTimeoutMs: 10000,
    slaveNetTimeout: 60,
  });
});

test('mysql: settings of an 8.4 primary (new variable names)', () => {
  assert.deepEqual(mysql84.parseSettings(vars84), {
    serverId: 101,
    gtidOrigin: PRIMARY,
    version: '8.4.5',
    readOnly: false,
    superReadOnly: false,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'ROW',
    gtidStrict: true,
    semiSyncPrimaryEnabled: true,
    semiSyncReplicaEnabled: true,
    semiSyncTimeoutMs: 2000,
    slaveNetTimeout: 30,
  });
});

test('mysql: gtid_mode short of ON or no semi-sync plugin', () => {
  const s = mysql80.parseSettings({ ...vars8025, gtid_mode: 'ON_PERMISSIVE' });
  assert.equal(s.gtidStrict, false);
  assert.equal(mysql80.parseSettings({ ...vars8025, enforce_gtid_consistency: 'WARN' }).gtidStrict, false);
  const noPlugin: Record<string, string> = { ...vars84 };
  delete noPlugin['rpl_semi_sync_source_enabled'];
  delete noPlugin['rpl_semi_sync_replica_enabled'];
  delete noPlugin['rpl_semi_sync_source_timeout'];
  const p = mysql84.parseSettings(noPlugin);
  assert.equal(p.semiSyncPrimaryEnabled, false);
  assert.equal(p.semiSyncReplicaEnabled, false);
  assert.equal(p.semiSyncTimeoutMs, null);
});

test('mysql: one GTID set serves as executed, binlog and replicated', () => {
  const g = mysql8025.parseGtids(vars8025);
  assert.equal(g.executed.toString(), `${PRIMARY}:1-1187,${REPLICA}:1-5`);
  assert.ok(g.binlog.equals(g.executed));
  assert.ok(g.replicated.equals(g.executed));
  assert.equal(g.executed.flavor, 'mysql');
  assert.ok(mysql84.parseGtids({ ...vars84, gtid_executed: '' }).executed.isEmpty());
});

test('mysql: semi-sync status with new and old names', () => {
  const newNames = foldVariables([
    { Variable_name: 'Rpl_semi_sync_replica_status', Value: 'OFF' },
    { Variable_name: 'Rpl_semi_sync_source_clients', Value: '2' },
    { Variable_name: 'Rpl_semi_sync_source_status', Value: 'ON' },
  ]);
  assert.deepEqual(mysql84.parseSemiSync(newNames), { primaryActive: true, primaryClients: 2, replicaActive: false });
  const oldNames = foldVariables([
    { Variable_name: 'Rpl_semi_sync_master_clients', Value: '0' },
    { Variable_name: 'Rpl_semi_sync_master_status', Value: 'OFF' },
    { Variable_name: 'Rpl_semi_sync_slave_status', Value: 'ON' },
  ]);
  assert.deepEqual(mysql8025.parseSemiSync(oldNames), { primaryActive: false, primaryClients: 0, replicaActive: true });
  assert.deepEqual(mysql84.parseSemiSync({}), { primaryActive: false, primaryClients: 0, replicaActive: false });
});

test('mysql: parseGtid gives a MySQL set', () => {
  const g = mysql80.parseGtid(`${PRIMARY}:1-10:12`);
  assert.ok(g instanceof MysqlGtidSet);
  assert.equal(g.toString(), `${PRIMARY}:1-10:12`);
});

// --- generated statements -----------------------------------------------------

test('mysql: replication control statements', () => {
  for (const f of [mysql8025, mysql84]) {
    assert.deepEqual(f.setReadOnly(true), ['SET GLOBAL super_read_only = ON']);
    assert.deepEqual(f.setReadOnly(false), ['SET GLOBAL super_read_only = OFF', 'SET GLOBAL read_only = OFF']);
    assert.equal(f.stopReplica(), 'STOP REPLICA');
    assert.equal(f.stopReplicaIoThread(), 'STOP REPLICA IO_THREAD');
    assert.equal(f.startReplica(), 'START REPLICA');
    assert.equal(f.resetReplica(), 'RESET REPLICA ALL');
  }
});

test('mysql: changeSource sends the password only as a parameter', () => {
  const password = 'S3cr3t-repl-pw!';
  for (const startFrom of ['replica-position', 'all-executed'] as const) {
    const { sql, params } = mysql84.changeSource({
      host: 'db1.internal',
      port: 3306,
      user: 'repl',
      password: new Secret(password, 'env REGENT_REPL_PASSWORD'),
      heartbeatPeriodSeconds: 0.5,
      startFrom,
    });
    assert.equal(
      sql,
      'CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, ' +
        'SOURCE_HEARTBEAT_PERIOD = ?, SOURCE_CONNECT_RETRY = 1, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1',
    );
    assert.ok(!sql.includes(password));
    assert.deepEqual(params, ['db1.internal', 3306, 'repl', password, 0.5]);
  }
  const noPassword = mysql84.changeSource({ host: 'h', port: 3307, user: 'u', heartbeatPeriodSeconds: 1, startFrom: 'replica-position' });
  assert.deepEqual(noPassword.params, ['h', 3307, 'u', '', 1]);
});

test('mysql: waitForGtid uses WAIT_FOR_EXECUTED_GTID_SET', () => {
  const gtid = MysqlGtidSet.parse(`${REPLICA}:1-5,\n${PRIMARY}:1-1187`);
  assert.deepEqual(mysql80.waitForGtid(gtid, 30), {
    sql: 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS result',
    params: [`${PRIMARY}:1-1187,${REPLICA}:1-5`, 30],
  });
});

test('mysql: semi-sync role statements follow the version', () => {
  assert.deepEqual(mysql8025.semiSyncRole('primary', 1500.7), [
    'SET GLOBAL rpl_semi_sync_master_timeout = 1500',
    'SET GLOBAL rpl_semi_sync_master_enabled = ON',
    'SET GLOBAL rpl_semi_sync_slave_enabled = ON',
  ]);
  assert.deepEqual(mysql8025.semiSyncRole('replica', 1500), [
    'SET GLOBAL rpl_semi_sync_master_enabled = OFF',
    'SET GLOBAL rpl_semi_sync_slave_enabled = ON',
  ]);
  const mysql8026 = new MysqlFlavor({ major: 8, minor: 0, patch: 26 });
  for (const f of [mysql8026, mysql84]) {
    assert.deepEqual(f.semiSyncRole('primary', 2000), [
      'SET GLOBAL rpl_semi_sync_source_timeout = 2000',
      'SET GLOBAL rpl_semi_sync_source_enabled = ON',
      'SET GLOBAL rpl_semi_sync_replica_enabled = ON',
    ]);
    assert.deepEqual(f.semiSyncRole('replica', 2000), [
      'SET GLOBAL rpl_semi_sync_source_enabled = OFF',
      'SET GLOBAL rpl_semi_sync_replica_enabled = ON',
    ]);
  }
});

test('mysql: setGtidPosition resets the binary logs, then sets gtid_purged', () => {
  const gtid = MysqlGtidSet.parse(`${PRIMARY}:1-2000`);
  assert.deepEqual(mysql80.setGtidPosition(gtid), [
    { sql: 'RESET MASTER', params: [] },
    { sql: 'SET GLOBAL gtid_purged = ?', params: [`${PRIMARY}:1-2000`] },
  ]);
  assert.deepEqual(mysql84.setGtidPosition(gtid), [
    { sql: 'RESET BINARY LOGS AND GTIDS', params: [] },
    { sql: 'SET GLOBAL gtid_purged = ?', params: [`${PRIMARY}:1-2000`] },
  ]);
});

test('mysql: resetHistoryTo forgets the binary logs and restarts gtid_executed at the position (8.4: RESET BINARY LOGS AND GTIDS)', () => {
  const gtid = MysqlGtidSet.parse(`${PRIMARY}:1-1500`);
  assert.deepEqual(mysql84.resetHistoryTo(gtid), [
    { sql: 'RESET BINARY LOGS AND GTIDS', params: [] },
    { sql: 'SET GLOBAL gtid_purged = ?', params: [`${PRIMARY}:1-1500`] },
  ]);
  // RESET MASTER is gone in 8.4: no statement of the 8.4 flavor may use it.
  const all = [...mysql84.resetHistoryTo(gtid), ...mysql84.setGtidPosition(gtid)].map((x) => x.sql);
  assert.ok(all.every((sql) => !/RESET MASTER/.test(sql)), all.join('; '));
  assert.equal(mysql80.resetHistoryTo(gtid)[0]!.sql, 'RESET MASTER');
});

test('mysql: the family carries no rewind or clone tool, the heartbeat query, and logs CREATE USER without a hash', () => {
  const f = mysql84.family;
  assert.equal(f.name, 'mysql');
  assert.equal(f.displayName, 'MySQL');
  assert.equal(f.rewind, undefined);
  assert.equal(f.clone, undefined);
  assert.deepEqual(f.grants.clone, []);
  assert.match(f.heartbeatPeriodQuery!, /performance_schema\.replication_connection_configuration/);
  assert.deepEqual(f.grants.createReplicationUser('repl', '%', 'pw'), { sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', params: ['repl', '%', 'pw'] });
  assert.ok(f.grants.failover.has('REPLICATION_SLAVE_ADMIN'));
  assert.equal(f.doctor.setReadOnly(true), 'SET GLOBAL super_read_only = ON;');
  assert.equal(f.doctor.startReplica, 'START REPLICA');
  assert.equal(f.doctor.changeHeartbeat(0.5), 'STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD = 0.5; START REPLICA;');
  assert.equal(f.doctor.netTimeout({ replica_net_timeout: '60' }), 'replica_net_timeout');
  assert.equal(f.doctor.netTimeout({ slave_net_timeout: '60' }), 'slave_net_timeout');
});

// --- flavorForVersion ---------------------------------------------------------

test('flavorForVersion: MySQL 8.0 and 8.4 give the mysql flavor', () => {
  const f = flavorForVersion('8.0.36 MySQL Community Server - GPL');
  assert.ok(f instanceof MysqlFlavor);
  assert.equal(f.name, 'mysql');
  assert.deepEqual(f.version, { major: 8, minor: 0, patch: 36 });
  assert.equal(flavorForVersion('8.4.5').name, 'mysql');
  assert.equal(flavorForVersion('8.0.23').name, 'mysql');
});

test('flavorForVersion: MySQL older than 8.0.23 is refused with a clear error', () => {
  assert.throws(
    () => flavorForVersion('5.7.44'),
    (e: unknown) => e instanceof UnsupportedServerError && /MySQL 5\.7\.44 is not supported/.test(e.message) && /8\.0\.23 or later/.test(e.message),
  );
  assert.throws(() => flavorForVersion('8.0.22-log'), UnsupportedServerError);
  assert.throws(() => flavorForVersion('not a version'), UnsupportedServerError);
});

test('flavorForVersion: a MariaDB version string gives the mariadb flavor', () => {
  const f = flavorForVersion('10.11.19-MariaDB-0+deb12u1-log Debian 12');
  assert.ok(f instanceof MariadbFlavor);
  assert.equal(f.name, 'mariadb');
});
