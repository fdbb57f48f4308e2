import { decideRejoin } from '../recovery/rejoin-plan.ts';
import { flavorOf, replicateFrom } from '../recovery/steps.ts';
import { cloneInstance } from '../setup/clone.ts';
import type { ActionOutcome, ClusterContext } from './cluster-context.ts';
import type { ActionSpec } from './dispatch.ts';

/** A repair that did not work is tried again after this long, not on every probe. */
export const REPAIR_RETRY_MS = 30000;

/** ReplicationStopped without an error, for longer than repair.afterSeconds: start it again. */
export const restartReplication: ActionSpec = {
  lock: 'cluster',
  policy: (ctx) => ({
    enabled: ctx.cluster.repair.restartStoppedReplication ? true : { why: 'repair.restartStoppedReplication is off', loud: false },
    needsLeader: true,
    afterMs: ctx.cluster.repair.afterSeconds * 1000,
    retryMs: REPAIR_RETRY_MS,
  }),
  reprobe: (_ctx, p) => (p.instance ? [p.instance] : []),
  // The fresh analysis still says "stopped without an error": a thread stopped on an error is
  // ReplicationBroken, and that is for a person (regent repair), never restarted blindly.
  async run(ctx, p): Promise<ActionOutcome> {
    const id = p.instance!;
    await (await ctx.admin.get(id)).query(flavorOf(ctx.monitor, id).startReplica());
    ctx.log.warn({ event: 'replication_restarted', cluster: ctx.cluster.name, instance: id }, `${id}: replication was stopped without an error; restarted`);
    ctx.events.emit('repair', { instance: id, action: 'restart replication' });
    return { outcome: 'done', detail: `replication restarted on ${id}` };
  },
};

/** ReplicaPointsElsewhere: re-point to the decided primary, if it has nothing the primary lacks. */
export const repointReplica: ActionSpec = {
  lock: 'cluster',
  policy: (ctx) => ({
    enabled: !ctx.cluster.repair.repointStrayReplicas
      ? { why: 'repair.repointStrayReplicas is off', loud: false }
      : !ctx.decision.snapshot.decidedPrimary
        ? { why: 'no primary is decided to re-point to', loud: false }
        : true,
    needsLeader: true,
    afterMs: ctx.cluster.repair.afterSeconds * 1000,
    retryMs: REPAIR_RETRY_MS,
  }),
  reprobe: (ctx, p) => [p.instance!, ctx.decision.snapshot.decidedPrimary!],
  async run(ctx, p): Promise<ActionOutcome> {
    if (p.code !== 'ReplicaPointsElsewhere') return { outcome: 'refused', detail: `not a ${p.code} action` };
    const id = p.instance!;
    const decision = ctx.decision.snapshot;
    const primary = decision.decidedPrimary!;
    const node = ctx.monitor.probers.get(id)?.latest;
    const pObs = ctx.monitor.probers.get(primary)?.latest;
    const src = p.data.source;
    if (!node?.reachable || !pObs?.reachable) return { outcome: 'refused', detail: `${id} or the primary ${primary} is not reachable` };
    // Only re-point away from a source that is gone or fenced: a live chain is a DBA's choice.
    if (ctx.monitor.probers.get(src)?.latest.reachable && !decision.fenced.has(src)) return { outcome: 'refused', detail: `${id} replicates from ${src}, which is alive and not fenced: a chain a DBA may have set up` };
    const flavor = flavorOf(ctx.monitor, id);
    const common = decision.commonPoints.get(src);
    const verdict = decideRejoin({ node, primary: pObs, commonPoint: common !== undefined ? flavor.parseGtid(common) : undefined, policy: 'manual', rewind: 'never while re-pointing a replica' });
    if (verdict.action !== 'join') return { outcome: 'refused', detail: `${id} replicates from ${src} and cannot be re-pointed safely: ${verdict.reason}` };
    await replicateFrom(await ctx.admin.get(id), flavor, ctx.cluster, ctx.cluster.instances.find((i) => i.id === primary)!, 'replica-position');
    ctx.log.warn({ event: 'replica_repointed', cluster: ctx.cluster.name, instance: id, from: src, to: primary }, `${id} replicated from ${src} (gone); now from ${primary}`);
    ctx.events.emit('repair', { instance: id, action: `re-pointed from ${src} to ${primary}` });
    return { outcome: 'done', detail: `${id} re-pointed from ${src} to ${primary}` };
  },
};

export interface RepairResult {
  ok: boolean;
  instance: string;
  action: string;
  detail: string;
}

/**
 * `regent repair NODE`: what a person chose for a replica Regent will not fix by itself (a SQL
 * thread stopped on an error is never skipped silently). retry: start replication again (the
 * error was transient); reclone: rebuild its data from a healthy replica (or the primary). The
 * caller holds the cluster lock.
 */
export async function repairReplica(ctx: ClusterContext, instance: string, action: 'retry' | 'reclone'): Promise<RepairResult | { refusal: string }> {
  const primary = ctx.decision.snapshot.decidedPrimary;
  if (!primary) return { refusal: 'no primary is known for the cluster' };
  if (instance === primary) return { refusal: `${instance} is the primary` };
  const conn = await ctx.admin.get(instance);
  const flavor = flavorOf(ctx.monitor, instance);
  if (action === 'retry') {
    await conn.query(flavor.startReplica());
    await new Promise((r) => setTimeout(r, 1000));
    const r = (await ctx.monitor.probers.get(instance)?.probeNow())?.replica;
    const ok = Boolean(r && r.ioThread === 'yes' && r.sqlThread);
    const detail = ok ? 'replication running again' : `still failing: ${r?.lastSqlErrno ? `SQL error ${r.lastSqlErrno}: ${r.lastSqlError}` : r?.lastIoErrno ? `IO error ${r.lastIoErrno}: ${r.lastIoError}` : 'not running'}; consider reclone`;
    ctx.events.emit('repair', { instance, action: `retry: ${detail}` });
    return { ok, instance, action, detail };
  }
  const healthy = [...ctx.monitor.observations().values()].find((o) => o.id !== instance && o.id !== primary && o.reachable && o.replica?.ioThread === 'yes' && o.replica.sqlThread);
  const sourceId = healthy?.id ?? primary;
  const byId = (id: string) => ctx.cluster.instances.find((i) => i.id === id)!;
  ctx.admin.drop(instance);
  const result = await cloneInstance(ctx.cluster, { source: byId(sourceId), target: byId(instance), primary: byId(primary), discardTargetData: true });
  const detail = `data rebuilt from ${sourceId} (${result.databases.join(', ') || 'no application databases'}, ${result.bytes} bytes, GTID ${result.gtid || '(empty)'}) in ${result.durationMs} ms`;
  ctx.log.warn({ event: 'replica_recloned', cluster: ctx.cluster.name, instance, source: sourceId }, `${instance}: ${detail}`);
  ctx.events.emit('repair', { instance, action: `reclone: ${detail}` });
  return { ok: true, instance, action, detail };
}
