import type { ClusterState } from '../coordination/coordinator.ts';

/**
 * Until when automatic failover of a cluster is blocked by anti-flapping (failover.blockPeriodSeconds
 * after the last recovery, unless a person acknowledged it since), or undefined when it is not.
 * The same rule the supervisor applies before an automatic failover and the API reports as
 * `blockedUntil`; here for regent_failover_blocked.
 */
export function antiFlappingBlockedUntil(state: ClusterState | undefined, blockPeriodSeconds: number, now = Date.now()): number | undefined {
  const last = state?.lastRecovery;
  if (!last) return undefined;
  if (state.acknowledgedAt !== undefined && state.acknowledgedAt >= last.at) return undefined;
  const until = last.at + blockPeriodSeconds * 1000;
  return now < until ? until : undefined;
}
