import type { Analysis } from '../analysis/analyze.ts';
import { errantTransactions } from '../analysis/analyze.ts';
import type { ClusterView } from '../analysis/cluster-view.ts';
import { inMaintenance } from '../decision/decision.ts';
import { chooseCandidate } from './candidate.ts';
import { replicaFactsFromView } from './plan.ts';

export interface SwitchoverSettings {
  maxLagSeconds: number;
  maxTransactionSeconds: number;
}

export interface LongTransaction {
  id: string;
  seconds: number;
  rowsModified: number;
}

export interface SwitchoverCheck {
  oldPrimary?: string;
  target?: string;
  /** Why the switchover must not start; empty when it may. */
  refusals: string[];
  /** What was checked and passed, for the report. */
  passed: string[];
}

/**
 * Pre-checks of a planned switchover, pure: the primary is alive and writable; the target (given,
 * or the best candidate) replicates from it, is not lagging, has no errant transactions and is
 * allowed by the rules; no write transaction on the primary has been running too long (it would
 * hold read_only up, or be killed). Any refusal leaves the cluster untouched.
 */
export function checkSwitchover(
  view: ClusterView,
  analysis: Analysis,
  opts: { target?: string; settings: SwitchoverSettings; longTransactions: LongTransaction[] },
): SwitchoverCheck {
  const refusals: string[] = [];
  const passed: string[] = [];
  const oldPrimary = analysis.topology.primary;
  const p = oldPrimary ? view.observations.get(oldPrimary) : undefined;
  if (!oldPrimary || !p?.reachable) return { oldPrimary, refusals: [`the primary ${oldPrimary ?? '(unknown)'} is not reachable: this is a failover, not a switchover`], passed };
  if (p.settings?.readOnly) refusals.push(`the primary ${oldPrimary} is read_only already; fix that first (regent status)`);
  else passed.push(`primary ${oldPrimary} is reachable and writable`);

  const replicas = [...analysis.topology.sources.entries()].filter(([, src]) => src === oldPrimary).map(([id]) => id);
  let target = opts.target;
  if (target) {
    // By host:port or by name, as the API and the other commands accept it.
    const named = view.cluster.instances.find((i) => i.id === target || i.name === target);
    if (!named) return { oldPrimary, target, refusals: [`${target} is not an instance of cluster ${view.cluster.name}`], passed };
    target = named.id;
    if (target === oldPrimary) return { oldPrimary, target, refusals: [`${target} is already the primary`], passed };
  } else {
    const choice = chooseCandidate(replicaFactsFromView(view, replicas, false), { oldPrimaryOrigin: p.settings?.gtidOrigin });
    if (!choice.candidate) return { oldPrimary, refusals: [`no replica may become primary: ${choice.refusal}`], passed };
    target = choice.candidate;
    passed.push(`target ${target} chosen: ${choice.reasons.join('; ')}`);
  }

  const inst = view.cluster.instances.find((i) => i.id === target)!;
  const t = view.observations.get(target);
  const r = t?.replica;
  if (!t?.reachable) refusals.push(`target ${target} is unreachable`);
  else if (!r || `${r.sourceHost}:${r.sourcePort}` !== oldPrimary) refusals.push(`target ${target} does not replicate from the primary ${oldPrimary}`);
  else if (r.ioThread !== 'yes' || !r.sqlThread) refusals.push(`target ${target} is not replicating (IO ${r.ioThread}, SQL ${r.sqlThread ? 'yes' : 'no'}${r.lastSqlErrno ? `, error ${r.lastSqlErrno}` : ''})`);
  else passed.push(`target ${target} replicates from ${oldPrimary}`);
  if (r && (r.secondsBehind === null || r.secondsBehind > opts.settings.maxLagSeconds))
    refusals.push(`target ${target} lags ${r.secondsBehind === null ? 'an unknown time' : `${r.secondsBehind} s`} (limit ${opts.settings.maxLagSeconds} s)`);
  else if (r) passed.push(`target lag ${r.secondsBehind} s`);
  if (inst.promotion === 'never') refusals.push(`target ${target} has promotion rule never`);
  if (inMaintenance(view.decision, target, view.now)) refusals.push(`target ${target} is in maintenance`);
  if (r && r.sqlDelay > 0) refusals.push(`target ${target} is a delayed replica (${r.sqlDelay} s)`);
  if (t?.settings && (!t.settings.logBin || !t.settings.logReplicaUpdates)) refusals.push(`target ${target} has no usable binary log (log_bin and log_slave_updates must be ON)`);
  const errant = view.decision?.errant.get(target) ?? (t?.gtids && p.gtids && p.settings ? errantTransactions(t.gtids.executed, p.gtids.executed, p.settings.gtidOrigin) : undefined);
  if (errant && (typeof errant === 'string' ? errant.length > 0 : !errant.isEmpty())) refusals.push(`target ${target} has errant transactions ${errant.toString()}`);
  else passed.push('no errant transactions on the target');
  const long = opts.longTransactions.filter((x) => x.seconds > opts.settings.maxTransactionSeconds);
  if (long.length > 0)
    refusals.push(
      `write transaction(s) running longer than ${opts.settings.maxTransactionSeconds} s on ${oldPrimary}: ${long.map((x) => `trx ${x.id} (${x.seconds} s, ${x.rowsModified} rows)`).join(', ')}; let them finish or kill them`,
    );
  else passed.push(`no write transaction older than ${opts.settings.maxTransactionSeconds} s`);
  return { oldPrimary, target, refusals, passed };
}
