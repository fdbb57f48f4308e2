import type { Account, ClusterConfig, InstanceConfig } from '../config/load.ts';
import type { GtidFlavor, GtidState } from '../gtid/index.ts';
import type { DbConnection } from './connection.ts';
import type { ServerSettings, Vars } from './flavor.ts';

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
 * What is the same for every version of one server family: its name, its GTID notation, its
 * privileges, the doctor's words, and the tools it has. A versioned `Flavor` carries its family.
 */
export interface FlavorFamily {
  readonly name: GtidFlavor;
  readonly displayName: string;
  parseGtid(text: string): GtidState;
  readonly doctor: DoctorDialect;
  readonly grants: FamilyGrants;
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
