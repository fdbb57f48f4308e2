import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCluster } from '../../src/analysis/analyze.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import type { JournalEntry } from '../../src/coordination/coordinator.ts';
import { decideResume, type ResumeDecision } from '../../src/manager/resume.ts';
import { planFailover, type FailoverPlan } from '../../src/recovery/plan.ts';
import { cluster, deadObs, decided, id, primaryObs, replicaObs, view } from '../helpers/views.ts';

// What a successor does with the journal a manager left when it died mid-recovery (safety rule
// 4): finish the same plan, run it again, end it, or nothing. Pure.

const c4 = cluster(4);
const connecting = { ioThread: 'connecting' as const, lastIoErrno: 2003, lastIoError: "Can't connect" };
/** n1 died; n2, n3, n4 lost it. */
const deadView = (extra: Partial<ClusterView> = {}) =>
  view(c4, [deadObs(1), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-12', connecting), replicaObs(4, '0-1-11', connecting)], extra);

function thePlan(): FailoverPlan {
  const v = deadView();
  const p = planFailover(v, analyzeCluster(v), 'DeadPrimary');
  assert.ok(!('refusal' in p));
  return p;
}
const PLAN = thePlan();

const plan = (planId: string, at: number, kind = 'failover', p: unknown = PLAN): JournalEntry => ({ type: 'plan', planId, cluster: 'c', at, kind, plan: p });
const step = (planId: string, name: string, phase: 'start' | 'end', ok?: boolean, data?: unknown): JournalEntry => ({ type: 'step', planId, cluster: 'c', at: 2, step: name, phase, ok, data });
const end = (planId: string): JournalEntry => ({ type: 'end', planId, cluster: 'c', at: 3, outcome: 'success', detail: '', durationMs: 1 });
const promoted = (planId: string, candidate = id(3)) => step(planId, 'promote', 'end', true, { candidate, commonPoint: '0-1-12' });

/** After n3 was promoted: n2 still on the dead n1, n4 already re-pointed to n3. */
const afterPromotion = (extra: Partial<ClusterView> = {}) =>
  view(c4, [deadObs(1), replicaObs(2, '0-1-12', { ...connecting, ioThread: 'no' }), primaryObs(3, '0-1-12'), replicaObs(4, '0-1-12', { source: 3 })], extra);

const cases: { name: string; entries: JournalEntry[]; v: ClusterView; expect: (d: ResumeDecision) => void }[] = [
  { name: 'an empty journal: nothing', entries: [], v: deadView(), expect: (d) => assert.deepEqual(d, { kind: 'nothing' }) },
  { name: 'every plan ended: nothing', entries: [plan('A', 1), promoted('A'), end('A')], v: deadView(), expect: (d) => assert.deepEqual(d, { kind: 'nothing' }) },
  {
    name: 'only failovers are resumed: an unfinished switchover or rejoin is left alone',
    entries: [plan('S', 1, 'switchover', { oldPrimary: id(1) }), plan('R', 2, 'rejoin', { instance: id(1) })],
    v: deadView(),
    expect: (d) => assert.deepEqual(d, { kind: 'nothing' }),
  },
  {
    name: 'the promotion happened (ok promote end): finish, re-pointing what is not yet on the new primary',
    entries: [plan('A', 1), step('A', 'promote', 'start'), promoted('A')],
    v: afterPromotion(),
    expect: (d) => {
      assert.equal(d.kind, 'finish');
      if (d.kind !== 'finish') return;
      assert.equal(d.planId, 'A');
      assert.deepEqual(d.promoted, { candidate: id(3), commonPoint: '0-1-12' });
      assert.deepEqual(d.replicas, [id(2)], 'n4 already replicates from n3; n1 is the old primary; n3 the new one');
      assert.equal(d.plan.oldPrimary, id(1));
    },
  },
  {
    name: 'finish: a replica pointed at the new primary but stopped is re-pointed; unreachable and maintenance ones are not',
    entries: [plan('A', 1), promoted('A')],
    v: view(c4, [deadObs(1), deadObs(2), primaryObs(3, '0-1-12'), replicaObs(4, '0-1-12', { source: 3, ioThread: 'no', sqlThread: false })]),
    expect: (d) => assert.deepEqual(d.kind === 'finish' ? d.replicas : d, [id(4)]),
  },
  {
    name: 'finish: a replica in maintenance is left alone',
    entries: [plan('A', 1), promoted('A')],
    v: afterPromotion({ decision: decided({ maintenance: [id(2)] }) }),
    expect: (d) => assert.deepEqual(d.kind === 'finish' ? d.replicas : d, []),
  },
  {
    name: 'a promote step that failed is no promotion: the old primary answers again, so abort',
    entries: [plan('A', 7), step('A', 'promote', 'end', false)],
    v: view(c4, [primaryObs(1, '0-1-12'), replicaObs(2, '0-1-12', { ioThread: 'no' }), replicaObs(3, '0-1-12', { ioThread: 'no' }), replicaObs(4, '0-1-12', { ioThread: 'no' })]),
    expect: (d) => {
      assert.equal(d.kind, 'abort');
      if (d.kind !== 'abort') return;
      assert.equal(d.planId, 'A');
      assert.equal(d.startedAt, 7);
      assert.equal(d.reason, `resumed by a new manager: ${id(1)} is alive again and nothing was promoted`);
    },
  },
  {
    name: 'a promote end that is not ok is no promotion, even when it carries data',
    entries: [plan('A', 1), step('A', 'promote', 'end', false, { candidate: id(3), commonPoint: '0-1-12' })],
    v: deadView(),
    expect: (d) => assert.equal(d.kind, 'rerun'),
  },
  {
    name: 'nothing promoted and the old primary still gone: run the failover again under the same plan id',
    entries: [plan('A', 1), step('A', 'fence-old-primary', 'start'), step('A', 'fence-old-primary', 'end', true)],
    v: deadView(),
    expect: (d) => {
      assert.equal(d.kind, 'rerun');
      if (d.kind !== 'rerun') return;
      assert.equal(d.planId, 'A');
      assert.equal(d.plan.oldPrimary, id(1));
      assert.equal(d.plan.trigger, 'resumed: DeadPrimary');
      assert.equal(d.plan.choice.candidate, id(3));
    },
  },
  {
    name: 'rerun: the fresh plan is made from the view now, not taken from the journal',
    entries: [plan('A', 1)],
    // Since the plan was journaled, n4 received more than n3.
    v: view(c4, [deadObs(1), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-12', connecting), replicaObs(4, '0-1-13', connecting)]),
    expect: (d) => {
      assert.equal(PLAN.choice.candidate, id(3));
      assert.equal(d.kind === 'rerun' ? d.plan.choice.candidate : d.kind, id(4));
    },
  },
  {
    name: 'nothing promoted, old primary gone, and a fresh plan has no candidate: refused, the old plan ends with the reason',
    entries: [plan('A', 5)],
    v: view(cluster(4, { promotion: { 2: 'never', 3: 'never', 4: 'never' } }), [deadObs(1), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-12', connecting), replicaObs(4, '0-1-11', connecting)]),
    expect: (d) => {
      assert.equal(d.kind, 'refused');
      if (d.kind !== 'refused') return;
      assert.equal(d.planId, 'A');
      assert.equal(d.startedAt, 5);
      assert.match(d.reason, /^resumed by a new manager and refused: no replica may be promoted: .*promotion rule is never/);
    },
  },
  {
    name: 'the latest unfinished failover is the one resumed',
    entries: [plan('old', 1), plan('new', 2)],
    v: deadView(),
    expect: (d) => assert.equal(d.kind === 'rerun' ? d.planId : d.kind, 'new'),
  },
  {
    name: 'a promotion recorded for another (ended) plan does not count for the unfinished one',
    entries: [plan('A', 1), plan('B', 2), promoted('B'), end('B')],
    v: deadView(),
    expect: (d) => assert.deepEqual([d.kind, 'planId' in d ? d.planId : ''], ['rerun', 'A']),
  },
];

for (const c of cases) test(`decideResume: ${c.name}`, () => c.expect(decideResume(c.entries, c.v)));
