import type { Problem } from '../analysis/problems.ts';
import { fenceServer } from '../recovery/fence.ts';
import { flavorOf } from '../recovery/steps.ts';
import type { ActionOutcome, ClusterContext } from './cluster-context.ts';
import type { ActionSpec } from './dispatch.ts';

const primaryLeaseOn = (ctx: ClusterContext): boolean => ctx.options.coordination?.backend === 'etcd' && ctx.options.coordination.primaryLease;

/**
 * TwoWritablePrimaries: a writable instance that is not the primary Regent decided on (a frozen old
 * primary that woke up, a restarted server someone made writable) is set read_only at once: rule
 * 2, one writer.
 */
export const fenceStrayPrimaries: ActionSpec = {
  lock: 'cluster',
  policy: (ctx) => ({
    enabled: ctx.decision.snapshot.decidedPrimary ? true : { why: 'no primary is decided yet, so none of them is a stray', loud: true },
    needsLeader: true,
    afterMs: 0,
    retryMs: 0,
  }),
  reprobe: (_ctx, p) => (p.code === 'TwoWritablePrimaries' ? p.data.writable : []),
  async run(ctx, p): Promise<ActionOutcome> {
    if (p.code !== 'TwoWritablePrimaries') return { outcome: 'refused', detail: `not a ${p.code} action` };
    const keep = ctx.decision.snapshot.decidedPrimary!;
    const done: string[] = [];
    const failed: string[] = [];
    const now = Date.now();
    for (const id of p.data.writable) {
      if (id === keep || (ctx.decision.snapshot.maintenance.get(id) ?? 0) > now) continue;
      const prober = ctx.monitor.probers.get(id);
      if (!prober) continue;
      try {
        const killed = await fenceServer(await ctx.admin.get(id), flavorOf(ctx.monitor, id), ctx.cluster);
        ctx.log.warn({ event: 'fenced_stray_primary', cluster: ctx.cluster.name, instance: id, primary: keep, killed }, `${id} was writable but ${keep} is the primary: set read_only, ${killed} session(s) killed`);
        await ctx.decision.fence(id, `writable while ${keep} is the primary`);
        // Until a probe taken after read_only was set lands, the last observation still says
        // writable: the next analysis must not fence again (that would kill newer sessions).
        await prober.probeAfterChange();
        done.push(`${id} (${killed} session(s) killed)`);
      } catch (e) {
        failed.push(`${id}: ${(e as Error).message}`);
        ctx.log.error({ event: 'fence_failed', cluster: ctx.cluster.name, instance: id, err: (e as Error).message }, `could not fence ${id}`);
      }
    }
    if (failed.length > 0) return { outcome: 'failed', detail: `fenced ${done.join(', ') || 'none'}; could not fence ${failed.join('; ')}` };
    return done.length > 0 ? { outcome: 'done', detail: `fenced ${done.join(', ')}` } : { outcome: 'refused', detail: 'nothing to fence' };
  },
};

/**
 * PrimaryLeaseExpired (coordination.primaryLease): this manager lost etcd for longer than the TTL,
 * so another manager may be leading, or the primary may be cut off with us: stop writes on it
 * unless it is the only live node (then availability wins: nothing could replace it anyway). It
 * runs without leadership and under this process's lock only: that is the point of it.
 */
export const fenceForLostLease: ActionSpec = {
  lock: 'local',
  policy: (ctx) => ({
    enabled: primaryLeaseOn(ctx) ? true : { why: 'coordination.primaryLease is off', loud: false },
    needsLeader: false,
    afterMs: 0,
    retryMs: 0,
  }),
  reprobe: (_ctx, p) => (p.instance ? [p.instance] : []),
  async run(ctx, p): Promise<ActionOutcome> {
    if (p.code !== 'PrimaryLeaseExpired' || !p.instance) return { outcome: 'refused', detail: `not a ${p.code} action` };
    if (p.data.otherLiveNodes.length === 0) return { outcome: 'refused', detail: `primary lease of ${ctx.cluster.name} expired but ${p.instance} is the only live node: it keeps serving` };
    const killed = await fenceServer(await ctx.admin.get(p.instance), flavorOf(ctx.monitor, p.instance), ctx.cluster);
    ctx.log.error({ event: 'primary_lease_expired', cluster: ctx.cluster.name, instance: p.instance, killed }, `no contact with etcd for longer than the lease TTL: ${p.instance} set read_only (${killed} session(s) killed)`);
    ctx.events.emit('repair', { instance: p.instance, action: 'fenced: primary lease expired' });
    await ctx.monitor.probers.get(p.instance)?.probeAfterChange();
    return { outcome: 'done', detail: `${p.instance} set read_only (${killed} session(s) killed)` };
  },
};

/**
 * NoWritablePrimary with the primary lease on: Regent owns the primary's read_only flag, so the
 * leader makes the primary it decided on writable again once etcd answers (a person who wants it
 * read_only puts it in maintenance). Without the primary lease this is only reported.
 */
export const restoreWritable: ActionSpec = {
  lock: 'cluster',
  policy: (ctx, p) => ({
    enabled: !primaryLeaseOn(ctx)
      ? { why: 'made writable again only under coordination.primaryLease', loud: false }
      : p.instance !== ctx.decision.snapshot.decidedPrimary
        ? { why: `${p.instance} is not the primary Regent decided on`, loud: false }
        : true,
    needsLeader: true,
    afterMs: 0,
    retryMs: 0,
  }),
  reprobe: (_ctx, p) => (p.instance ? [p.instance] : []),
  async run(ctx, p: Problem): Promise<ActionOutcome> {
    const id = p.instance!;
    const conn = await ctx.admin.get(id);
    for (const sql of flavorOf(ctx.monitor, id).setReadOnly(false)) await conn.query(sql);
    ctx.log.warn({ event: 'primary_lease_restored', cluster: ctx.cluster.name, instance: id }, `leader in contact with etcd: ${id} writable again`);
    await ctx.monitor.probers.get(id)?.probeAfterChange();
    return { outcome: 'done', detail: `${id} writable again` };
  },
};
