import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupRecoveries, type RecoveryRecord } from '../../src/api/routes.ts';
import type { JournalEntry } from '../../src/coordination/coordinator.ts';

// The journal as the API and the dashboard show it: one record per plan, each step with its
// start matched to its end, the outcome, newest first.

const C = 'c';
const plan = (planId: string, at: number, kind = 'failover'): JournalEntry => ({ type: 'plan', planId, cluster: C, at, kind, plan: { oldPrimary: 'n1' } });
const start = (planId: string, step: string, at: number): JournalEntry => ({ type: 'step', planId, cluster: C, at, step, phase: 'start' });
const end = (planId: string, step: string, at: number, ok: boolean, detail = `${step} ${ok ? 'done' : 'failed'}`): JournalEntry => ({
  type: 'step',
  planId,
  cluster: C,
  at,
  step,
  phase: 'end',
  ok,
  detail,
  // The end time as duration: distinct values make a wrong match visible.
  durationMs: at,
});
const finish = (planId: string, at: number, outcome: 'success' | 'failed' | 'aborted', newPrimary?: string): JournalEntry => ({
  type: 'end',
  planId,
  cluster: C,
  at,
  outcome,
  detail: `${outcome} detail`,
  newPrimary,
  durationMs: 99,
});

const cases: { name: string; entries: JournalEntry[]; expect: Partial<RecoveryRecord>[] }[] = [
  { name: 'an empty journal has no recoveries', entries: [], expect: [] },
  {
    name: 'a plan, its steps (start matched to end) and its end make one record',
    entries: [plan('A', 100), start('A', 'fence', 101), end('A', 'fence', 103, true), start('A', 'promote', 104), end('A', 'promote', 110, true), finish('A', 111, 'success', 'n2')],
    expect: [
      {
        planId: 'A',
        cluster: C,
        kind: 'failover',
        startedAt: 100,
        plan: { oldPrimary: 'n1' },
        steps: [
          { step: 'fence', startedAt: 101, durationMs: 103, ok: true, detail: 'fence done' },
          { step: 'promote', startedAt: 104, durationMs: 110, ok: true, detail: 'promote done' },
        ],
        outcome: 'success',
        detail: 'success detail',
        newPrimary: 'n2',
        durationMs: 99,
      },
    ],
  },
  {
    name: 'a plan without an end has no outcome yet (a recovery under way, or an unfinished one)',
    entries: [plan('A', 100), start('A', 'fence', 101)],
    expect: [{ planId: 'A', steps: [{ step: 'fence', startedAt: 101 }], outcome: undefined, durationMs: undefined }],
  },
  {
    name: 'the end outcome is kept as written (failed, with no new primary)',
    entries: [plan('A', 100), start('A', 'promote', 101), end('A', 'promote', 102, false), finish('A', 103, 'failed')],
    expect: [{ planId: 'A', steps: [{ step: 'promote', startedAt: 101, durationMs: 102, ok: false, detail: 'promote failed' }], outcome: 'failed', newPrimary: undefined }],
  },
  {
    name: 'a step end without a start is listed on its own, started at its end',
    entries: [plan('A', 100), end('A', 'catch-up', 105, true, 'skipped')],
    expect: [{ planId: 'A', steps: [{ step: 'catch-up', startedAt: 105, durationMs: 105, ok: true, detail: 'skipped' }] }],
  },
  {
    name: 'a step that ran twice: each end matches the latest open start of that step',
    entries: [plan('A', 100), start('A', 'verify', 101), end('A', 'verify', 102, false), start('A', 'verify', 103), end('A', 'verify', 104, true)],
    expect: [
      {
        planId: 'A',
        steps: [
          { step: 'verify', startedAt: 101, durationMs: 102, ok: false, detail: 'verify failed' },
          { step: 'verify', startedAt: 103, durationMs: 104, ok: true, detail: 'verify done' },
        ],
      },
    ],
  },
  {
    name: 'a step started again before its first attempt ended (a resumed plan): the end belongs to the latest start',
    entries: [plan('A', 100), start('A', 'repoint-replicas', 101), start('A', 'repoint-replicas', 150), end('A', 'repoint-replicas', 160, true)],
    expect: [
      {
        planId: 'A',
        steps: [
          { step: 'repoint-replicas', startedAt: 101 },
          { step: 'repoint-replicas', startedAt: 150, durationMs: 160, ok: true, detail: 'repoint-replicas done' },
        ],
      },
    ],
  },
  {
    name: 'steps of different plans interleaved go to their own plan',
    entries: [plan('A', 100), plan('B', 200, 'switchover'), start('A', 'fence', 201), start('B', 'fence', 202), end('B', 'fence', 203, true), end('A', 'fence', 204, false)],
    expect: [
      { planId: 'B', kind: 'switchover', steps: [{ step: 'fence', startedAt: 202, durationMs: 203, ok: true, detail: 'fence done' }] },
      { planId: 'A', kind: 'failover', steps: [{ step: 'fence', startedAt: 201, durationMs: 204, ok: false, detail: 'fence failed' }] },
    ],
  },
  {
    name: 'records are ordered newest first, whatever the journal order',
    entries: [plan('old', 100), plan('newest', 300), plan('middle', 200)],
    expect: [{ planId: 'newest' }, { planId: 'middle' }, { planId: 'old' }],
  },
  {
    name: 'entries of a plan the journal does not hold are ignored (steps and ends alike)',
    entries: [start('X', 'fence', 50), end('X', 'fence', 51, true), finish('X', 52, 'success', 'n3'), plan('A', 100), finish('A', 101, 'aborted')],
    expect: [{ planId: 'A', steps: [], outcome: 'aborted' }],
  },
  {
    name: 'entries written before their plan entry are ignored',
    entries: [start('A', 'fence', 90), plan('A', 100), start('A', 'promote', 101)],
    expect: [{ planId: 'A', steps: [{ step: 'promote', startedAt: 101 }] }],
  },
];

for (const c of cases) {
  test(`groupRecoveries: ${c.name}`, () => {
    const got = groupRecoveries(c.entries);
    assert.equal(got.length, c.expect.length, JSON.stringify(got.map((r) => r.planId)));
    c.expect.forEach((e, i) => {
      for (const [k, v] of Object.entries(e)) assert.deepEqual(got[i]![k as keyof RecoveryRecord], v, `${got[i]!.planId}.${k}`);
    });
  });
}
