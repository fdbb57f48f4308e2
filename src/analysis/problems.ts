/**
 * Every problem Regent can diagnose. The code decides what Regent does about it (a lookup table in
 * recovery/), the evidence explains why, in words a DBA can check.
 */
export type ProblemCode =
  /** We cannot reach the primary and no reachable replica can either: fail over. */
  | 'DeadPrimary'
  /** As DeadPrimary, and some replicas are unreachable too; fail over among the rest. */
  | 'DeadPrimaryAndSomeReplicas'
  /** Primary and every replica unreachable: nothing can be done from here. */
  | 'DeadPrimaryAndAllReplicas'
  /** Only we cannot reach the primary; replicas still hear from it: alert, never fail over. */
  | 'UnreachablePrimary'
  /** The primary is reachable but read_only: nobody can write. */
  | 'NoWritablePrimary'
  /** Two or more instances accept writes and replicate from nobody: split brain. */
  | 'TwoWritablePrimaries'
  /** A replica accepts writes (read_only off): errant transactions waiting to happen. */
  | 'WritableReplica'
  /** A replica's replication threads are stopped without an error. */
  | 'ReplicationStopped'
  /** A replica's SQL or IO thread stopped on an error. */
  | 'ReplicationBroken'
  /** A replica's IO thread cannot reach a primary that we can reach. */
  | 'ReplicaCannotReachPrimary'
  /** A replica is further behind than the lag threshold. */
  | 'ReplicaLagging'
  /** A replica has transactions the primary does not have. */
  | 'ErrantGtid'
  /** A replica replicates from an instance that is not the primary (a former primary, or outside the cluster). */
  | 'ReplicaPointsElsewhere'
  /** A reachable instance replicates from nobody and is not the primary (a former primary waiting for rejoin). */
  | 'OrphanInstance'
  /** A replica (or a former primary) we cannot reach. */
  | 'UnreachableInstance';

export type Severity = 'critical' | 'warning' | 'info';

export interface Problem {
  code: ProblemCode;
  severity: Severity;
  /** The instance it is about (host:port), or undefined for cluster-wide problems. */
  instance?: string;
  summary: string;
  /** The facts behind the diagnosis, one per line. */
  evidence: string[];
}
