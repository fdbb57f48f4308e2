import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { decideRejoin } from './rejoin-plan.ts';
import { flavorOf, replicateFrom, StepRunner, type RecoveryContext, type StepRecord } from './steps.ts';

export interface RejoinResult {
  ok: boolean;
  planId: string;
  instance: string;
  primary?: string;
  action: 'join' | 'rewind' | 'refuse';
  /** Errant transactions found (rewound or left for a person). */
  errant?: string;
  /** Where the errant events were saved before the rewind (SQL a DBA can replay). */
  savedTo?: string;
  steps: StepRecord[];
  error?: string;
}

/**
 * Makes an instance (a former primary, typically) a replica of the current primary. It is fenced
 * first (read_only). Clean: replicate from all it executed. Errant transactions with `flashback`: save
 * them to a file under the state directory, reverse them with mariadb-binlog --flashback (applied
 * with sql_log_bin=0), reset the GTID state to the common point, then replicate. With `manual`:
 * leave it read_only and report exactly which GTIDs are errant.
 */
export async function executeRejoin(ctx: RecoveryContext, instance: string, stateDir: string, trigger: string): Promise<RejoinResult> {
  const { cluster, monitor, log } = ctx;
  const planId = randomUUID();
  const started = Date.now();
  const rlog = log.child({ cluster: cluster.name, planId });
  const runner = new StepRunner(ctx, planId, 'rejoin', rlog);
  const decided = ctx.decision.snapshot;
  const primary = decided.decidedPrimary;
  const base = { planId, instance, primary, steps: runner.steps };
  const node = await monitor.probers.get(instance)?.probeNow();
  const pObs = primary ? await monitor.probers.get(primary)?.probeNow() : undefined;
  if (!primary || !pObs || !node) return { ...base, ok: false, action: 'refuse', error: 'no primary is known for the cluster' };
  if (instance === primary) return { ...base, ok: false, action: 'refuse', error: `${instance} is the primary` };
  const flavor = flavorOf(monitor, instance);
  const commonText = decided.commonPoints.get(instance);
  const decision = decideRejoin({
    node,
    primary: pObs,
    commonPoint: commonText !== undefined ? flavor.parseGtid(commonText) : undefined,
    policy: cluster.rejoin.errant,
    rewind: !flavor.family.rewind ? `${flavor.family.displayName} has no rewind tool` : node.settings ? flavor.family.rewind.check(node.settings) : 'its settings are unknown',
  });
  await runner.journal({ type: 'plan', planId, cluster: cluster.name, at: Date.now(), kind: 'rejoin', plan: { instance, primary, trigger, decision: { action: decision.action, reason: decision.reason } } });

  const conn = await ctx.admin.get(instance);
  try {
    await runner.run('fence', async () => {
      for (const sql of flavor.setReadOnly(true)) await conn.query(sql);
      return { detail: `${instance}: read_only=ON`, value: undefined };
    });
    if (decision.action === 'refuse') {
      if (decision.errant) await ctx.decision.noteErrant(instance, decision.errant);
      await runner.journal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'aborted', detail: decision.reason, durationMs: Date.now() - started });
      rlog.error({ event: 'rejoin_refused', instance, errant: decision.errant, reason: decision.reason }, `rejoin of ${instance} refused: ${decision.reason}`);
      return { ...base, ok: false, action: 'refuse', errant: decision.errant, error: decision.reason };
    }
    const primaryInst = cluster.instances.find((i) => i.id === primary)!;
    const nodeInst = cluster.instances.find((i) => i.id === instance)!;
    let savedTo: string | undefined;
    if (decision.action === 'rewind') {
      const dir = join(stateDir, 'errant');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      savedTo = join(dir, `${cluster.name}-${nodeInst.name}-${stamp}.sql`);
      const flashFile = join(dir, `${cluster.name}-${nodeInst.name}-${stamp}.flashback.sql`);
      const from = decision.commonPoint.toString();
      const rewind = flavor.family.rewind!;
      await runner.run('save-errant', async () => {
        const bytes = await rewind.saveEvents(nodeInst, conn, cluster.accounts.manager, from, savedTo!);
        return { detail: `errant events ${decision.errant.toString()} saved to ${savedTo} (${bytes} bytes)`, value: undefined };
      });
      await runner.run('flashback', async () => {
        await conn.query(flavor.stopReplica());
        await rewind.reverse(nodeInst, conn, cluster.accounts.manager, from, flashFile);
        return { detail: `events after ${from} reversed on ${instance}`, value: undefined };
      });
      await runner.run('reset-gtid', async () => {
        // The node's binlog still holds the errant GTIDs; its history restarts at the common point.
        for (const s of flavor.resetHistoryTo(decision.commonPoint)) await conn.query(s.sql, s.params);
        return { detail: `GTID state of ${instance} reset to ${from}`, value: undefined };
      });
    }
    await runner.run('replicate', async () => {
      await replicateFrom(conn, flavor, cluster, primaryInst, decision.action === 'rewind' ? 'replica-position' : 'all-executed');
      return { detail: `${instance} replicates from ${primary}`, value: undefined };
    });
    await runner.run('verify', async () => {
      const deadline = Date.now() + 10000;
      for (;;) {
        const r = (await monitor.probers.get(instance)?.probeNow())?.replica;
        if (r && r.ioThread === 'yes' && r.sqlThread) break;
        if (r && (r.lastIoErrno || r.lastSqlErrno)) throw new Error(`replication failed: ${r.lastIoErrno ? `IO ${r.lastIoErrno} ${r.lastIoError}` : `SQL ${r.lastSqlErrno} ${r.lastSqlError}`}`);
        if (Date.now() > deadline) throw new Error('replication did not start within 10 s');
        await new Promise((res) => setTimeout(res, 50));
      }
      return { detail: `${instance} replicating`, value: undefined };
    });
    await ctx.decision.rejoined(instance);
    await runner.journal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'success', detail: decision.reason, durationMs: Date.now() - started });
    rlog.warn({ event: 'rejoin_succeeded', instance, primary, action: decision.action, savedTo }, `${instance} rejoined as a replica of ${primary} (${decision.action})`);
    return { ...base, ok: true, action: decision.action, errant: decision.action === 'rewind' ? decision.errant.toString() : undefined, savedTo };
  } catch (e) {
    const reason = (e as Error).message;
    await runner.journal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'failed', detail: `${reason}; ${instance} stays read_only`, durationMs: Date.now() - started });
    rlog.error({ event: 'rejoin_failed', instance, reason }, `rejoin of ${instance} failed: ${reason}`);
    return { ...base, ok: false, action: decision.action, error: `${reason}; ${instance} stays read_only` };
  }
}
