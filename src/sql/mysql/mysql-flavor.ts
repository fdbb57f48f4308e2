import { MysqlGtidSet } from '../../gtid/index.ts';
import type { GtidState } from '../../gtid/index.ts';
import type { Flavor, RegisteredReplica, ReplicaStatus, Row, SemiSyncStatus, ServerGtids, ServerSettings, SourceSpec, Vars } from '../flavor.ts';
import { big, flag, int, ioThreadState, nullableNumber, text } from '../row-values.ts';
import { mysqlFamily } from './mysql-family.ts';

export interface MysqlVersion {
  major: number;
  minor: number;
  patch: number;
}

// Both spellings of every renamed variable: 8.0.26 renamed master/slave to source/replica, and the
// semi-sync names follow the installed plugin (semisync_master.so keeps the old ones even on 8.0.26+).
// SHOW VARIABLES simply omits the spelling the server does not have.
const VARIABLES = [
  'server_id',
  'server_uuid',
  'version',
  'read_only',
  'super_read_only',
  'log_bin',
  'log_replica_updates',
  'log_slave_updates',
  'binlog_format',
  'gtid_mode',
  'enforce_gtid_consistency',
  'gtid_executed',
  'rpl_semi_sync_source_enabled',
  'rpl_semi_sync_replica_enabled',
  'rpl_semi_sync_source_timeout',
  'rpl_semi_sync_master_enabled',
  'rpl_semi_sync_slave_enabled',
  'rpl_semi_sync_master_timeout',
  'replica_net_timeout',
  'slave_net_timeout',
];

const STATUS = [
  'Rpl_semi_sync_source_status',
  'Rpl_semi_sync_source_clients',
  'Rpl_semi_sync_replica_status',
  'Rpl_semi_sync_master_status',
  'Rpl_semi_sync_master_clients',
  'Rpl_semi_sync_slave_status',
];

const inList = (names: string[]): string => names.map((n) => `'${n}'`).join(',');

/** The first of the given names the server reported (new spelling first), or undefined. */
function pick(v: Vars, ...names: string[]): string | undefined {
  for (const n of names) {
    const value = v[n];
    if (value !== undefined) return value;
  }
  return undefined;
}

const atLeast = (v: MysqlVersion, major: number, minor: number, patch: number): boolean =>
  v.major !== major ? v.major > major : v.minor !== minor ? v.minor > minor : v.patch >= patch;

/** MySQL 8.0.23+ and 8.4: uuid:interval GTID sets, SHOW REPLICA STATUS, auto-position, semi-sync plugins. */
export class MysqlFlavor implements Flavor {
  readonly name = 'mysql' as const;
  readonly family = mysqlFamily;
  readonly variablesQuery = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${inList(VARIABLES)})`;
  readonly statusQuery = `SHOW GLOBAL STATUS WHERE Variable_name IN (${inList(STATUS)})`;
  readonly replicaStatusQuery = 'SHOW REPLICA STATUS';
  // SHOW SLAVE HOSTS is gone in 8.4; SHOW REPLICAS exists since 8.0.22 (Regent needs 8.0.23+).
  readonly registeredReplicasQuery = 'SHOW REPLICAS';
  readonly ioThreadIdQuery = "SELECT PROCESSLIST_ID AS id FROM performance_schema.threads WHERE NAME IN ('thread/sql/replica_io', 'thread/sql/slave_io')";
  readonly version: Readonly<MysqlVersion>;

  constructor(version: MysqlVersion) {
    this.version = Object.freeze({ major: version.major, minor: version.minor, patch: version.patch });
  }

  parseGtid(textValue: string): GtidState {
    return MysqlGtidSet.parse(textValue);
  }

  parseSettings(v: Vars): ServerSettings {
    return {
      serverId: int(v['server_id']),
      // Lower case like the uuids of a parsed MysqlGtidSet, so the two compare as text.
      gtidOrigin: text(v['server_uuid']).trim().toLowerCase(),
      version: text(v['version']),
      readOnly: flag(v['read_only']),
      superReadOnly: flag(v['super_read_only']),
      logBin: flag(v['log_bin']),
      logReplicaUpdates: flag(pick(v, 'log_replica_updates', 'log_slave_updates')),
      binlogFormat: text(v['binlog_format']).toUpperCase(),
      // gtid_mode has four values (OFF, OFF_PERMISSIVE, ON_PERMISSIVE, ON): only ON guarantees
      // every transaction carries a GTID, which auto-position failover depends on.
      gtidStrict: text(v['gtid_mode']).trim().toUpperCase() === 'ON' && text(v['enforce_gtid_consistency']).trim().toUpperCase() === 'ON',
      semiSyncPrimaryEnabled: flag(pick(v, 'rpl_semi_sync_source_enabled', 'rpl_semi_sync_master_enabled')),
      semiSyncReplicaEnabled: flag(pick(v, 'rpl_semi_sync_replica_enabled', 'rpl_semi_sync_slave_enabled')),
      semiSyncTimeoutMs: nullableNumber(pick(v, 'rpl_semi_sync_source_timeout', 'rpl_semi_sync_master_timeout')),
      slaveNetTimeout: int(pick(v, 'replica_net_timeout', 'slave_net_timeout'), 60),
    };
  }

  parseGtids(v: Vars): ServerGtids {
    // MySQL keeps a single set: gtid_executed covers both what was written locally and what was
    // replicated (mysql.gtid_executed persists it even with log_replica_updates off).
    const executed = MysqlGtidSet.parse(text(v['gtid_executed']));
    return { executed, binlog: executed, replicated: executed };
  }

  parseSemiSync(s: Vars): SemiSyncStatus {
    return {
      primaryActive: flag(pick(s, 'rpl_semi_sync_source_status', 'rpl_semi_sync_master_status')),
      primaryClients: int(pick(s, 'rpl_semi_sync_source_clients', 'rpl_semi_sync_master_clients')),
      replicaActive: flag(pick(s, 'rpl_semi_sync_replica_status', 'rpl_semi_sync_slave_status')),
    };
  }

  parseRegisteredReplicas(rows: Row[]): RegisteredReplica[] {
    return rows.map((r) => ({ serverId: int(r['Server_Id']), host: text(r['Host']), port: int(r['Port']) }));
  }

  parseReplicaStatus(rows: Row[]): ReplicaStatus | undefined {
    const row = rows.find((r) => text(r['Channel_Name']) === '') ?? (rows.length === 1 ? rows[0] : undefined);
    if (!row) return undefined;
    // Retrieved_Gtid_Set restarts empty when the server restarts (and after RESET REPLICA) while
    // Executed_Gtid_Set does not: the union keeps "received" from looking behind "applied".
    const retrieved = MysqlGtidSet.parse(text(row['Retrieved_Gtid_Set']));
    const executed = MysqlGtidSet.parse(text(row['Executed_Gtid_Set']));
    return {
      sourceHost: text(row['Source_Host']),
      sourcePort: int(row['Source_Port']),
      ioThread: ioThreadState(row['Replica_IO_Running']),
      sqlThread: flag(row['Replica_SQL_Running']),
      lastIoErrno: int(row['Last_IO_Errno']),
      lastIoError: text(row['Last_IO_Error']),
      lastSqlErrno: int(row['Last_SQL_Errno']),
      lastSqlError: text(row['Last_SQL_Error']),
      secondsBehind: nullableNumber(row['Seconds_Behind_Source']),
      sqlDelay: int(row['SQL_Delay']),
      usesGtid: flag(row['Auto_Position']),
      receivedGtid: retrieved.union(executed),
      readSourceLogFile: text(row['Source_Log_File']),
      readSourceLogPos: big(row['Read_Source_Log_Pos']),
      execSourceLogFile: text(row['Relay_Source_Log_File']),
      execSourceLogPos: big(row['Exec_Source_Log_Pos']),
      // MySQL counts heartbeats in performance_schema.replication_connection_status, not here.
      receivedHeartbeats: null,
      heartbeatPeriod: null,
      sourceServerId: int(row['Source_Server_Id']),
      // GTIDs carry the server_uuid, not the server id.
      sourceOrigin: text(row['Source_UUID']).trim().toLowerCase(),
    };
  }

  setReadOnly(on: boolean): string[] {
    // super_read_only = ON implies read_only = ON; turning read_only off alone would also clear
    // super_read_only, but saying both keeps the intent obvious in the log.
    return on ? ['SET GLOBAL super_read_only = ON'] : ['SET GLOBAL super_read_only = OFF', 'SET GLOBAL read_only = OFF'];
  }

  stopReplica(): string {
    return 'STOP REPLICA';
  }

  stopReplicaIoThread(): string {
    return 'STOP REPLICA IO_THREAD';
  }

  startReplica(): string {
    return 'START REPLICA';
  }

  startSqlThread(): string {
    return 'START REPLICA SQL_THREAD';
  }

  resetReplica(): string {
    return 'RESET REPLICA ALL';
  }

  changeSource(spec: SourceSpec): { sql: string; params: unknown[] } {
    // spec.startFrom matters to MariaDB only: auto-position negotiates from gtid_executed either way.
    const params: unknown[] = [spec.host, spec.port, spec.user, spec.password?.reveal() ?? '', spec.heartbeatPeriodSeconds];
    const sql =
      'CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, ' +
      // GET_SOURCE_PUBLIC_KEY lets caching_sha2_password authenticate without TLS.
      'SOURCE_HEARTBEAT_PERIOD = ?, SOURCE_CONNECT_RETRY = 1, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1';
    return { sql, params };
  }

  waitForGtid(gtid: GtidState, timeoutSeconds: number): { sql: string; params: unknown[] } {
    return { sql: 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS result', params: [gtid.toString(), timeoutSeconds] };
  }

  semiSyncRole(role: 'primary' | 'replica', timeoutMs: number): string[] {
    // 8.0.26 introduced semisync_source.so / semisync_replica.so with the new variable names
    // (8.4 has only those); earlier servers only know the master/slave plugins.
    const [src, rep] = atLeast(this.version, 8, 0, 26) ? ['source', 'replica'] : ['master', 'slave'];
    // A replica keeps the primary side off: with it on and no semi-sync clients, a replica promoted
    // later by someone else would stall its first commits for the whole timeout.
    return role === 'primary'
      ? [
          `SET GLOBAL rpl_semi_sync_${src}_timeout = ${Math.floor(timeoutMs)}`,
          `SET GLOBAL rpl_semi_sync_${src}_enabled = ON`,
          `SET GLOBAL rpl_semi_sync_${rep}_enabled = ON`,
        ]
      : [`SET GLOBAL rpl_semi_sync_${src}_enabled = OFF`, `SET GLOBAL rpl_semi_sync_${rep}_enabled = ON`];
  }

  setGtidPosition(gtid: GtidState): { sql: string; params: unknown[] }[] {
    // Assigning gtid_purged (without a leading '+') needs an empty gtid_executed, hence the reset first.
    // RESET BINARY LOGS AND GTIDS exists since 8.2; RESET MASTER is gone in 8.4.
    const reset = atLeast(this.version, 8, 2, 0) ? 'RESET BINARY LOGS AND GTIDS' : 'RESET MASTER';
    return [
      { sql: reset, params: [] },
      { sql: 'SET GLOBAL gtid_purged = ?', params: [gtid.toString()] },
    ];
  }

  resetHistoryTo(gtid: GtidState): { sql: string; params: unknown[] }[] {
    // Assigning gtid_purged already resets the binary logs and gtid_executed first.
    return this.setGtidPosition(gtid);
  }
}
