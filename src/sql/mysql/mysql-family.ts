import { MysqlGtidSet } from '../../gtid/index.ts';
import type { DbConnection } from '../connection.ts';
import type { DoctorDialect, EndpointDialect, FlavorFamily, PrivilegeNeed, Vars } from '../flavor.ts';
import { sqlString } from '../session-sql.ts';
import { text } from '../row-values.ts';

/** MySQL 8.0.23+ and 8.4, whatever the version: privileges and the doctor's words. No rewind or clone tool. */

const MANAGER: PrivilegeNeed[] = [
  { privilege: 'SELECT', why: 'checksums and reading data for clone' },
  { privilege: 'PROCESS', why: 'listing client sessions to fence a primary' },
  { privilege: 'RELOAD', why: 'FLUSH statements during clone and rejoin' },
  { privilege: 'REPLICATION CLIENT', why: 'SHOW REPLICA STATUS and binlog positions' },
  { privilege: 'REPLICATION SLAVE', why: 'reading binlogs remotely' },
  { privilege: 'REPLICATION_SLAVE_ADMIN', why: 'START/STOP/CHANGE REPLICATION SOURCE' },
  { privilege: 'SYSTEM_VARIABLES_ADMIN', why: 'read_only, super_read_only, semi-sync settings' },
  { privilege: 'CONNECTION_ADMIN', why: 'killing client sessions when fencing' },
  { privilege: 'BINLOG_ADMIN', why: 'resetting binary logs on rejoin' },
];

const pick = (v: Vars, ...names: string[]): string => names.find((n) => v[n] !== undefined) ?? names[0]!;
const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

const DOCTOR: DoctorDialect = {
  section: '[mysqld]',
  logReplicaUpdates: (v) => pick(v, 'log_replica_updates', 'log_slave_updates'),
  netTimeout: (v) => pick(v, 'replica_net_timeout', 'slave_net_timeout'),
  semiSyncPrimary: (v) => pick(v, 'rpl_semi_sync_source_enabled', 'rpl_semi_sync_master_enabled'),
  semiSyncReplica: (v) => pick(v, 'rpl_semi_sync_replica_enabled', 'rpl_semi_sync_slave_enabled'),
  semiSyncTimeout: (v) => pick(v, 'rpl_semi_sync_source_timeout', 'rpl_semi_sync_master_timeout'),
  semiSyncInstall: {
    primary: "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so';",
    replica: "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so';",
  },
  gtidStrictProblem: (v) => `gtid_mode is ${v['gtid_mode'] ?? '?'} and enforce_gtid_consistency is ${v['enforce_gtid_consistency'] ?? '?'}`,
  gtidStrictFix:
    'SET GLOBAL enforce_gtid_consistency = ON; SET GLOBAL gtid_mode = OFF_PERMISSIVE; SET GLOBAL gtid_mode = ON_PERMISSIVE; ' +
    "(wait until SHOW STATUS LIKE 'Ongoing_anonymous_transaction_count' is 0 on every server) SET GLOBAL gtid_mode = ON; " +
    'and gtid_mode=ON, enforce_gtid_consistency=ON under [mysqld] in its option file',
  stopReplica: 'STOP REPLICA',
  startReplica: 'START REPLICA',
  restartIoThread: 'STOP REPLICA IO_THREAD; START REPLICA IO_THREAD;',
  changeReplicationUser: (user, pw) => `STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_USER = ${quote(user)}, SOURCE_PASSWORD = '${pw}'; START REPLICA;`,
  changeHeartbeat: (s) => `STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD = ${s}; START REPLICA;`,
  useGtid: 'STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION = 1; START REPLICA;',
  logBinConfig: 'log_bin=mysql-bin',
  logReplicaUpdatesConfig: 'log_replica_updates=ON',
  gtidStrictOk: 'gtid_mode ON, enforce_gtid_consistency ON',
  // super_read_only also stops accounts with CONNECTION_ADMIN or SUPER.
  setReadOnly: (on) => (on ? 'SET GLOBAL super_read_only = ON;' : 'SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF;'),
};

/** MySQL 8.0.19+: per-account FAILED_LOGIN_ATTEMPTS in User_attributes. */
async function accountLockout(conn: DbConnection, users: string[]): Promise<string | undefined> {
  try {
    const rows = await conn.query(`SELECT User AS u, User_attributes AS a FROM mysql.user WHERE User IN (${users.map(() => '?').join(',')})`, users);
    for (const r of rows) {
      const attempts = Number((JSON.parse(text(r['a']) || '{}') as { Password_locking?: { failed_login_attempts?: number } }).Password_locking?.failed_login_attempts ?? 0);
      if (attempts > 0) return `account '${text(r['u'])}' locks after ${attempts} failed logins (FAILED_LOGIN_ATTEMPTS)`;
    }
  } catch {
    // older server without User_attributes: no per-account locking
  }
  return undefined;
}

const ENDPOINT: EndpointDialect = {
  // MySQL reports a commit's GTID through its own tracker (OWN_GTID), not as a variable.
  sessionTracking: "SET SESSION session_track_system_variables='*', session_track_schema=ON, session_track_gtids='OWN_GTID'",
  accountHashesQuery: "SELECT user, host, plugin, authentication_string AS auth, account_locked = 'Y' AS locked, NULL AS auth_or FROM mysql.user",
  accountHashesPrivileges: [{ privilege: 'SELECT', on: 'mysql.user', why: 'account names, plugins and password hashes, to verify logins to the SQL endpoint' }],
  // WAIT_FOR_EXECUTED_GTID_SET: 0 once applied, 1 after the timeout.
  waitForGtidText: (gtid, timeoutSeconds) => `SELECT WAIT_FOR_EXECUTED_GTID_SET(${sqlString(gtid.toString())}, ${Math.max(0, timeoutSeconds).toFixed(3)})`,
};

export const mysqlFamily: FlavorFamily = {
  name: 'mysql',
  displayName: 'MySQL',
  parseGtid: (text) => MysqlGtidSet.parse(text),
  doctor: DOCTOR,
  grants: {
    manager: MANAGER,
    failover: new Set(['PROCESS', 'REPLICATION CLIENT', 'REPLICATION_SLAVE_ADMIN', 'SYSTEM_VARIABLES_ADMIN', 'CONNECTION_ADMIN']),
    clone: [],
    // MySQL rewrites the logged CREATE USER itself (the password never reaches the binary log).
    createReplicationUser: (user, host, password) => ({ sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', params: [user, host, password] }),
  },
  endpoint: ENDPOINT,
  heartbeatPeriodQuery: "SELECT HEARTBEAT_INTERVAL AS period FROM performance_schema.replication_connection_configuration WHERE CHANNEL_NAME = ''",
  accountLockout,
};
