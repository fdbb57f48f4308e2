import type { ClusterConfig } from '../config/load.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import type { DbErrorKind } from '../errors.ts';
import type { Vars } from '../sql/flavor.ts';

/**
 * What `regent doctor` learned about a cluster, as plain data: gathered by read-only queries
 * (gather.ts), judged by pure functions (evaluate.ts). Tests build these by hand.
 */

/** The outcome of logging in to a server with one of Regent's other accounts. */
export interface LoginFacts {
  ok: boolean;
  errorKind?: DbErrorKind;
  /** One line, never containing the password. */
  error?: string;
  /** Global privileges of the account, when it logged in. */
  privileges?: string[];
}

export interface InstanceFacts {
  id: string;
  /** One probe with the manager account: unreachable, with the reason, when it failed. */
  obs: InstanceObservation;
  /** The manager account logged in (a probe can still fail afterwards on a missing privilege). */
  connected: boolean;
  /** SELECT @@version. */
  version?: string;
  /** CURRENT_USER() of the manager session. */
  managerAccount?: { user: string; host: string };
  /** Global privileges of the manager account, from SHOW GRANTS FOR CURRENT_USER(). */
  managerPrivileges?: string[];
  /** Server variables doctor reads besides the probe's (lower-case names; absent = not reported). */
  vars: Vars;
  /** Replica side: the heartbeat period of its replication channel (seconds; 0 = disabled). */
  heartbeatPeriodSeconds?: number | null;
  /** Replica side: the account its IO thread logs in to the source with. */
  replicaUser?: string;
  /** Server clock minus this host's clock (ms), taken at the middle of the round trip. */
  clock?: { offsetMs: number; roundTripMs: number };
  /** This host as the server sees it (the host part of USER() in the manager session). */
  clientHost?: string;
  /** Host parts of the accounts named like the replication user on this server (mysql.user). */
  replicationAccountHosts?: string[];
  /** Logging in here with credentials.replication. */
  replicationLogin?: LoginFacts;
  /**
   * Why the logins with the other accounts were not tried here: the server blocks an account after
   * failed logins (MariaDB max_password_errors, MySQL FAILED_LOGIN_ATTEMPTS), and a wrong password
   * tried on every doctor run would end up blocking it for the replicas too.
   */
  loginsSkipped?: string;
  /** Logging in here with credentials.clone, when it is configured apart from the manager account. */
  cloneLogin?: LoginFacts;
  /** What could not be read, one line each (those checks are reported as not done). */
  errors: string[];
}

export interface ClusterFacts {
  cluster: ClusterConfig;
  instances: InstanceFacts[];
  /** When the facts were gathered (ms since epoch). */
  now: number;
  /** The config file, to name in fixes (`regent grants --config F`). */
  configFile?: string;
}

export type FindingSeverity = 'ok' | 'warning' | 'critical';

/** One checked thing: what was found, and for anything not ok, the exact fix. */
export interface Finding {
  severity: FindingSeverity;
  cluster: string;
  /** host:port, or absent for a cluster-wide finding. */
  instance?: string;
  /** The instance's short name from the config. */
  name?: string;
  check: CheckId;
  /** One line. */
  message: string;
  /** SQL to run, a config line to set, or a command; absent for ok findings. */
  fix?: string;
}

export type CheckId =
  | 'authentication'
  | 'connect'
  | 'privileges'
  | 'log-bin'
  | 'log-replica-updates'
  | 'binlog-format'
  | 'gtid-strict'
  | 'server-id'
  | 'read-only'
  | 'semi-sync'
  | 'heartbeat'
  | 'hang-tolerance'
  | 'relay-log-recovery'
  | 'replication'
  | 'lag'
  | 'errant-gtid'
  | 'binlog-retention'
  | 'clock'
  | 'replication-account'
  | 'clone-account'
  | 'topology'
  | 'failover-candidate';

export interface DoctorThresholds {
  /** Clock difference from this host above which a server is reported (ms). */
  clockSkewMs: number;
  /** Binary logs kept for less than this cannot serve a former primary's rejoin after a long outage (s). */
  minBinlogRetentionSeconds: number;
  /** rpl_semi_sync_master_timeout outside this range is reported (ms). */
  semiSyncTimeoutMinMs: number;
  semiSyncTimeoutMaxMs: number;
}

export const DEFAULT_THRESHOLDS: DoctorThresholds = {
  clockSkewMs: 1000,
  minBinlogRetentionSeconds: 86400,
  semiSyncTimeoutMinMs: 1000,
  semiSyncTimeoutMaxMs: 60000,
};

/** What stands for each password in printed SQL: doctor and `regent grants` never print real ones. */
export const PASSWORD_PLACEHOLDERS = {
  manager: '<MANAGER_PASSWORD>',
  replication: '<REPLICATION_PASSWORD>',
  clone: '<CLONE_PASSWORD>',
  router: '<ROUTER_PASSWORD>',
} as const;
