import type { ClusterReport } from '../analysis/cluster-report.ts';
import type { ClusterConfig } from '../config/load.ts';
import type { JournalEntry, ManagerInfo } from '../coordination/coordinator.ts';
import type { Decision } from '../decision/decision.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import type { ClusterAddResult } from '../inventory/clusters.ts';
import type { ReloadReport } from '../inventory/diff.ts';
import type { ClusterOrigin } from '../inventory/merge.ts';
import type { FailoverResult } from '../recovery/failover.ts';
import type { FailoverPlan } from '../recovery/plan.ts';
import type { RejoinResult } from '../recovery/rejoin.ts';
import type { SwitchoverCheck } from '../recovery/switchover-checks.ts';
import type { SwitchoverResult } from '../recovery/switchover.ts';
import type { RoutingTable } from '../router/routing-table.ts';

/**
 * What the HTTP API needs of a running manager. The API declares it and the manager satisfies it;
 * the composition root (cli/run.ts) hands one to the other, so neither imports the other.
 */
export interface ManagerApi {
  clusterNames(): string[];
  cluster(name: string): ClusterApi | undefined;
  /** This manager leads the cluster: it alone executes plans for it. */
  isLeader(cluster: string): boolean;
  managers(): Promise<(ManagerInfo & { self: boolean; backend: string })[]>;
  readJournal(cluster?: string): Promise<JournalEntry[]>;
  /** Every event worth telling a live display; returns the unsubscribe function. */
  onEvent(listener: (e: Record<string, unknown>) => void): () => void;
  emitEvent(e: Record<string, unknown>): void;
  /** Reads the configuration (and inventory) again; throws ConfigError, changing nothing, when it does not load. */
  reload(trigger: string): Promise<ReloadReport>;
  addCluster(req: { name: string; seed: string; dryRun: boolean; acceptFindings: boolean }): Promise<ClusterAddResult>;
  removeCluster(name: string): Promise<{ where: string; report: ReloadReport }>;
  /** Where each cluster is registered: the configuration file or the inventory. */
  origins(): Map<string, ClusterOrigin>;
}

export interface RepairOutcome {
  ok: boolean;
  instance: string;
  action: string;
  detail: string;
}

/** One cluster as the API sees it. Actions return `{ refusal }` when they changed nothing. */
export interface ClusterApi {
  readonly config: ClusterConfig;
  report(): ClusterReport;
  decision(): Decision;
  /** Automatic failover is blocked by anti-flapping until then (ms since epoch). */
  blockedUntil(): number | undefined;
  /** An action runs on the cluster right now. */
  acting(): boolean;
  /** The router's endpoints and routing table, when this manager routes for the cluster. */
  routing(): { endpoints: Record<string, string | undefined>; table: RoutingTable } | undefined;
  observation(instance: string): InstanceObservation | undefined;
  plan(): Promise<FailoverPlan | { refusal: string }>;
  failover(opts: { force: boolean; trigger: string }): Promise<FailoverResult | { refusal: string }>;
  switchover(target: string | undefined, trigger: string): Promise<SwitchoverResult | { refusal: string; checks?: SwitchoverCheck }>;
  rejoin(instance: string, trigger: string): Promise<RejoinResult | { refusal: string }>;
  repair(instance: string, action: 'retry' | 'reclone'): Promise<RepairOutcome | { refusal: string }>;
  acknowledge(): Promise<Decision>;
  setMaintenance(instance: string, until: number | undefined): Promise<void>;
}
