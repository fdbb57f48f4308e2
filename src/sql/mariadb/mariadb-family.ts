import { createHash } from 'node:crypto';
import { MariaGtidPosition } from '../../gtid/index.ts';
import type { DoctorDialect, EndpointDialect, FlavorFamily, PrivilegeNeed } from '../flavor.ts';
import { sqlString } from '../session-sql.ts';
import { mariadbClone } from './mariadb-clone.ts';
import { mariadbRewind } from './mariadb-rewind.ts';

/** MariaDB 10.6+, whatever the version: privileges, the doctor's words, rewind and clone tools. */

const MANAGER: PrivilegeNeed[] = [
  { privilege: 'SELECT', why: 'checksums and reading data for clone' },
  { privilege: 'PROCESS', why: 'listing client sessions to fence a primary' },
  { privilege: 'RELOAD', why: 'FLUSH statements during clone and rejoin' },
  { privilege: 'SLAVE MONITOR', why: 'SHOW ALL SLAVES STATUS' },
  { privilege: 'BINLOG MONITOR', why: 'SHOW BINARY LOGS and binlog positions' },
  { privilege: 'REPLICATION SLAVE ADMIN', why: 'START/STOP/CHANGE MASTER, gtid_slave_pos, semi-sync replica side' },
  { privilege: 'REPLICATION MASTER ADMIN', why: 'semi-sync primary settings' },
  { privilege: 'READ_ONLY ADMIN', why: 'setting read_only (SUPER no longer covers it in 10.11)' },
  { privilege: 'BINLOG ADMIN', why: 'purging and resetting binary logs on rejoin' },
  { privilege: 'CONNECTION ADMIN', why: 'killing client sessions when fencing, connecting when max_connections is reached' },
  { privilege: 'REPLICATION SLAVE', why: 'reading binlogs remotely for flashback and errant-transaction capture' },
  { privilege: 'BINLOG REPLAY', why: 'applying flashback events' },
  { privilege: 'SHOW VIEW', why: 'clone: mariadb-dump of views' },
  { privilege: 'TRIGGER', why: 'clone: mariadb-dump of triggers' },
  { privilege: 'EVENT', why: 'clone: mariadb-dump of events' },
  { privilege: 'LOCK TABLES', why: 'clone: mariadb-dump of non-transactional tables' },
];

const CLONE: PrivilegeNeed[] = [
  { privilege: 'SELECT', why: 'clone: reading back what was loaded' },
  { privilege: 'INSERT', why: 'clone: loading the rows' },
  { privilege: 'CREATE', why: 'clone: CREATE DATABASE and CREATE TABLE' },
  { privilege: 'DROP', why: 'clone: DROP TABLE IF EXISTS before each table' },
  { privilege: 'ALTER', why: 'clone: ALTER TABLE ... DISABLE/ENABLE KEYS' },
  { privilege: 'INDEX', why: 'clone: indexes of the loaded tables' },
  { privilege: 'REFERENCES', why: 'clone: foreign keys' },
  { privilege: 'LOCK TABLES', why: 'clone: LOCK TABLES around each table load' },
  { privilege: 'CREATE VIEW', why: 'clone: views' },
  { privilege: 'SHOW VIEW', why: 'clone: views' },
  { privilege: 'CREATE ROUTINE', why: 'clone: stored procedures and functions' },
  { privilege: 'ALTER ROUTINE', why: 'clone: stored procedures and functions' },
  { privilege: 'EVENT', why: 'clone: events' },
  { privilege: 'TRIGGER', why: 'clone: triggers' },
  { privilege: 'SET USER', why: 'clone: views, routines and triggers keep their DEFINER' },
  { privilege: 'BINLOG ADMIN', why: 'clone: SET SESSION sql_log_bin=0, so the loaded data keeps the source\'s GTIDs' },
];

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

const DOCTOR: DoctorDialect = {
  section: '[mariadbd]',
  logReplicaUpdates: () => 'log_slave_updates',
  netTimeout: () => 'slave_net_timeout',
  semiSyncPrimary: () => 'rpl_semi_sync_master_enabled',
  semiSyncReplica: () => 'rpl_semi_sync_slave_enabled',
  semiSyncTimeout: () => 'rpl_semi_sync_master_timeout',
  gtidStrictProblem: () => 'gtid_strict_mode is OFF',
  gtidStrictFix: 'SET GLOBAL gtid_strict_mode = ON; and gtid_strict_mode=ON under [mariadbd] in its option file',
  stopReplica: 'STOP SLAVE',
  startReplica: 'START SLAVE',
  restartIoThread: 'STOP SLAVE IO_THREAD; START SLAVE IO_THREAD;',
  changeReplicationUser: (user, pw) => `STOP SLAVE; CHANGE MASTER TO MASTER_USER = ${quote(user)}, MASTER_PASSWORD = '${pw}'; START SLAVE;`,
  changeHeartbeat: (s) => `STOP SLAVE; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = ${s}; START SLAVE;`,
  useGtid: 'STOP SLAVE; CHANGE MASTER TO MASTER_USE_GTID = slave_pos; START SLAVE;',
  logBinConfig: 'log_bin=mariadb-bin',
  logReplicaUpdatesConfig: 'log_slave_updates=ON',
  gtidStrictOk: 'gtid_strict_mode ON',
  setReadOnly: (on) => `SET GLOBAL read_only = ${on ? 'ON' : 'OFF'};`,
};

const ENDPOINT: EndpointDialect = {
  // '*' reports every session variable a statement changes, last_gtid included: the GTID of a
  // commit arrives in its own OK packet.
  sessionTracking: "SET SESSION session_track_system_variables='*', session_track_schema=ON",
  // Accounts live in mysql.global_priv as JSON; roles are rows there too and cannot log in.
  accountHashesQuery:
    "SELECT User AS user, Host AS host, JSON_VALUE(Priv, '$.plugin') AS plugin, JSON_VALUE(Priv, '$.authentication_string') AS auth, JSON_VALUE(Priv, '$.account_locked') AS locked, JSON_QUERY(Priv, '$.auth_or') AS auth_or FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.is_role') IS NULL OR JSON_VALUE(Priv, '$.is_role') <> 'true'",
  accountHashesPrivileges: [{ privilege: 'SELECT', on: 'mysql.global_priv', why: 'account names, plugins and password hashes, to verify logins to the SQL endpoint' }],
  // MASTER_GTID_WAIT: 0 once applied, -1 after the timeout.
  waitForGtidText: (gtid, timeoutSeconds) => `SELECT MASTER_GTID_WAIT(${sqlString(gtid.toString())}, ${seconds(timeoutSeconds)})`,
};

/** A timeout as a decimal literal (never exponent notation, never negative). */
function seconds(s: number): string {
  return Math.max(0, s).toFixed(3);
}

export const mariadbFamily: FlavorFamily = {
  name: 'mariadb',
  displayName: 'MariaDB',
  parseGtid: (text) => MariaGtidPosition.parse(text),
  doctor: DOCTOR,
  grants: {
    manager: MANAGER,
    failover: new Set(['PROCESS', 'SLAVE MONITOR', 'REPLICATION SLAVE ADMIN', 'REPLICATION MASTER ADMIN', 'READ_ONLY ADMIN', 'CONNECTION ADMIN']),
    clone: CLONE,
    // MariaDB logs CREATE USER as written, so it gets the mysql_native_password hash instead of
    // the password: the binary log (and every replica's relay log) never holds it in clear.
    createReplicationUser(user, host, password) {
      const sha1 = (b: string | Buffer) => createHash('sha1').update(b).digest();
      const hash = password === '' ? '' : `*${sha1(sha1(password)).toString('hex').toUpperCase()}`;
      return { sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY PASSWORD ?', params: [user, host, hash] };
    },
  },
  endpoint: ENDPOINT,
  rewind: mariadbRewind,
  clone: mariadbClone,
};
