import { MariaGtidPosition } from '../../gtid/index.ts';
import type { GtidState } from '../../gtid/index.ts';
import type { Flavor, RegisteredReplica, ReplicaStatus, Row, SemiSyncStatus, ServerGtids, ServerSettings, SourceSpec, Vars } from '../flavor.ts';
import { big, flag, int, ioThreadState, nullableNumber, text } from '../row-values.ts';
import { mariadbFamily } from './mariadb-family.ts';

const VARIABLES = [
  'server_id',
  'version',
  'read_only',
  'log_bin',
  'log_slave_updates',
  'binlog_format',
  'gtid_strict_mode',
  'gtid_binlog_pos',
  'gtid_slave_pos',
  'rpl_semi_sync_master_enabled',
  'rpl_semi_sync_slave_enabled',
  'rpl_semi_sync_master_timeout',
  'slave_net_timeout',
];

const STATUS = ['Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients', 'Rpl_semi_sync_slave_status'];

const inList = (names: string[]): string => names.map((n) => `'${n}'`).join(',');

/** MariaDB 10.6+: domain-server-seq GTIDs, SHOW ALL SLAVES STATUS, MASTER_GTID_WAIT, built-in semi-sync. */
export class MariadbFlavor implements Flavor {
  readonly name = 'mariadb' as const;
  readonly family = mariadbFamily;
  readonly variablesQuery = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${inList(VARIABLES)})`;
  readonly statusQuery = `SHOW GLOBAL STATUS WHERE Variable_name IN (${inList(STATUS)})`;
  // SHOW ALL SLAVES STATUS (not SHOW SLAVE STATUS) because only it carries the heartbeat counter
  // that tells a silent source from an idle one.
  readonly replicaStatusQuery = 'SHOW ALL SLAVES STATUS';
  readonly registeredReplicasQuery = 'SHOW SLAVE HOSTS';
  readonly ioThreadIdQuery = "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'";

  parseGtid(textValue: string): GtidState {
    return MariaGtidPosition.parse(textValue);
  }

  parseSettings(v: Vars): ServerSettings {
    return {
      serverId: int(v['server_id']),
      gtidOrigin: text(v['server_id']),
      version: text(v['version']),
      readOnly: flag(v['read_only']),
      superReadOnly: null,
      logBin: flag(v['log_bin']),
      logReplicaUpdates: flag(v['log_slave_updates']),
      binlogFormat: text(v['binlog_format']).toUpperCase(),
      gtidStrict: flag(v['gtid_strict_mode']),
      semiSyncPrimaryEnabled: flag(v['rpl_semi_sync_master_enabled']),
      semiSyncReplicaEnabled: flag(v['rpl_semi_sync_slave_enabled']),
      semiSyncTimeoutMs: nullableNumber(v['rpl_semi_sync_master_timeout']),
      slaveNetTimeout: int(v['slave_net_timeout'], 60),
    };
  }

  parseGtids(v: Vars): ServerGtids {
    const binlog = MariaGtidPosition.parse(text(v['gtid_binlog_pos']));
    const replicated = MariaGtidPosition.parse(text(v['gtid_slave_pos']));
    // gtid_slave_pos is not cleared by RESET SLAVE ALL and lags behind on a former primary, while
    // gtid_binlog_pos misses replicated transactions when log_slave_updates is off: the union per
    // domain (higher seq wins) is what the server really has.
    return { binlog, replicated, executed: binlog.union(replicated) };
  }

  parseSemiSync(s: Vars): SemiSyncStatus {
    return {
      primaryActive: flag(s['rpl_semi_sync_master_status']),
      primaryClients: int(s['rpl_semi_sync_master_clients']),
      replicaActive: flag(s['rpl_semi_sync_slave_status']),
    };
  }

  parseRegisteredReplicas(rows: Row[]): RegisteredReplica[] {
    return rows.map((r) => ({ serverId: int(r['Server_id']), host: text(r['Host']), port: int(r['Port']) }));
  }

  parseReplicaStatus(rows: Row[]): ReplicaStatus | undefined {
    const row = rows.find((r) => text(r['Connection_name']) === '');
    if (!row) return undefined;
    return {
      sourceHost: text(row['Master_Host']),
      sourcePort: int(row['Master_Port']),
      ioThread: ioThreadState(row['Slave_IO_Running']),
      sqlThread: flag(row['Slave_SQL_Running']),
      lastIoErrno: int(row['Last_IO_Errno']),
      lastIoError: text(row['Last_IO_Error']),
      lastSqlErrno: int(row['Last_SQL_Errno']),
      lastSqlError: text(row['Last_SQL_Error']),
      secondsBehind: nullableNumber(row['Seconds_Behind_Master']),
      sqlDelay: int(row['SQL_Delay']),
      usesGtid: text(row['Using_Gtid']).toLowerCase() !== 'no' && text(row['Using_Gtid']) !== '',
      receivedGtid: MariaGtidPosition.parse(text(row['Gtid_IO_Pos'])),
      readSourceLogFile: text(row['Master_Log_File']),
      readSourceLogPos: big(row['Read_Master_Log_Pos']),
      execSourceLogFile: text(row['Relay_Master_Log_File']),
      execSourceLogPos: big(row['Exec_Master_Log_Pos']),
      receivedHeartbeats: row['Slave_received_heartbeats'] === undefined ? null : big(row['Slave_received_heartbeats']),
      heartbeatPeriod: nullableNumber(row['Slave_heartbeat_period']),
      sourceServerId: int(row['Master_Server_Id']),
      sourceOrigin: int(row['Master_Server_Id']) ? String(int(row['Master_Server_Id'])) : '',
    };
  }

  setReadOnly(on: boolean): string[] {
    return [`SET GLOBAL read_only = ${on ? 'ON' : 'OFF'}`];
  }

  stopReplica(): string {
    return 'STOP SLAVE';
  }

  stopReplicaIoThread(): string {
    return 'STOP SLAVE IO_THREAD';
  }

  startReplica(): string {
    return 'START SLAVE';
  }

  startSqlThread(): string {
    return 'START SLAVE SQL_THREAD';
  }

  resetReplica(): string {
    return 'RESET SLAVE ALL';
  }

  changeSource(spec: SourceSpec): { sql: string; params: unknown[] } {
    const params: unknown[] = [spec.host, spec.port, spec.user, spec.password?.reveal() ?? '', spec.heartbeatPeriodSeconds];
    const sql =
      'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, ' +
      `MASTER_HEARTBEAT_PERIOD = ?, MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = ${spec.startFrom === 'all-executed' ? 'current_pos' : 'slave_pos'}`;
    return { sql, params };
  }

  waitForGtid(gtid: GtidState, timeoutSeconds: number): { sql: string; params: unknown[] } {
    return { sql: 'SELECT MASTER_GTID_WAIT(?, ?) AS result', params: [gtid.toString(), timeoutSeconds] };
  }

  semiSyncRole(role: 'primary' | 'replica', timeoutMs: number): string[] {
    // A replica keeps the primary side off: with it on and no semi-sync clients, a replica promoted
    // later by someone else would stall its first commits for the whole timeout.
    return role === 'primary'
      ? [
          `SET GLOBAL rpl_semi_sync_master_timeout = ${Math.floor(timeoutMs)}`,
          'SET GLOBAL rpl_semi_sync_master_enabled = ON',
          'SET GLOBAL rpl_semi_sync_slave_enabled = ON',
        ]
      : ['SET GLOBAL rpl_semi_sync_master_enabled = OFF', 'SET GLOBAL rpl_semi_sync_slave_enabled = ON'];
  }

  setGtidPosition(gtid: GtidState): { sql: string; params: unknown[] }[] {
    return [{ sql: 'SET GLOBAL gtid_slave_pos = ?', params: [gtid.toString()] }];
  }

  resetHistoryTo(gtid: GtidState): { sql: string; params: unknown[] }[] {
    // gtid_binlog_pos still names what the binary log holds: it goes with the logs.
    return [{ sql: 'RESET MASTER', params: [] }, ...this.setGtidPosition(gtid)];
  }
}
