import type { GtidState } from '../gtid/index.ts';

/**
 * Every problem Regent can diagnose, each declared once: how bad it is, what it is about, how
 * urgent it is against the others, and what Regent does about it. The analysis produces problems
 * with typed data (never prose to parse back); the dispatcher looks the action up here; the doctor
 * keys its findings off the same table.
 */

export type Severity = 'critical' | 'warning' | 'info';

/** What a problem is about: the primary, one replica (or other instance), or the cluster as a whole. */
export type ProblemScope = 'primary' | 'instance' | 'cluster';

/**
 * What Regent does about a problem (the dispatcher maps each to its implementation). Problems
 * without an action are reported only.
 */
export type ActionName = 'add-replica' | 'failover' | 'fence-stray-primaries' | 'fence-for-lost-lease' | 'restore-writable' | 'rejoin' | 'restart-replication' | 'repoint-replica';

/** The facts behind each problem, typed, for whatever acts on it. */
export interface ProblemData {
  /** We cannot reach the primary and no reachable replica can either: fail over. */
  DeadPrimary: { confirmedBy: string[]; silentForMs?: number };
  /** As DeadPrimary, and some replicas are unreachable too; fail over among the rest. */
  DeadPrimaryAndSomeReplicas: { confirmedBy: string[]; unreachableReplicas: string[]; silentForMs?: number };
  /** Primary and every replica unreachable: nothing can be done from here. */
  DeadPrimaryAndAllReplicas: Record<string, never>;
  /**
   * The primary does not answer but it is not confirmed dead: replicas still hear from it, none can
   * confirm, or it has been silent for less than the hang tolerance.
   */
  UnreachablePrimary: { hearing: string[]; silentForMs?: number; hangToleranceMs?: number };
  /** The primary is reachable but read_only: nobody can write. */
  NoWritablePrimary: Record<string, never>;
  /** Two or more instances accept writes and replicate from nobody: split brain. */
  TwoWritablePrimaries: { writable: string[] };
  /**
   * This manager lost its coordination (etcd) for longer than the lease while the primary it
   * decided on is writable and other nodes live: another manager may be acting, so writes stop
   * here (coordination.primaryLease).
   */
  PrimaryLeaseExpired: { contactLostMs: number; otherLiveNodes: string[] };
  /** A replica accepts writes (read_only off): errant transactions waiting to happen. */
  WritableReplica: Record<string, never>;
  /** A replica's replication threads are stopped without an error. */
  ReplicationStopped: { ioThread: 'yes' | 'connecting' | 'no'; sqlThread: boolean };
  /** A replica's SQL or IO thread stopped on an error. */
  ReplicationBroken: { thread: 'sql' | 'io'; errno: number; error: string };
  /** A replica's IO thread cannot reach a primary that we can reach. */
  ReplicaCannotReachPrimary: { errno: number; error: string };
  /** A replica is further behind than the lag threshold. */
  ReplicaLagging: { seconds: number; thresholdSeconds: number };
  /** A replica has transactions the primary does not have. */
  ErrantGtid: { errant: GtidState };
  /** A replica replicates from an instance that is not the primary (a former primary, or outside the cluster). */
  ReplicaPointsElsewhere: { source: string; sourceInCluster?: string };
  /** A reachable instance replicates from nobody and is not the primary (a former primary waiting for rejoin). */
  OrphanInstance: Record<string, never>;
  /** A replica (or a former primary) we cannot reach. */
  UnreachableInstance: Record<string, never>;
  /**
   * A server registered as a replica of an instance but is not an instance of the cluster (attached
   * by hand after the cluster was registered): a failover would leave it pointing at the old primary.
   */
  UnmanagedReplica: { source: string; serverId: number; reachable: boolean; error?: string };
}

export type ProblemCode = keyof ProblemData;

export interface ProblemSpec {
  severity: Severity;
  scope: ProblemScope;
  /** Higher first: when several problems have actions, the dispatcher considers them in this order. */
  priority: number;
  action?: ActionName;
  /**
   * While this problem stands, no lower-priority action runs even when its own is held back (a
   * dead primary's replicas are not repaired one by one while the failover is blocked).
   */
  holdsLower?: boolean;
  /** One line for docs, alerts and the dashboard. */
  description: string;
}

export const PROBLEMS: { readonly [C in ProblemCode]: ProblemSpec } = {
  TwoWritablePrimaries: { severity: 'critical', scope: 'cluster', priority: 100, action: 'fence-stray-primaries', description: 'two instances accept writes and replicate from nobody (split brain): the one Regent did not decide on is fenced' },
  PrimaryLeaseExpired: { severity: 'critical', scope: 'primary', priority: 95, action: 'fence-for-lost-lease', description: 'this manager lost etcd for longer than the lease: the primary is set read_only (coordination.primaryLease)' },
  DeadPrimary: { severity: 'critical', scope: 'primary', priority: 90, action: 'failover', holdsLower: true, description: 'neither Regent nor any replica reaches the primary: fail over' },
  DeadPrimaryAndSomeReplicas: { severity: 'critical', scope: 'primary', priority: 89, action: 'failover', holdsLower: true, description: 'the primary and some replicas are dead: fail over among the rest' },
  DeadPrimaryAndAllReplicas: { severity: 'critical', scope: 'cluster', priority: 88, holdsLower: true, description: 'no instance of the cluster answers: nothing can be done from here' },
  UnreachablePrimary: { severity: 'critical', scope: 'primary', priority: 87, holdsLower: true, description: 'the primary does not answer Regent but is not confirmed dead: reported, never failed over' },
  NoWritablePrimary: { severity: 'critical', scope: 'primary', priority: 70, action: 'restore-writable', description: 'the primary is read_only: writes are refused (made writable again only under coordination.primaryLease)' },
  ErrantGtid: { severity: 'critical', scope: 'instance', priority: 60, description: 'an instance has transactions the primary lacks: never promoted' },
  OrphanInstance: { severity: 'warning', scope: 'instance', priority: 50, action: 'rejoin', description: 'an instance replicates from nobody and is not the primary: rejoined as a replica' },
  ReplicaPointsElsewhere: { severity: 'warning', scope: 'instance', priority: 40, action: 'repoint-replica', description: 'a replica replicates from a gone or fenced former primary: re-pointed to the primary' },
  ReplicationStopped: { severity: 'warning', scope: 'instance', priority: 30, action: 'restart-replication', description: 'replication stopped without an error: restarted after repair.afterSeconds' },
  ReplicationBroken: { severity: 'critical', scope: 'instance', priority: 20, description: 'replication stopped on an error: left for a person (regent repair)' },
  ReplicaCannotReachPrimary: { severity: 'warning', scope: 'instance', priority: 15, description: 'a replica cannot connect to a primary Regent reaches' },
  WritableReplica: { severity: 'warning', scope: 'instance', priority: 10, description: 'a replica has read_only off' },
  ReplicaLagging: { severity: 'warning', scope: 'instance', priority: 5, description: 'a replica is further behind than the lag threshold' },
  UnreachableInstance: { severity: 'warning', scope: 'instance', priority: 1, description: 'Regent cannot reach a replica or a former primary' },
  UnmanagedReplica: { severity: 'warning', scope: 'instance', priority: 2, action: 'add-replica', description: 'a server replicates from the cluster but is not one of its instances: added when discovery.addReplicas is on, reported otherwise' },
};

interface ProblemOf<C extends ProblemCode> {
  code: C;
  severity: Severity;
  /** The instance it is about (host:port), or undefined for cluster-wide problems. */
  instance?: string;
  summary: string;
  /** The facts behind the diagnosis, one per line, for people. */
  evidence: string[];
  data: ProblemData[C];
}

export type Problem<C extends ProblemCode = ProblemCode> = { [K in C]: ProblemOf<K> }[C];

/** Builds a problem with the severity its code declares. */
export function problem<C extends ProblemCode>(code: C, p: { instance?: string; summary: string; evidence: string[]; data: ProblemData[C] }): Problem<C> {
  return { code, severity: PROBLEMS[code].severity, ...p } as Problem<C>;
}

/** Whether this is the given kind of problem, narrowing its data. */
export function isProblem<C extends ProblemCode>(p: Problem, code: C): p is Extract<Problem, { code: C }> {
  return p.code === code;
}

/** Problem identity across analyses: the same code about the same instance. */
export function problemKey(p: Pick<Problem, 'code' | 'instance'>): string {
  return `${p.code}|${p.instance ?? ''}`;
}
