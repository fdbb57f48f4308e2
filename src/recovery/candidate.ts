import type { InstanceConfig } from '../config/load.ts';
import { parseGtid, type GtidState } from '../gtid/index.ts';

/** What candidate choice needs to know about one replica of the failed primary. */
export interface ReplicaFacts {
  instance: InstanceConfig;
  reachable: boolean;
  /** Transactions it has (after draining), or will have once its relay log is applied. */
  executed?: GtidState;
  /** Transactions its IO thread received (its relay log); beyond `executed` only when it could not drain. */
  received?: GtidState;
  logBin: boolean;
  logReplicaUpdates: boolean;
  sqlDelay: number;
  /** SQL thread stopped on an error: its data stops at that error. */
  sqlError?: string;
  /** Known to carry errant transactions (seen while the primary was alive, or found now). */
  errant?: string;
  /** In maintenance: observed, never promoted. */
  maintenance?: boolean;
  /**
   * How far behind its source it was at the last probe that could measure it (seconds), i.e. just
   * before the failure: a replica that far behind would take that long to become useful.
   */
  lagSeconds?: number;
}

export interface CandidateChoice {
  /** The replica to promote, or undefined when none may be. */
  candidate?: string;
  /** A replica ahead of the candidate that it must catch up from before promotion. */
  catchUpFrom?: string;
  /** Why the candidate won, one reason per line. */
  reasons: string[];
  /** Every replica that may not be promoted, with why. */
  rejected: { id: string; why: string }[];
  /** Set when Regent must not fail over at all, with the reason. */
  refusal?: string;
}

/**
 * Picks the replica to promote. Rules, in order: never promote what the rules forbid (`never`,
 * delayed, no binlog or log_replica_updates, errant transactions, broken SQL thread, maintenance,
 * lag beyond failover.maxLagForCandidateSeconds or unknown when that limit is set);
 * among the rest, the one missing the fewest transactions of what any reachable replica has; ties
 * go to `prefer`, then the old primary's data center, then config order. If another replica (say a
 * `never` one) is ahead of the winner, the winner catches up from it first; if no single replica
 * holds everything (they diverged), refuse rather than lose something. The catch-up source never
 * has errant transactions (they would be copied to the new primary): when only such a replica
 * holds what the winner lacks, refuse.
 */
export function chooseCandidate(replicas: ReplicaFacts[], opts: { oldPrimaryDataCenter?: string; oldPrimaryOrigin?: string; maxLagSeconds?: number }): CandidateChoice {
  const rejected: { id: string; why: string }[] = [];
  const reachable = replicas.filter((r) => r.reachable && r.executed);
  for (const r of replicas) if (!r.reachable) rejected.push({ id: r.instance.id, why: 'unreachable' });
  if (reachable.length === 0) return { reasons: [], rejected, refusal: 'no reachable replica to promote' };

  // Everything any reachable replica has: nothing of this may be lost.
  let everything = reachable[0]!.executed!;
  for (const r of reachable.slice(1)) everything = everything.union(r.executed!);
  // Acknowledged transactions may sit only in a relay log that could not be applied (SQL thread
  // stopped on an error): no promotion can carry them, so none may happen.
  for (const r of reachable) {
    const stuck = r.received?.subtract(everything);
    if (stuck && !stuck.isEmpty())
      return {
        reasons: [],
        rejected,
        refusal: `${r.instance.id} received ${stuck.toString()} that no replica has applied (its SQL thread could not drain${r.sqlError ? `: ${r.sqlError}` : ''}); promoting would lose them. Fix its SQL thread, then fail over`,
      };
  }

  // A replica holding transactions that no other replica has and that did not come from the old
  // primary wrote them itself: errant, whatever the monitor saw earlier.
  const errantNow = new Map<string, GtidState>();
  // Without knowing the old primary's origin, a replica that is merely ahead would look errant.
  if (reachable.length > 1 && opts.oldPrimaryOrigin !== undefined) {
    for (const r of reachable) {
      let others: GtidState | undefined;
      for (const o of reachable) if (o !== r) others = others ? others.union(o.executed!) : o.executed!;
      const extra = r.executed!.subtract(others!).withoutOrigin(opts.oldPrimaryOrigin);
      if (!extra.isEmpty()) errantNow.set(r.instance.id, extra);
    }
  }
  // Every replica with errant transactions, with the set when it is known as GTIDs.
  const errantOf = new Map<string, { text: string; set?: GtidState }>();
  for (const r of reachable) {
    const now = errantNow.get(r.instance.id);
    if (r.errant !== undefined) errantOf.set(r.instance.id, { text: r.errant, set: parseOrUndefined(r.executed!.flavor, r.errant) });
    else if (now) errantOf.set(r.instance.id, { text: now.toString(), set: now });
  }

  const allowed: ReplicaFacts[] = [];
  for (const r of reachable) {
    const id = r.instance.id;
    const errant = errantOf.get(id)?.text;
    const why =
      r.maintenance ? 'in maintenance'
      : r.instance.promotion === 'never' ? 'promotion rule is never'
      : !r.logBin ? 'binary log off: cannot serve as a source'
      : !r.logReplicaUpdates ? 'log_slave_updates off: replicas could not follow it'
      : r.sqlDelay > 0 ? `delayed replica (${r.sqlDelay} s)`
      : errant ? `errant transactions ${errant}`
      : r.sqlError ? `SQL thread stopped on an error: ${r.sqlError}`
      : opts.maxLagSeconds !== undefined && r.lagSeconds === undefined ? `its lag is unknown and failover.maxLagForCandidateSeconds is ${opts.maxLagSeconds}`
      : opts.maxLagSeconds !== undefined && r.lagSeconds! > opts.maxLagSeconds ? `it was ${r.lagSeconds} s behind its source, more than failover.maxLagForCandidateSeconds (${opts.maxLagSeconds} s)`
      : undefined;
    if (why) rejected.push({ id, why });
    else allowed.push(r);
  }
  if (allowed.length === 0) return { reasons: [], rejected, refusal: `no replica may be promoted: ${rejected.map((r) => `${r.id} (${r.why})`).join('; ')}` };

  const order = new Map(replicas.map((r, i) => [r.instance.id, i]));
  const missing = (r: ReplicaFacts) => everything.countMissingFrom(r.executed!);
  const rank = (r: ReplicaFacts): [bigint, number, number, number] => [
    missing(r),
    r.instance.promotion === 'prefer' ? 0 : 1,
    opts.oldPrimaryDataCenter && r.instance.dataCenter === opts.oldPrimaryDataCenter ? 0 : 1,
    order.get(r.instance.id) ?? 0,
  ];
  const sorted = [...allowed].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! < rb[i]! ? -1 : 1;
    return 0;
  });
  const best = sorted[0]!;
  const reasons: string[] = [];
  const bestMissing = missing(best);
  const runnerUp = sorted[1];
  if (bestMissing === 0n) reasons.push(`${best.instance.id} has every transaction any reachable replica has (${best.executed!.toString() || 'empty'})`);
  else reasons.push(`${best.instance.id} is the most advanced allowed replica (${bestMissing} transaction(s) behind the most advanced replica)`);
  if (runnerUp && missing(runnerUp) === bestMissing) {
    const [, p1, d1] = rank(best);
    const [, p2, d2] = rank(runnerUp);
    if (p1 < p2) reasons.push(`tie with ${runnerUp.instance.id} broken by promotion rule prefer`);
    else if (d1 < d2) reasons.push(`tie with ${runnerUp.instance.id} broken by data center ${best.instance.dataCenter} (the old primary's)`);
    else reasons.push(`tie with ${runnerUp.instance.id} broken by config order`);
  }

  // Errant transactions are never carried over: catching up from a replica that has them would
  // copy them to the new primary. What a state lacks may be only other replicas' errant sets; an
  // errant set that covers part of the state's own history (a MariaDB entry in a shared domain
  // implies the transactions before it) proves nothing.
  const errantSets = [...errantOf.values()];
  const lacksOnlyErrant = (x: GtidState) => errantSets.every((e) => e.set && x.subtract(e.set).equals(x)) && errantSets.reduce((acc, e) => acc.union(e.set!), x).contains(everything);
  let catchUpFrom: string | undefined;
  if (bestMissing > 0n && !lacksOnlyErrant(best.executed!)) {
    const holder = reachable.find((r) => !errantOf.has(r.instance.id) && (r.executed!.contains(everything) || lacksOnlyErrant(r.executed!)));
    const errantHolder = reachable.find((r) => r.executed!.contains(everything));
    if (!holder && errantHolder)
      return {
        reasons,
        rejected,
        refusal: `${best.instance.id} lacks transactions that only ${errantHolder.instance.id} holds, and ${errantHolder.instance.id} has errant transactions ${errantOf.get(errantHolder.instance.id)?.text}: catching up from it would copy them to the new primary, promoting without it could lose acknowledged writes. Rewind or rebuild ${errantHolder.instance.id} (regent rejoin, regent clone), or fail over by hand`,
      };
    if (!holder)
      return {
        reasons,
        rejected,
        refusal: `reachable replicas diverged (no single one holds everything: ${everything.toString()}); promoting any would lose transactions`,
      };
    if (!holder.logBin || !holder.logReplicaUpdates)
      return { reasons, rejected, refusal: `${holder.instance.id} holds transactions ${best.instance.id} lacks but cannot serve as a source (binary log)` };
    catchUpFrom = holder.instance.id;
    reasons.push(`${best.instance.id} first catches up from ${holder.instance.id}, which has ${bestMissing} more transaction(s)`);
  } else if (bestMissing > 0n) {
    reasons.push(`${best.instance.id} lacks only errant transactions of other replicas: nothing to catch up`);
  }
  return { candidate: best.instance.id, catchUpFrom, reasons, rejected };
}

function parseOrUndefined(flavor: GtidState['flavor'], text: string): GtidState | undefined {
  try {
    return parseGtid(flavor, text);
  } catch {
    return undefined;
  }
}
