import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MariaGtidPosition } from '../../src/gtid/index.ts';
import type { Row } from '../../src/sql/flavor.ts';
import { MariadbFlavor } from '../../src/sql/mariadb/mariadb-flavor.ts';
import { foldVariables } from '../../src/sql/row-values.ts';
import { Secret } from '../../src/util/secret.ts';

const maria = new MariadbFlavor();

/**
 * One connection of SHOW ALL SLAVES STATUS (MariaDB 10.11) as mysql2 returns it with
 * supportBigNumbers + bigNumberStrings: LONG columns as numbers, LONGLONG columns (positions,
 * Seconds_Behind_Master, heartbeat counter) as strings, NULL as null.
 */
function slaveRow(overrides: Row = {}): Row {
  return {
    Connection_name: '',
    Slave_SQL_State: 'Slave has read all relay log; waiting for more updates',
    Slave_IO_State: 'Waiting for master to send event',
    Master_Host: 'db1.internal',
    Master_User: 'repl',
    Master_Port: 3306,
    Connect_Retry: 1,
    Master_Log_File: 'mariadb-bin.000004',
    Read_Master_Log_Pos: '91827364',
    Relay_Log_File: 'db2-relay-bin.000009',
    Relay_Log_Pos: '91827665',
    Relay_Master_Log_File: 'mariadb-bin.000004',
    Slave_IO_Running: 'Yes',
    Slave_SQL_Running: 'Yes',
    Replicate_Rewrite_DB: '',
    Replicate_Do_DB: '',
    Replicate_Ignore_DB: '',
    Replicate_Do_Table: '',
    Replicate_Ignore_Table: '',
    Replicate_Wild_Do_Table: '',
    Replicate_Wild_Ignore_Table: '',
    Last_Errno: 0,
    Last_Error: '',
    Skip_Counter: 0,
    Exec_Master_Log_Pos: '91827364',
    Relay_Log_Space: '91828089',
    Until_Condition: 'None',
    Until_Log_File: '',
    Until_Log_Pos: '0',
    Master_SSL_Allowed: 'No',
    Master_SSL_CA_File: '',
    Master_SSL_CA_Path: '',
    Master_SSL_Cert: '',
    Master_SSL_Cipher: '',
    Master_SSL_Key: '',
    Seconds_Behind_Master: '0',
    Master_SSL_Verify_Server_Cert: 'No',
    Last_IO_Errno: 0,
    Last_IO_Error: '',
    Last_SQL_Errno: 0,
    Last_SQL_Error: '',
    Replicate_Ignore_Server_Ids: '',
    Master_Server_Id: 1,
    Master_SSL_Crl: '',
    Master_SSL_Crlpath: '',
    Using_Gtid: 'Slave_Pos',
    Gtid_IO_Pos: '0-1-48213',
    Replicate_Do_Domain_Ids: '',
    Replicate_Ignore_Domain_Ids: '',
    Parallel_Mode: 'optimistic',
    SQL_Delay: 0,
    SQL_Remaining_Delay: null,
    Slave_SQL_Running_State: 'Slave has read all relay log; waiting for more updates',
    Slave_DDL_Groups: '12',
    Slave_Non_Transactional_Groups: '0',
    Slave_Transactional_Groups: '48201',
    Retried_transactions: '0',
    Max_relay_log_size: '1073741824',
    Executed_log_entries: '144690',
    Slave_received_heartbeats: '1742',
    Slave_heartbeat_period: '0.500',
    Gtid_Slave_Pos: '0-1-48213,7-30-912',
    ...overrides,
  };
}

/** A second, named connection from a reporting warehouse: Regent must not look at it. */
const warehouseRow = slaveRow({
  Connection_name: 'warehouse',
  Slave_SQL_State: '',
  Slave_IO_State: '',
  Master_Host: 'warehouse.internal',
  Master_User: 'etl',
  Master_Port: 3310,
  Master_Log_File: 'wh-bin.000120',
  Read_Master_Log_Pos: '555',
  Relay_Log_File: 'db2-relay-bin-warehouse.000002',
  Relay_Log_Pos: '4',
  Relay_Master_Log_File: 'wh-bin.000120',
  Slave_IO_Running: 'No',
  Slave_SQL_Running: 'No',
  Exec_Master_Log_Pos: '555',
  Seconds_Behind_Master: null,
  Master_Server_Id: 30,
  Using_Gtid: 'No',
  Gtid_IO_Pos: '',
  Slave_received_heartbeats: '0',
  Slave_heartbeat_period: '60.000',
});

// --- SHOW ALL SLAVES STATUS -----------------------------------------------------

test('mariadb: parses the default connection and ignores the named one', () => {
  const st = maria.parseReplicaStatus([slaveRow(), warehouseRow]);
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
  assert.equal(st.receivedGtid.flavor, 'mariadb');
  assert.ok(st.receivedGtid.equals(MariaGtidPosition.parse('0-1-48213')));
  assert.equal(st.readSourceLogFile, 'mariadb-bin.000004');
  assert.equal(st.readSourceLogPos, 91827364n);
  assert.equal(st.receivedHeartbeats, 1742n);
  assert.equal(st.heartbeatPeriod, 0.5);
  assert.equal(st.sourceServerId, 1);
  assert.equal(st.sourceOrigin, '1');
});

test('mariadb: the named connection is ignored whatever the row order', () => {
  const st = maria.parseReplicaStatus([warehouseRow, slaveRow()]);
  assert.ok(st);
  assert.equal(st.sourceHost, 'db1.internal');
  assert.equal(st.receivedHeartbeats, 1742n);
});

test('mariadb: only a named connection means not a replica', () => {
  assert.equal(maria.parseReplicaStatus([warehouseRow]), undefined);
  assert.equal(maria.parseReplicaStatus([]), undefined);
});

test('mariadb: an IO thread that cannot connect and an SQL error', () => {
  const st = maria.parseReplicaStatus([
    slaveRow({
      Slave_IO_State: 'Reconnecting after a failed master event read',
      Slave_IO_Running: 'Connecting',
      Slave_SQL_Running: 'No',
      Seconds_Behind_Master: null,
      Last_IO_Errno: 2003,
      Last_IO_Error: "error reconnecting to master 'repl@db1.internal:3306' - retry-time: 1  maximum-retries: 100000  message: Can't connect to server on 'db1.internal' (111 \"Connection refused\")",
      Last_Errno: 1062,
      Last_Error: "Could not execute Write_rows_v1 event on table app.orders; Duplicate entry '4711' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mariadb-bin.000004, end_log_pos 91827901",
      Last_SQL_Errno: 1062,
      Last_SQL_Error: "Could not execute Write_rows_v1 event on table app.orders; Duplicate entry '4711' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mariadb-bin.000004, end_log_pos 91827901",
      SQL_Delay: 600,
      Using_Gtid: 'Current_Pos',
    }),
  ]);
  assert.ok(st);
  assert.equal(st.ioThread, 'connecting');
  assert.equal(st.sqlThread, false);
  assert.equal(st.lastIoErrno, 2003);
  assert.match(st.lastIoError, /Can't connect to server on 'db1.internal'/);
  assert.equal(st.lastSqlErrno, 1062);
  assert.match(st.lastSqlError, /Duplicate entry '4711'/);
  assert.equal(st.secondsBehind, null);
  assert.equal(st.sqlDelay, 600);
  assert.equal(st.usesGtid, true);
});

test('mariadb: binlog-position replication and a server without the heartbeat columns', () => {
  const row = slaveRow({ Using_Gtid: 'No', Gtid_IO_Pos: '' });
  delete row['Slave_received_heartbeats'];
  delete row['Slave_heartbeat_period'];
  const st = maria.parseReplicaStatus([row]);
  assert.ok(st);
  assert.equal(st.usesGtid, false);
  assert.ok(st.receivedGtid.isEmpty());
  assert.equal(st.receivedHeartbeats, null);
  assert.equal(st.heartbeatPeriod, null);
});

// --- SHOW VARIABLES / SHOW STATUS ----------------------------------------------

/** SHOW GLOBAL VARIABLES of a MariaDB 10.11 primary that was a replica before (gtid_slave_pos lags). */
const vars = foldVariables([
  { Variable_name: 'binlog_format', Value: 'mixed' },
  { Variable_name: 'gtid_binlog_pos', Value: '0-1-48213,7-30-900' },
  { Variable_name: 'gtid_slave_pos', Value: '0-2-40000,7-30-912' },
  { Variable_name: 'gtid_strict_mode', Value: 'ON' },
  { Variable_name: 'log_bin', Value: 'ON' },
  { Variable_name: 'log_slave_updates', Value: 'ON' },
  { Variable_name: 'read_only', Value: 'OFF' },
  { Variable_name: 'rpl_semi_sync_master_enabled', Value: 'ON' },
  { Variable_name: 'rpl_semi_sync_master_timeout', Value: '3000' },
  { Variable_name: 'rpl_semi_sync_slave_enabled', Value: 'ON' },
  { Variable_name: 'server_id', Value: '1' },
  { Variable_name: 'slave_net_timeout', Value: '20' },
  { Variable_name: 'version', Value: '10.11.19-MariaDB-0+deb12u1-log' },
]);

test('mariadb: queries', () => {
  assert.equal(maria.name, 'mariadb');
  assert.equal(maria.replicaStatusQuery, 'SHOW ALL SLAVES STATUS');
  assert.match(maria.variablesQuery, /^SHOW GLOBAL VARIABLES WHERE Variable_name IN \(/);
  for (const name of ['gtid_binlog_pos', 'gtid_slave_pos', 'gtid_strict_mode', 'rpl_semi_sync_master_timeout', 'slave_net_timeout']) {
    assert.ok(maria.variablesQuery.includes(`'${name}'`), name);
  }
  assert.match(maria.statusQuery, /^SHOW GLOBAL STATUS WHERE Variable_name IN \(/);
  assert.ok(maria.statusQuery.includes("'Rpl_semi_sync_master_clients'"));
});

test('mariadb: settings from folded variables', () => {
  assert.deepEqual(maria.parseSettings(vars), {
    serverId: 1,
    gtidOrigin: '1',
    version: '10.11.19-MariaDB-0+deb12u1-log',
    readOnly: false,
    superReadOnly: null,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'MIXED',
    gtidStrict: true,
    semiSyncPrimaryEnabled: true,
    semiSyncReplicaEnabled: true,
    semiSyncTimeoutMs: 3000,
    slaveNetTimeout: 20,
  });
});

test('mariadb: executed GTIDs are the union of binlog and slave positions', () => {
  const g = maria.parseGtids(vars);
  assert.equal(g.binlog.toString(), '0-1-48213,7-30-900');
  assert.equal(g.replicated.toString(), '0-2-40000,7-30-912');
  assert.equal(g.executed.toString(), '0-1-48213,7-30-912');
  assert.equal(g.executed.flavor, 'mariadb');
});

test('mariadb: semi-sync status', () => {
  const status = foldVariables([
    { Variable_name: 'Rpl_semi_sync_master_clients', Value: '2' },
    { Variable_name: 'Rpl_semi_sync_master_status', Value: 'ON' },
    { Variable_name: 'Rpl_semi_sync_slave_status', Value: 'OFF' },
  ]);
  assert.deepEqual(maria.parseSemiSync(status), { primaryActive: true, primaryClients: 2, replicaActive: false });
});

// --- generated statements ---------------------------------------------------------

test('mariadb: replication control statements', () => {
  assert.deepEqual(maria.setReadOnly(true), ['SET GLOBAL read_only = ON']);
  assert.deepEqual(maria.setReadOnly(false), ['SET GLOBAL read_only = OFF']);
  assert.equal(maria.stopReplica(), 'STOP SLAVE');
  assert.equal(maria.stopReplicaIoThread(), 'STOP SLAVE IO_THREAD');
  assert.equal(maria.startReplica(), 'START SLAVE');
  assert.equal(maria.resetReplica(), 'RESET SLAVE ALL');
});

test('mariadb: changeSource sends the password only as a parameter', () => {
  const password = 'S3cr3t-repl-pw!';
  const { sql, params } = maria.changeSource({
    host: 'db1.internal',
    port: 3306,
    user: 'repl',
    password: new Secret(password, 'env REGENT_REPL_PASSWORD'),
    heartbeatPeriodSeconds: 0.5,
    startFrom: 'replica-position',
  });
  assert.equal(
    sql,
    'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, ' +
      'MASTER_HEARTBEAT_PERIOD = ?, MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = slave_pos',
  );
  assert.ok(!sql.includes(password));
  assert.deepEqual(params, ['db1.internal', 3306, 'repl', password, 0.5]);
  const current = maria.changeSource({ host: 'h', port: 3307, user: 'u', heartbeatPeriodSeconds: 1, startFrom: 'all-executed' });
  assert.match(current.sql, /MASTER_USE_GTID = current_pos$/);
  assert.deepEqual(current.params, ['h', 3307, 'u', '', 1]);
});

test('mariadb: waitForGtid, semi-sync roles and GTID position', () => {
  const gtid = MariaGtidPosition.parse('7-30-912,0-1-48213');
  assert.deepEqual(maria.waitForGtid(gtid, 15), {
    sql: 'SELECT MASTER_GTID_WAIT(?, ?) AS result',
    params: ['0-1-48213,7-30-912', 15],
  });
  assert.deepEqual(maria.semiSyncRole('primary', 3000), [
    'SET GLOBAL rpl_semi_sync_master_timeout = 3000',
    'SET GLOBAL rpl_semi_sync_master_enabled = ON',
    'SET GLOBAL rpl_semi_sync_slave_enabled = ON',
  ]);
  assert.deepEqual(maria.semiSyncRole('replica', 3000), [
    'SET GLOBAL rpl_semi_sync_master_enabled = OFF',
    'SET GLOBAL rpl_semi_sync_slave_enabled = ON',
  ]);
  assert.deepEqual(maria.setGtidPosition(gtid), [{ sql: 'SET GLOBAL gtid_slave_pos = ?', params: ['0-1-48213,7-30-912'] }]);
  // A restored copy or a rewound node: its binary log still names what it no longer has.
  assert.deepEqual(maria.resetHistoryTo(gtid), [
    { sql: 'RESET MASTER', params: [] },
    { sql: 'SET GLOBAL gtid_slave_pos = ?', params: ['0-1-48213,7-30-912'] },
  ]);
  assert.ok(maria.parseGtid('0-1-5') instanceof MariaGtidPosition);
});

test('mariadb: the family has rewind and clone tools, hashes the password of a logged CREATE USER, and its doctor words', () => {
  const f = maria.family;
  assert.equal(f.name, 'mariadb');
  assert.equal(f.displayName, 'MariaDB');
  assert.ok(f.rewind && f.clone);
  assert.equal(f.heartbeatPeriodQuery, undefined);
  // SHA1(SHA1('secret')), as mysql_native_password stores it: the clear password never reaches the binary log.
  assert.deepEqual(f.grants.createReplicationUser('repl', '%', 'secret'), { sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY PASSWORD ?', params: ['repl', '%', '*14E65567ABDB5135D0CFD9A70B3032C179A49EE7'] });
  assert.ok(f.grants.failover.has('READ_ONLY ADMIN'));
  assert.ok(f.grants.clone.some((p) => p.privilege === 'BINLOG ADMIN'));
  assert.equal(f.doctor.setReadOnly(true), 'SET GLOBAL read_only = ON;');
  assert.equal(f.doctor.useGtid, 'STOP SLAVE; CHANGE MASTER TO MASTER_USE_GTID = slave_pos; START SLAVE;');
  // Where replication starts, by intent: a re-pointed replica continues, a former primary brings its own writes.
  const spec = { host: 'h', port: 1, user: 'u', heartbeatPeriodSeconds: 1 };
  assert.match(maria.changeSource({ ...spec, startFrom: 'replica-position' }).sql, /MASTER_USE_GTID = slave_pos$/);
  assert.match(maria.changeSource({ ...spec, startFrom: 'all-executed' }).sql, /MASTER_USE_GTID = current_pos$/);
});

test('mariadb: rewind is refused with the reason when the binary log is not ROW', () => {
  const settings = { binlogFormat: 'MIXED' } as Parameters<NonNullable<typeof maria.family.rewind>['check']>[0];
  const verdict = maria.family.rewind!.check(settings);
  assert.notEqual(verdict, true);
  assert.match(String(verdict), /binlog_format=ROW|mariadb-binlog/);
});
