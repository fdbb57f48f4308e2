import { errantTransactions } from '../analysis/analyze.ts';
import type { GtidState } from '../gtid/index.ts';
import type { InstanceObservation } from '../monitor/observation.ts';

export type RejoinDecision =
  | { action: 'join'; reason: string }
  | { action: 'rewind'; commonPoint: GtidState; errant: GtidState; reason: string }
  | { action: 'refuse'; reason: string; errant?: string };

/**
 * Whether a former primary (or any instance replicating from nobody) can replicate from the
 * current primary as it is, must be rewound first, or must be left to a person. Pure.
 *
 * With the position its successor was promoted at (the common point, recorded by the failover),
 * everything the node has beyond it is errant: written there, never replicated. Without one, only
 * what GTID positions show can be judged (transactions ahead of the primary, or diverged).
 */
export function decideRejoin(input: {
  node: InstanceObservation;
  primary: InstanceObservation;
  commonPoint?: GtidState;
  policy: 'manual' | 'flashback';
  /** Whether the server family can rewind this node (true), or why not. */
  rewind: true | string;
}): RejoinDecision {
  const { node, primary, commonPoint, policy } = input;
  if (!node.reachable || !node.gtids || !node.settings) return { action: 'refuse', reason: `${node.id} is not reachable` };
  if (!primary.reachable || !primary.gtids || !primary.settings) return { action: 'refuse', reason: `the primary ${primary.id} is not reachable` };
  const nodeHas = node.gtids.executed;
  let errant: GtidState;
  if (commonPoint) {
    // Beyond the common point and not on the primary (the primary's own later writes never are on the node).
    errant = nodeHas.subtract(commonPoint).subtract(primary.gtids.executed);
    // MariaDB positions only say "last seq per domain": a node entry behind the primary's seq in
    // the same domain but written by the node itself after the common point is still errant.
    if (errant.isEmpty() && !commonPoint.contains(nodeHas.withoutOrigin(primary.settings.gtidOrigin))) errant = nodeHas.subtract(commonPoint);
  } else {
    errant = errantTransactions(nodeHas, primary.gtids.executed, primary.settings.gtidOrigin);
  }
  if (errant.isEmpty()) return { action: 'join', reason: `${node.id} has nothing the primary lacks${commonPoint ? ` beyond the common point ${commonPoint.toString() || '(empty)'}` : ''}` };
  const list = errant.toString();
  if (policy === 'manual') return { action: 'refuse', reason: `${node.id} has errant transactions ${list} (rejoin policy is manual: it stays read_only and fenced; rewind it with rejoin.errant: flashback, or rebuild it with regent clone)`, errant: list };
  if (!commonPoint) return { action: 'refuse', reason: `${node.id} has errant transactions ${list} but the point where it parted from the cluster is unknown, so they cannot be rewound safely; rebuild it with regent clone`, errant: list };
  if (input.rewind !== true) return { action: 'refuse', reason: `${node.id} has errant transactions ${list} and cannot be rewound here: ${input.rewind}; rebuild it with regent clone`, errant: list };
  return { action: 'rewind', commonPoint, errant, reason: `${node.id} has errant transactions ${list} after ${commonPoint.toString()}: save, rewind with flashback, rejoin` };
}
