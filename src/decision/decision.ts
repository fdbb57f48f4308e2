import type { ClusterState } from '../coordination/coordinator.ts';

/**
 * What Regent has decided about one cluster, as a read-only snapshot: the primary it decided on,
 * the former primaries it fenced, maintenance windows, known errant transactions, the last
 * recovery. Observations say what servers report; a decision says what Regent chose to believe
 * and act on. Only the cluster's DecisionRecord (record.ts) makes a new one.
 */
export interface Decision {
  readonly cluster: string;
  /** The primary Regent decided on: the only instance a writer endpoint may reach. */
  readonly decidedPrimary?: string;
  /** When the decided primary last changed (ms since epoch; 0 when it came from an earlier run). */
  readonly decidedAt: number;
  /** A primary change under way: writers are held until it ends. */
  readonly changing?: { readonly kind: 'failover' | 'switchover'; readonly planId: string; readonly since: number };
  /** Former primaries Regent fenced: never routed to, never adopted as primary from stale pointers. */
  readonly fenced: ReadonlySet<string>;
  /** Instances in maintenance and when it ends (ms since epoch): observed, never acted on. */
  readonly maintenance: ReadonlyMap<string, number>;
  /** Errant GTID sets known per instance (seen against a live primary, or found at rejoin): never promoted. */
  readonly errant: ReadonlyMap<string, string>;
  /** Per former primary: the GTID position its successor was promoted at (their common history). */
  readonly commonPoints: ReadonlyMap<string, string>;
  readonly lastRecovery?: ClusterState['lastRecovery'];
  readonly lastSwitchover?: ClusterState['lastSwitchover'];
  /** When a person acknowledged the last recovery (lifts the anti-flapping block). */
  readonly acknowledgedAt?: number;
}

export function emptyDecision(cluster: string): Decision {
  return { cluster, decidedAt: 0, fenced: new Set(), maintenance: new Map(), errant: new Map(), commonPoints: new Map() };
}

/** The decision as the coordinator stores it. */
export function decisionToState(d: Decision): ClusterState {
  return {
    decidedPrimary: d.decidedPrimary,
    decidedAt: d.decidedAt || undefined,
    lastRecovery: d.lastRecovery,
    lastSwitchover: d.lastSwitchover,
    acknowledgedAt: d.acknowledgedAt,
    fenced: d.fenced.size > 0 ? [...d.fenced] : undefined,
    commonPoints: d.commonPoints.size > 0 ? Object.fromEntries(d.commonPoints) : undefined,
    errant: d.errant.size > 0 ? Object.fromEntries(d.errant) : undefined,
    maintenance: d.maintenance.size > 0 ? Object.fromEntries(d.maintenance) : undefined,
  };
}

/** A stored state as a decision. States written before the rename carry `primary`. */
export function decisionFromState(cluster: string, s: ClusterState): Decision {
  return {
    cluster,
    decidedPrimary: s.decidedPrimary ?? s.primary,
    decidedAt: s.decidedAt ?? 0,
    fenced: new Set(s.fenced ?? []),
    maintenance: new Map(Object.entries(s.maintenance ?? {})),
    errant: new Map(Object.entries(s.errant ?? {})),
    commonPoints: new Map(Object.entries(s.commonPoints ?? {})),
    lastRecovery: s.lastRecovery,
    lastSwitchover: s.lastSwitchover,
    acknowledgedAt: s.acknowledgedAt,
  };
}

export function inMaintenance(d: Decision | undefined, id: string, now: number): boolean {
  const until = d?.maintenance.get(id);
  return until !== undefined && until > now;
}

/** Instances whose maintenance window is open at `now`. */
export function maintenanceSet(d: Decision | undefined, now: number): Set<string> {
  return new Set([...(d?.maintenance ?? new Map<string, number>())].filter(([, until]) => until > now).map(([id]) => id));
}

export interface AntiFlapping {
  /** Automatic failover is blocked until then (ms since epoch), or undefined when it is allowed. */
  blockedUntil?: number;
  /** Why, in words an operator can act on. */
  reason?: string;
}

/**
 * Anti-flapping: after a recovery, no automatic failover of the cluster for the block period,
 * unless a person acknowledged the recovery since. Pure; the dispatcher, the API and the metrics
 * all ask this one function.
 */
export function antiFlapping(d: Decision, blockPeriodSeconds: number, now: number): AntiFlapping {
  const last = d.lastRecovery;
  if (!last) return {};
  if (d.acknowledgedAt !== undefined && d.acknowledgedAt >= last.at) return {};
  const until = last.at + blockPeriodSeconds * 1000;
  if (now >= until) return {};
  return {
    blockedUntil: until,
    reason: `blocked by anti-flapping: the last recovery (${last.kind} ${last.oldPrimary} -> ${last.newPrimary ?? 'none'}, ${last.outcome}) was at ${new Date(last.at).toISOString()} and the block period is ${blockPeriodSeconds} s; run \`regent ack ${d.cluster}\` to allow it`,
  };
}
