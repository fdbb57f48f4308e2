import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JournalEntry } from '../../src/coordination/coordinator.ts';
import { StepRunner, type RecoveryContext } from '../../src/recovery/steps.ts';
import { silentLogger } from '../../src/util/log.ts';
import { StepFailed } from '../../src/errors.ts';

/**
 * The journal of a plan is written in order, but a step waits only for the entries a successor
 * needs (the start of promote, an end with resume data, the plan's own entries): each entry is a
 * fenced etcd transaction. A write that fails (leadership lost) stops the plan at the next step.
 */
function rig(opts: { failAt?: number } = {}) {
  const written: string[] = [];
  /** Writes wait for release() (a slow etcd), in the order they were asked for. */
  const pending: (() => void)[] = [];
  let asked = 0;
  const batches: number[] = [];
  const coordinator = {
    appendJournal: (...es: JournalEntry[]) =>
      new Promise<void>((resolve, reject) => {
        const n = ++asked;
        pending.push(() => {
          if (n === opts.failAt) reject(new Error('etcd rejected the write: another manager leads cluster c now'));
          else {
            batches.push(es.length);
            for (const e of es) written.push(e.type === 'step' ? `${e.step}:${e.phase}` : e.type);
            resolve();
          }
        });
      }),
  };
  const ctx = { cluster: { name: 'c' }, coordinator } as unknown as RecoveryContext;
  const runner = new StepRunner(ctx, 'p1', 'failover', silentLogger);
  /** Completes every write asked for, including those queued behind them, until none is left. */
  const release = async () => {
    await new Promise((r) => setImmediate(r));
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { runner, written, batches, release, waiting: () => pending.length };
}

test('StepRunner: a step does not wait for its own journal entries; they are written in order', async () => {
  const r = rig();
  const ran: string[] = [];
  await r.runner.run('fence-old-primary', async () => (ran.push('fence'), { detail: 'd', value: 1 }));
  await r.runner.run('stop-io-threads', async () => (ran.push('stop'), { detail: 'd', value: 2 }));
  assert.deepEqual(ran, ['fence', 'stop'], 'both steps ran while no journal write had completed');
  assert.ok(r.waiting() >= 1);
  await r.release();
  assert.deepEqual(r.written, ['fence-old-primary:start', 'fence-old-primary:end', 'stop-io-threads:start', 'stop-io-threads:end']);
  // The first write took the first entry; the next one everything queued while it was out.
  assert.deepEqual(r.batches, [1, 3]);
});

test('StepRunner: promote runs only once its start (and everything before it) is on record', async () => {
  const r = rig();
  await r.runner.run('choose-candidate', async () => ({ detail: 'd', value: 1 }));
  let promoted = false;
  const p = r.runner.run('promote', async () => ((promoted = true), { detail: 'd', value: 1 }));
  await new Promise((res) => setImmediate(res));
  assert.equal(promoted, false, 'promote ran before its start was journaled');
  const releasing = (async () => {
    while (!promoted) {
      await r.release();
      await new Promise((res) => setTimeout(res, 1));
    }
  })();
  await Promise.all([p, releasing]);
  await r.release();
  assert.deepEqual(r.written.slice(0, 3), ['choose-candidate:start', 'choose-candidate:end', 'promote:start']);
});

test('StepRunner: an end with resume data and the plan\'s end are waited for', async () => {
  const r = rig();
  let done = false;
  const p = r.runner.run('promote-like', async () => ({ detail: 'd', value: 1, data: { candidate: 'x' } })).then(() => (done = true));
  await new Promise((res) => setTimeout(res, 5));
  assert.equal(done, false, 'returned before its resume data was on record');
  await r.release();
  await p;
  const end = r.runner.journal({ type: 'end', planId: 'p1', cluster: 'c', at: 1, outcome: 'success', detail: 'x', durationMs: 1 });
  await r.release();
  await end;
  assert.deepEqual(r.written, ['promote-like:start', 'promote-like:end', 'end']);
});

test('StepRunner: a queued write that fails (leadership lost) stops the plan at the next step, which does not run', async () => {
  const r = rig({ failAt: 1 });
  await r.runner.run('fence-old-primary', async () => ({ detail: 'd', value: 1 }));
  await r.release();
  let ran = false;
  await assert.rejects(
    r.runner.run('stop-io-threads', async () => ((ran = true), { detail: 'd', value: 1 })),
    (e: Error) => e instanceof StepFailed && /journal could not be written.*another manager leads/.test(e.message),
  );
  assert.equal(ran, false);
  await assert.rejects(r.runner.journal({ type: 'end', planId: 'p1', cluster: 'c', at: 1, outcome: 'failed', detail: 'x', durationMs: 1 }), /another manager leads/);
});

test('StepRunner: a failing step is journaled and waited for, and throws StepFailed', async () => {
  const r = rig();
  const p = r.runner.run('repoint-replicas', async () => {
    throw new Error('no replica could be re-pointed');
  });
  const releasing = r.release().then(() => new Promise((res) => setTimeout(res, 5))).then(() => r.release());
  await assert.rejects(p, (e: Error) => e instanceof StepFailed && /repoint-replicas: no replica/.test(e.message));
  await releasing;
  assert.deepEqual(r.written, ['repoint-replicas:start', 'repoint-replicas:end']);
  assert.deepEqual(r.runner.steps.map((s) => [s.name, s.ok]), [['repoint-replicas', false]]);
});
