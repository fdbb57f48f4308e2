import { randomUUID } from 'node:crypto';
import { countLiveWriteTransactions, killPendingReadOnlyChanges, listWriteTransactions } from '../sql/queries.ts';
import { foldVariables } from '../sql/row-values.ts';
import { killClientSessions } from './fence.ts';
import { flavorOf, promote, replicateFrom, StepRunner, waitForGtid, waitUntilReplicating, type RecoveryContext, type StepRecord } from './steps.ts';

/** Just over InnoDB's 100 ms: INNODB_TRX read again sooner shows the same rows. */
const INNODB_TRX_REFRESH_MS = 110;
/** How often the live transaction list is read while the grace runs. */
const LIVE_POLL_MS = 10;

export interface SwitchoverResult {
  ok: boolean;
  planId: string;
  oldPrimary: string;
  newPrimary?: string;
  /** Writes were held (router) / refused (read_only) for this long. */
  writePauseMs?: number;
  rolledBack: boolean;
  steps: StepRecord[];
  error?: string;
  durationMs: number;
}

/**
 * A planned change of primary, checks passed: hold new writes at the router, make the old primary
 * read_only, give sessions a short grace then kill them, wait until the target has exactly what the
 * old primary wrote, promote it, re-point everyone (the old primary from all it executed), release writes.
 * Any failure before the promotion completes rolls back: a half-promoted target read_only and
 * replicating from the old primary again, then the old primary writable, writes released to it, the
 * reason reported.
 */
export async function executeSwitchover(ctx: RecoveryContext, oldPrimary: string, target: string, trigger: string): Promise<SwitchoverResult> {
  const { cluster, log, monitor } = ctx;
  const planId = randomUUID();
  const started = Date.now();
  const slog = log.child({ cluster: cluster.name, planId });
  const runner = new StepRunner(ctx, planId, 'switchover', slog);
  const inMaintenance = (id: string) => (ctx.decision.snapshot.maintenance.get(id) ?? 0) > started;
  const replicas = cluster.instances.map((i) => i.id).filter((id) => id !== oldPrimary && id !== target && monitor.probers.get(id)?.latest.reachable && !inMaintenance(id));
  await runner.journal({ type: 'plan', planId, cluster: cluster.name, at: started, kind: 'switchover', plan: { oldPrimary, target, replicas, trigger } });
  slog.warn({ event: 'switchover_started', oldPrimary, target, trigger }, `switchover of ${cluster.name}: ${oldPrimary} -> ${target}`);

  let pauseStarted: number | undefined;
  let promoted = false;
  let promoting = false;
  let readOnlySet = false;
  /** Other managers' data planes hold writes for this switchover until it ends (endPeerDrain). */
  let peersAsked = false;
  const releasePeers = async () => {
    if (!peersAsked) return;
    peersAsked = false;
    await ctx.coordinator.endPeerDrain(cluster.name).catch((e: Error) => slog.warn({ event: 'peer_drain_not_ended', err: e.message }, `could not tell the other managers that the switchover of ${cluster.name} ended: their holds end by themselves`));
  };
  const targetInst = cluster.instances.find((i) => i.id === target)!;
  try {
    const oldConn = await ctx.admin.get(oldPrimary);
    const targetConn = await ctx.admin.get(target);
    const oldFlavor = flavorOf(monitor, oldPrimary);
    const targetFlavor = flavorOf(monitor, target);

    await runner.run('hold-writes', async () => {
      pauseStarted = Date.now();
      await ctx.decision.hold('switchover', planId);
      return { detail: 'writer endpoint holds new connections', value: undefined };
    });

    await runner.run('drain-transactions', async () => {
      // The SQL endpoints start nothing new on the old primary since hold-writes (this manager's
      // data plane, and with etcd every other manager's, asked here); transactions open there get
      // the grace period to end before read_only would fail their writes.
      const t0 = Date.now();
      const until = t0 + cluster.switchover.graceMs;
      const [open, peers] = await Promise.all([
        ctx.drainSessions ? ctx.drainSessions(oldPrimary, cluster.switchover.graceMs) : Promise.resolve(0),
        ctx.coordinator.drainPeers({ cluster: cluster.name, planId, oldPrimary, until }).catch((e: Error) => e),
      ]);
      // Released unless nobody was asked: a request may be stored even when asking failed later on.
      peersAsked = peers instanceof Error || peers.asked > 0;
      const waited = Date.now() - t0;
      const own =
        open === undefined
          ? `the data plane did not answer within ${cluster.switchover.graceMs} ms`
          : open === 0
            ? `no SQL session has a transaction open on ${oldPrimary} (waited ${waited} ms)`
            : `${open} SQL session(s) still in a transaction after ${waited} ms: their transactions are replayed on ${target}`;
      const others =
        peers instanceof Error
          ? `; the other managers were not asked (${peers.message})`
          : peers.asked === 0
            ? ''
            : `; other managers: ${peers.answered} of ${peers.asked} answered, ${peers.open} session(s) still in a transaction`;
      return { detail: own + others, value: undefined };
    });

    await runner.run('set-read-only', async () => {
      // Before the statement: one that times out here may still take effect on the server, and the
      // rollback must then make the old primary writable again.
      readOnlySet = true;
      for (const sql of oldFlavor.setReadOnly(true)) await oldConn.query(sql, [], cluster.switchover.catchUpTimeoutSeconds * 1000);
      return { detail: `${oldPrimary}: read_only=ON`, value: undefined };
    });

    await runner.run('kill-sessions', async () => {
      // Transactions already committing finish; the wait ends as soon as no write transaction is open.
      // The live list of SHOW ENGINE INNODB STATUS, not INNODB_TRX: that is a copy InnoDB refreshes
      // only when nobody read it for 100 ms, and the pre-check read it just before this switchover
      // began, so its first look here showed transactions that had committed since (each one cost
      // a 110 ms re-read, about half the write pause). INNODB_TRX only when the list is cut short.
      const graceEnd = Date.now() + cluster.switchover.graceMs;
      let open: number;
      for (;;) {
        const live = await countLiveWriteTransactions(oldConn);
        open = live ?? (await listWriteTransactions(oldConn)).length;
        const left = graceEnd - Date.now();
        if (open === 0 || left <= 0) break;
        await new Promise((r) => setTimeout(r, Math.min(left, live === undefined ? INNODB_TRX_REFRESH_MS : LIVE_POLL_MS)));
      }
      // Routers hold new writers since hold-writes and close what is left open to the old primary
      // when the promotion is published.
      const killed = await killClientSessions(oldConn, cluster);
      const unfinished = open > 0 ? `, ${open} write transaction(s) still open after the grace of ${cluster.switchover.graceMs} ms` : '';
      return { detail: `${killed} client session(s) killed${unfinished}`, value: undefined };
    });

    const position = await runner.run('wait-for-target', async () => {
      const pos = oldFlavor.parseGtids(foldVariables(await oldConn.query(oldFlavor.variablesQuery))).executed;
      if (!(await waitForGtid(targetConn, targetFlavor, pos, cluster.switchover.catchUpTimeoutSeconds)))
        throw new Error(`${target} did not reach ${pos.toString()} within ${cluster.switchover.catchUpTimeoutSeconds} s`);
      return { detail: `${target} reached ${pos.toString() || '(empty)'}`, value: pos };
    });

    await runner.run('promote', async () => {
      promoting = true;
      await promote(targetConn, targetFlavor, cluster);
      promoted = true;
      return { detail: `${target} is primary at ${position.toString() || '(empty)'}`, value: undefined };
    });

    await runner.run('repoint-replicas', async () => {
      const failures: string[] = [];
      await Promise.all(
        [...replicas.map((id) => [id, 'replica-position'] as const), [oldPrimary, 'all-executed'] as const].map(async ([id, mode]) => {
          try {
            await replicateFrom(await ctx.admin.get(id), flavorOf(monitor, id), cluster, targetInst, mode);
          } catch (e) {
            failures.push(`${id}: ${(e as Error).message}`);
          }
        }),
      );
      return { detail: `replicating from ${target}: ${[...replicas, oldPrimary].join(', ')}${failures.length ? `; FAILED: ${failures.join('; ')}` : ''}`, value: undefined };
    });

    const writePauseMs = await runner.run('publish', async () => {
      const pause = Date.now() - (pauseStarted ?? Date.now());
      await ctx.decision.promote(target, { kind: 'switchover', planId, oldPrimary, writePauseMs: pause });
      // Stored first: the other managers follow the stored decision when their hold ends.
      await releasePeers();
      void monitor.probers.get(target)?.probeAfterChange();
      return { detail: `primary of ${cluster.name} is ${target}; writes were paused ${pause} ms`, value: pause };
    });

    await runner.run('verify', async () => {
      const pending = await waitUntilReplicating(monitor, [...replicas, oldPrimary], target, 5000);
      return { detail: pending.length === 0 ? `all replicate from ${target}` : `not replicating yet: ${pending.join(', ')}`, value: undefined };
    });

    const durationMs = Date.now() - started;
    await runner.journal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: 'success', detail: `switched to ${target}, write pause ${writePauseMs} ms`, newPrimary: target, durationMs });
    slog.warn({ event: 'switchover_succeeded', oldPrimary, newPrimary: target, writePauseMs, durationMs }, `switchover of ${cluster.name}: ${oldPrimary} -> ${target}, writes paused ${writePauseMs} ms`);
    return { ok: true, planId, oldPrimary, newPrimary: target, writePauseMs, rolledBack: false, steps: runner.steps, durationMs };
  } catch (e) {
    const reason = (e as Error).message;
    let state: string;
    let rolledBack = false;
    if (!promoted) {
      // Roll back: the old primary takes writes again. A promotion that stopped half-way (the
      // target's replication reset, maybe writable) is undone first, so that at no moment two
      // servers take writes and the target does not stay a replica of nobody.
      let undone = '';
      if (promoting) {
        try {
          const conn = await ctx.admin.get(target);
          const flavor = flavorOf(monitor, target);
          for (const sql of flavor.setReadOnly(true)) await conn.query(sql);
          // From all it executed: the target holds exactly the old primary's history (it waited for
          // it, and the router held every write meanwhile), and its own binlog may be ahead of its
          // replica position if it was a primary before.
          await replicateFrom(conn, flavor, cluster, cluster.instances.find((i) => i.id === oldPrimary)!, 'all-executed');
          undone = `; ${target} read_only and replicating from ${oldPrimary} again`;
        } catch (ue) {
          // Unreachable now: when it answers again, a writable non-primary is fenced and a replica
          // of nobody is re-pointed by the supervisor's repair.
          undone = `; could not undo the half-done promotion of ${target} (${(ue as Error).message}): it is fenced when it answers again`;
        }
        void monitor.probers.get(target)?.probeAfterChange();
      }
      try {
        const conn = await ctx.admin.get(oldPrimary);
        if (readOnlySet) {
          // A SET read_only that timed out is still waiting on the server (for a lock a session
          // holds) and would take effect after this rollback: end it first.
          await killPendingReadOnlyChanges(conn, cluster.accounts.manager.user);
          for (const sql of flavorOf(monitor, oldPrimary).setReadOnly(false)) await conn.query(sql);
        }
        await ctx.decision.rollBack(`switchover ${planId} rolled back: ${reason}`, { primary: oldPrimary });
        await releasePeers();
        rolledBack = true;
        state = `rolled back: ${oldPrimary} is writable again and still the primary; nothing was lost${undone}`;
      } catch (re) {
        state = `ROLLBACK FAILED (${(re as Error).message}): ${oldPrimary} may be read_only; check \`regent status\` and set it writable or fail over`;
      }
    } else {
      await ctx.decision
        .promote(target, { kind: 'switchover', planId, oldPrimary, writePauseMs: Date.now() - (pauseStarted ?? Date.now()) })
        .catch((pe: Error) => log.error({ event: 'decision_not_saved', err: pe.message }, `could not record the switchover to ${target}: ${pe.message}`));
      await releasePeers();
      state = `${target} WAS promoted and takes writes; a later step failed: re-point the remaining replicas (regent status shows which)`;
    }
    // Whatever happened, no other manager keeps holding for this plan.
    await releasePeers();
    const durationMs = Date.now() - started;
    await runner.journal({ type: 'end', planId, cluster: cluster.name, at: Date.now(), outcome: rolledBack ? 'aborted' : 'failed', detail: `${reason}. ${state}`, newPrimary: promoted ? target : undefined, durationMs });
    slog.error({ event: 'switchover_failed', oldPrimary, target, reason, state, durationMs }, `switchover of ${cluster.name} failed: ${reason}; ${state}`);
    return { ok: false, planId, oldPrimary, newPrimary: promoted ? target : undefined, rolledBack, steps: runner.steps, error: `${reason}. ${state}`, durationMs };
  }
}
