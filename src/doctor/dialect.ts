import type { GtidFlavor } from '../gtid/index.ts';
import type { Vars } from '../sql/flavor.ts';

/**
 * The words doctor's fixes use, per server family: one table, so the checks themselves never ask
 * which family they look at. Variable names that changed spelling (MySQL 8.0.26 renamed
 * master/slave) are picked from what the server itself reported.
 */
export interface DoctorDialect {
  /** Option file section the config lines go to. */
  section: string;
  logReplicaUpdates: (v: Vars) => string;
  netTimeout: (v: Vars) => string;
  semiSyncPrimary: (v: Vars) => string;
  semiSyncReplica: (v: Vars) => string;
  semiSyncTimeout: (v: Vars) => string;
  /** How to load the semi-sync plugin when its variables are missing (MariaDB has it built in). */
  semiSyncInstall?: { primary: string; replica: string };
  gtidStrictProblem: (v: Vars) => string;
  gtidStrictFix: string;
  stopReplica: string;
  startReplica: string;
  restartIoThread: string;
  /** Sets the replication password (and user) of the replica's channel, keeping everything else. */
  changeReplicationUser: (user: string, passwordPlaceholder: string) => string;
  changeHeartbeat: (seconds: number) => string;
  /** Switches a replica from file/position to GTID positioning. */
  useGtid: string;
  logBinConfig: string;
}

const pick = (v: Vars, ...names: string[]): string => names.find((n) => v[n] !== undefined) ?? names[0]!;
const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

export const DIALECTS: Record<GtidFlavor, DoctorDialect> = {
  mariadb: {
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
  },
  mysql: {
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
  },
};
