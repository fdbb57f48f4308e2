import type { EventEmitter } from 'node:events';
import type { Analysis } from '../analysis/analyze.ts';
import type { ClusterView } from '../analysis/cluster-view.ts';
import type { ActionName, Problem } from '../analysis/problems.ts';
import type { ClusterConfig, Config } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import type { DecisionRecord } from '../decision/record.ts';
import type { ClusterMonitor } from '../monitor/cluster-monitor.ts';
import type { FailoverResult } from '../recovery/failover.ts';
import type { RejoinResult } from '../recovery/rejoin.ts';
import type { RecoveryContext } from '../recovery/steps.ts';
import type { SwitchoverResult } from '../recovery/switchover.ts';
import type { AdminPool } from '../sql/admin-pool.ts';
import type { Logger } from '../util/log.ts';

export interface SupervisorOptions {
  /** Test-only: stop after this recovery step and wait forever (a manager killed mid-recovery). */
  pauseAfterStep?: string;
  /** Test-only: wait this long before a step. */
  delayBeforeStep?: { step: string; ms: number };
  /** Test-only: skip the relay-log drain (the chaos suite proves its checker catches the loss). */
  skipDrain?: boolean;
  /** The data plane's SQL sessions out of their transactions on a primary (see RecoveryContext.drainSessions). */
  drainSessions?: (cluster: string, primary: string, timeoutMs: number) => Promise<number | undefined>;
  /** Observe and route only (`regent proxy`): follow the acting manager's decisions, never act. */
  observeOnly?: boolean;
  stateDir?: string;
  coordination?: Config['coordination'];
  /** How long this manager has been cut off from its coordination beyond the lease (primaryLease only). */
  leaseLostForMs?: () => number | undefined;
  /**
   * Registers an instance with a cluster (YAML or etcd inventory) and has the manager take it on
   * soon after; resolves once registered, not once taken on. Absent for one-shot commands.
   */
  addInstance?: (cluster: string, address: string) => Promise<string>;
}

/** What happened in an action the dispatcher ran. */
export interface ActionOutcome {
  /** done: it acted; refused: it found a reason not to (nothing changed); failed: it tried and failed. */
  outcome: 'done' | 'refused' | 'failed';
  detail: string;
}

export interface ActionEvent {
  action: ActionName;
  code: Problem['code'];
  instance?: string;
  outcome: ActionOutcome['outcome'] | 'stale';
  detail: string;
  durationMs: number;
}

export interface SupervisorEvents {
  analysis: [Analysis];
  problem: [{ kind: 'started' | 'resolved'; problem: Problem }];
  action: [ActionEvent];
  failover: [FailoverResult];
  switchover: [SwitchoverResult];
  rejoin: [RejoinResult];
  repair: [{ instance: string; action: string }];
  step: [{ planId: string; kind: string; step: string; phase: 'start' | 'end'; ok?: boolean; durationMs?: number; detail?: string }];
}

/** One cluster as its actions see it: the parts, the current view, and where to report. */
export interface ClusterContext {
  readonly cluster: ClusterConfig;
  readonly monitor: ClusterMonitor;
  readonly admin: AdminPool;
  readonly decision: DecisionRecord;
  readonly coordinator: Coordinator;
  readonly log: Logger;
  readonly options: SupervisorOptions;
  readonly events: EventEmitter<SupervisorEvents>;
  /** The latest observations judged against the current decision. */
  view(): ClusterView;
  recoveryContext(): RecoveryContext;
  /** Logs why Regent does not act, at most once every 10 s per message. */
  logBlocked(message: string): void;
}
