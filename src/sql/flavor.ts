import type { GtidFlavor, GtidState } from '../gtid/index.ts';
import type { Secret } from '../util/secret.ts';
import type { Account, ClusterConfig, InstanceConfig } from '../config/load.ts';
import type { DbConnection } from './connection.ts';

/**
 * What one probe learns about a server's replication side (the default replication channel).
 * Field names are Regent's, not the server's: the flavor translates.
 */
export interface ReplicaStatus {
  sourceHost: string;
  sourcePort: number;
  /** 'yes' connected, 'connecting' trying to reach the source, 'no' stopped. */
  ioThread: 'yes' | 'connecting' | 'no';
  sqlThread: boolean;
  lastIoErrno: number;
  lastIoError: string;
  lastSqlErrno: number;
  lastSqlError: string;
  secondsBehind: number | null;
  /** Configured delay (MASTER_DELAY / SOURCE_DELAY) in seconds. */
  sqlDelay: number;
  usesGtid: boolean;
  /** What the IO thread received from the source (MariaDB Gtid_IO_Pos, MySQL Retrieved_Gtid_Set). */
  receivedGtid: GtidState;
  /** Source binlog coordinates the IO thread has read up to; changes whenever events arrive. */
  readSourceLogFile: string;
  readSourceLogPos: bigint;
  /** Source binlog coordinates the SQL thread has applied up to; equal to the read ones when drained. */
  execSourceLogFile: string;
  execSourceLogPos: bigint;
  /** Heartbeats received from the source since replication started (null when the server does not say). */
  receivedHeartbeats: bigint | null;
  heartbeatPeriod: number | null;
  sourceServerId: number;
  /**
   * What marks the source's own transactions in GTIDs, as this replica last saw it (MariaDB
   * Master_Server_Id, MySQL Source_UUID; '' when unknown): the old primary's origin when it
   * cannot be asked.
   */
  sourceOrigin: string;
}

export interface ServerSettings {
  serverId: number;
  /** What marks transactions this server wrote in GTIDs: MariaDB server_id, MySQL server_uuid. */
  gtidOrigin: string;
  version: string;
  readOnly: boolean;
  /** MySQL super_read_only; MariaDB has none (null). */
  superReadOnly: boolean | null;
  logBin: boolean;
  logReplicaUpdates: boolean;
  binlogFormat: string;
  /** MariaDB gtid_strict_mode / MySQL gtid_mode=ON + enforce_gtid_consistency. */
  gtidStrict: boolean;
  semiSyncPrimaryEnabled: boolean;
  semiSyncReplicaEnabled: boolean;
  semiSyncTimeoutMs: number | null;
  slaveNetTimeout: number;
}

export interface ServerGtids {
  /** Every transaction this server has applied or written: what a promotion would carry. */
  executed: GtidState;
  /** Transactions in its binary log (MariaDB gtid_binlog_pos; MySQL gtid_executed). */
  binlog: GtidState;
  /** MariaDB gtid_slave_pos: last replicated transaction per domain (MySQL: same as executed). */
  replicated: GtidState;
}

export interface SemiSyncStatus {
  /** The primary side is active (ON, not fallen back to async). */
  primaryActive: boolean;
  primaryClients: number;
  replicaActive: boolean;
}

export type { Row } from './connection.ts';
import type { Row } from './connection.ts';
/** SHOW VARIABLES / SHOW STATUS rows folded into lower-case name -> value text. */
export type Vars = Record<string, string>;

/**
 * Where a server's replication starts from, by intent: `replica-position` continues from what it
 * replicated so far (a replica re-pointed to a new source); `all-executed` starts from everything
 * it has, its own writes included (a former primary rejoining). MySQL's auto-position always uses
 * everything executed; MariaDB needs to be told (slave_pos / current_pos).
 */
export type ReplicationStart = 'replica-position' | 'all-executed';

export interface SourceSpec {
  host: string;
  port: number;
  user: string;
  password?: Secret;
  heartbeatPeriodSeconds: number;
  startFrom: ReplicationStart;
}

/** A replica as its source knows it: the address it reported (report_host/report_port), if any. */
export interface RegisteredReplica {
  serverId: number;
  /** Empty when the replica set no report_host. */
  host: string;
  port: number;
}

/**
 * A server family. Everything that differs between MariaDB and MySQL lives behind this interface:
 * the SQL text Regent sends and how it reads the answers. Implementations are pure (no I/O), so
 * they are unit-tested on recorded rows; the recovery code runs what they produce.
 */
export interface Flavor {
  readonly name: GtidFlavor;
  /** What is the same for every version of this family: privileges, the doctor's words, tools. */
  readonly family: FlavorFamily;
  /** SHOW GLOBAL VARIABLES for what `parseSettings` and `parseGtids` read (a SHOW, so a missing
   *  plugin variable is simply absent instead of failing the whole probe). */
  readonly variablesQuery: string;
  /** SHOW GLOBAL STATUS for the semi-sync state. */
  readonly statusQuery: string;
  /** Replica status of the default channel, or no row when the server replicates from nobody. */
  readonly replicaStatusQuery: string;
  /** The replicas registered with this server (SHOW SLAVE HOSTS / SHOW REPLICAS): what a crawl follows. */
  readonly registeredReplicasQuery: string;
  parseRegisteredReplicas(rows: Row[]): RegisteredReplica[];
  parseSettings(vars: Vars): ServerSettings;
  parseGtids(vars: Vars): ServerGtids;
  parseSemiSync(status: Vars): SemiSyncStatus;
  /** Picks the default channel's row and parses it; undefined when the server is not a replica. */
  parseReplicaStatus(rows: Row[]): ReplicaStatus | undefined;
  parseGtid(text: string): GtidState;

  setReadOnly(on: boolean): string[];
  stopReplica(): string;
  stopReplicaIoThread(): string;
  /**
   * Returns (column `id`) the connection id of the replication IO thread. STOP SLAVE IO_THREAD waits
   * about 2 s when the IO thread is blocked reading from a frozen source; KILL of that id ends it at
   * once, so a failover away from a hung primary does not pay those seconds.
   */
  readonly ioThreadIdQuery: string;
  startReplica(): string;
  /** Starts only the SQL thread (to apply a relay log while the IO thread stays stopped). */
  startSqlThread(): string;
  /** Forget the replication configuration entirely (a promoted primary replicates from nobody). */
  resetReplica(): string;
  /** CHANGE MASTER / CHANGE REPLICATION SOURCE; the password goes as a `?` parameter, never in text. */
  changeSource(spec: SourceSpec): { sql: string; params: unknown[] };
  /** A query returning one row with column `result`: 0 reached, -1 / 1 timed out. */
  waitForGtid(gtid: GtidState, timeoutSeconds: number): { sql: string; params: unknown[] };
  /** Statements that make this server a semi-sync primary (or not) and a semi-sync replica (or not). */
  semiSyncRole(role: 'primary' | 'replica', timeoutMs: number): string[];
  /** Set the GTID position a new replica starts replicating from (bootstrap). */
  setGtidPosition(gtid: GtidState): { sql: string; params: unknown[] }[];
  /**
   * Forget the server's binary log and restart its GTID history at `gtid`: a restored copy (clone)
   * or a rewound former primary, whose binary log still names transactions it no longer has.
   */
  resetHistoryTo(gtid: GtidState): { sql: string; params: unknown[] }[];
}

/** A privilege an account needs, with what needs it (`regent grants` prints both). */
export interface PrivilegeNeed {
  privilege: string;
  why: string;
}

/**
 * The words doctor's fixes use in one server family, so the checks themselves never ask which
 * family they look at. Variable names that changed spelling (MySQL 8.0.26 renamed master/slave)
 * are picked from what the server itself reported.
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
  /** Said when GTID strictness is on. */
  gtidStrictOk: string;
  stopReplica: string;
  startReplica: string;
  restartIoThread: string;
  /** Makes a server accept writes (on) or refuse them, as a person types it. */
  setReadOnly: (on: boolean) => string;
  /** Sets the replication password (and user) of the replica's channel, keeping everything else. */
  changeReplicationUser: (user: string, passwordPlaceholder: string) => string;
  changeHeartbeat: (seconds: number) => string;
  /** Switches a replica from file/position to GTID positioning. */
  useGtid: string;
  logBinConfig: string;
  /** The option that makes a replica write what it applies to its own binary log. */
  logReplicaUpdatesConfig: string;
}

/** The privileges Regent's accounts need in one family. */
export interface FamilyGrants {
  manager: PrivilegeNeed[];
  /** Manager privileges a failover cannot do without (doctor calls their absence critical). */
  failover: ReadonlySet<string>;
  /** What the clone account needs; empty when the family has no clone tool. */
  clone: PrivilegeNeed[];
  /**
   * CREATE USER for the replication account as it may go to the binary log (and so to every
   * replica): never with the clear-text password in the logged statement.
   */
  createReplicationUser(user: string, host: string, password: string): { sql: string; params: unknown[] };
}

/** Saving and reversing a former primary's errant transactions (MariaDB: mariadb-binlog --flashback). */
export interface RewindTool {
  /** Whether this server can be rewound, or why not. */
  check(settings: ServerSettings): true | string;
  /** Writes the server's own binlog events after `from` to `file` as SQL a DBA can replay; returns its size. */
  saveEvents(node: InstanceConfig, conn: DbConnection, account: Account, from: string, file: string): Promise<number>;
  /** Reverses the events after `from` on the server, with binary logging off (`workFile` holds the reversal). */
  reverse(node: InstanceConfig, conn: DbConnection, account: Account, from: string, workFile: string): Promise<void>;
}

/** A consistent copy of a live server's application data onto another, with its GTID position. */
export interface CloneTool {
  /** Copies `databases` from `source` into `target` (loaded by `loader` with binary logging off); returns the snapshot's GTID position. */
  copy(cluster: ClusterConfig, source: InstanceConfig, target: InstanceConfig, loader: Account, databases: string[], progress: (bytes: number) => void): Promise<{ gtid: string; bytes: number }>;
}

/**
 * What the SQL endpoint (src/router/sql) sends to servers of one family on its own connections.
 * Text statements without parameters: the endpoint speaks the text protocol on the backend
 * connections it relays, so values are quoted here, never by the caller.
 */
export interface EndpointDialect {
  /**
   * Run first on every backend connection the endpoint opens: OK packets then report the session
   * variables and schema a statement changed, and the GTID of each commit (MariaDB: the
   * `last_gtid` variable; MySQL: the GTID tracker), which is how read-your-writes learns them.
   */
  readonly sessionTracking: string;
  /**
   * Accounts with their plugin and stored hash, roles left out. Columns: user, host, plugin, auth
   * (authentication_string), locked, auth_or (MariaDB's alternatives of IDENTIFIED VIA a OR b, JSON;
   * NULL where the family has none).
   */
  readonly accountHashesQuery: string;
  /** What the router service account needs to run `accountHashesQuery` (`regent grants`, the sandbox). */
  readonly accountHashesPrivileges: { privilege: string; on: string; why: string }[];
  /**
   * A SELECT of one column that waits up to `timeoutSeconds` until the server has applied `gtid`:
   * 0 when it has, anything else (MariaDB -1, MySQL 1) when the time ran out.
   */
  waitForGtidText(gtid: GtidState, timeoutSeconds: number): string;
}

/**
 * What is the same for every version of one server family: its name, its GTID notation, its
 * privileges, the doctor's words, and the tools it has. A versioned `Flavor` carries its family.
 */
export interface FlavorFamily {
  readonly name: GtidFlavor;
  readonly displayName: string;
  parseGtid(text: string): GtidState;
  readonly doctor: DoctorDialect;
  readonly grants: FamilyGrants;
  /** The SQL endpoint's statements (session tracking, account hashes, causal waits). */
  readonly endpoint: EndpointDialect;
  readonly rewind?: RewindTool;
  readonly clone?: CloneTool;
  /** MySQL keeps the heartbeat period out of SHOW REPLICA STATUS: a query returning it as `period`. */
  readonly heartbeatPeriodQuery?: string;
  /**
   * Accounts that lock after failed logins (MySQL FAILED_LOGIN_ATTEMPTS): returns a reason when a
   * refused login would count towards locking one of `users`.
   */
  accountLockout?(conn: DbConnection, users: string[]): Promise<string | undefined>;
}
