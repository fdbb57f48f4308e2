import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkJournal, journalWriter, leaderCountProblem, leadershipIntervals, overlappingLeadership, saysItLeads, type JournalRecord, type ManagerLog } from '../../chaos/leadership.ts';

const A = 'host:100:7001';
const B = 'host:200:7002';
const t = (ms: number) => new Date(ms).toISOString();
const elected = (at: number, cluster = 'c1') => ({ event: 'leader_elected', time: t(at), cluster });
const lost = (at: number, stoppedAt?: number, cluster = 'c1') => ({ event: 'leadership_lost', time: t(at), cluster, ...(stoppedAt !== undefined ? { stoppedAt } : {}) });
const released = (at: number, cluster = 'c1') => ({ event: 'leadership_released', time: t(at), cluster });
const entry = (writer: string, planId: string, at: number, cluster = 'c1'): JournalRecord => ({ key: `/regent/_journal/${cluster}/${String(at).padStart(15, '0')}-000001-${writer}`, planId, cluster, at, type: 'step' });

test('leadership intervals: from election to loss (at the lapse it reports), release, exit, or the end of the run', () => {
  const logs: ManagerLog[] = [
    { id: A, events: [elected(1000), lost(5000, 4200), elected(6000), released(7000), elected(8000)], exitedAt: 9000 },
    { id: B, events: [elected(100, 'c2')] },
  ];
  assert.deepEqual(leadershipIntervals(logs, 20000), [
    { cluster: 'c2', manager: B, from: 100, to: 20000 },
    { cluster: 'c1', manager: A, from: 1000, to: 4200 },
    { cluster: 'c1', manager: A, from: 6000, to: 7000 },
    { cluster: 'c1', manager: A, from: 8000, to: 9000 },
  ]);
});

test('the multi-manager invariants, each broken on purpose', async (t) => {
  const cases: { name: string; logs: ManagerLog[]; journal?: JournalRecord[]; expect: string[] }[] = [
    {
      name: 'clean takeover after a kill -9: no violation',
      logs: [
        { id: A, events: [elected(1000)], exitedAt: 5000 },
        { id: B, events: [elected(8000)] },
      ],
      journal: [entry(A, 'p1', 2000), entry(A, 'p1', 2100), entry(B, 'p2', 9000), entry(B, 'p2', 9100)],
      expect: [],
    },
    {
      name: 'a manager re-elected after its own lapse: no violation',
      logs: [{ id: A, events: [elected(1000), lost(2600, 2500), elected(2800)] }, { id: B, events: [elected(2550, 'c2')] }],
      expect: [],
    },
    {
      name: 'overlapping leadership (B elected before A lost the cluster)',
      logs: [
        { id: A, events: [elected(1000), lost(5000, 4500)] },
        { id: B, events: [elected(4000)] },
      ],
      expect: ['two-acting-managers'],
    },
    {
      name: 'a killed manager whose leadership outlived the takeover',
      logs: [
        { id: A, events: [elected(1000)], exitedAt: 6000 },
        { id: B, events: [elected(5000)] },
      ],
      expect: ['two-acting-managers'],
    },
    {
      name: 'overlap in another cluster only counts there; different clusters never conflict',
      logs: [
        { id: A, events: [elected(1000, 'c1')] },
        { id: B, events: [elected(1000, 'c2')] },
      ],
      expect: [],
    },
    {
      name: 'a plan resumed by the successor after the predecessor died: no violation',
      logs: [
        { id: A, events: [elected(1000)], exitedAt: 3000 },
        { id: B, events: [elected(6000)] },
      ],
      journal: [entry(A, 'p1', 2000), entry(A, 'p1', 2500), entry(B, 'p1', 6500), entry(B, 'p1', 7000)],
      expect: [],
    },
    {
      name: 'a plan written by two managers in turn (interleaved)',
      logs: [
        { id: A, events: [elected(1000), lost(8000)] },
        { id: B, events: [elected(9000)] },
      ],
      journal: [entry(A, 'p1', 2000), entry(B, 'p1', 2500), entry(A, 'p1', 3000)],
      expect: ['journal-two-writers'],
    },
    {
      name: 'a plan taken over while its first writer still led the cluster',
      logs: [
        { id: A, events: [elected(1000), lost(8000)] },
        { id: B, events: [elected(9000)] },
      ],
      journal: [entry(A, 'p1', 2000), entry(B, 'p1', 5000)],
      expect: ['journal-two-writers'],
    },
    {
      name: 'plans of one cluster by two managers at the same time',
      logs: [
        { id: A, events: [elected(1000)], exitedAt: 2000 },
        { id: B, events: [elected(3000)] },
      ],
      journal: [entry(A, 'p1', 4000), entry(A, 'p1', 6000), entry(B, 'p2', 5000), entry(B, 'p2', 5500)],
      expect: ['journal-plans-overlap'],
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const intervals = leadershipIntervals(c.logs, 20000);
      const found = [...overlappingLeadership(intervals), ...checkJournal(c.journal ?? [], intervals)].map((v) => v.invariant);
      assert.deepEqual(found, c.expect);
    });
});

test('the journal key names its writer, colons and dashes in the host name included', () => {
  assert.equal(journalWriter('/regent/_journal/sandbox/001795248289784-000012-my-host:4242:20857'), 'my-host:4242:20857');
});

test('exactly one leader after a fault settled: etcd and the live managers agree', async (t) => {
  const cases: { name: string; key?: string; believers: string[]; live: string[]; ok: boolean }[] = [
    { name: 'one leader, named by etcd', key: A, believers: [A], live: [A, B], ok: true },
    { name: 'no manager says it leads', key: A, believers: [], live: [A, B], ok: false },
    { name: 'two managers say they lead', key: A, believers: [A, B], live: [A, B], ok: false },
    { name: 'no key in etcd', believers: [A], live: [A, B], ok: false },
    { name: 'the key names a dead manager', key: 'host:300:7003', believers: [A], live: [A, B], ok: false },
    { name: 'etcd and the log disagree', key: B, believers: [A], live: [A, B], ok: false },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const problem = leaderCountProblem('c1', c.key, c.believers, c.live);
      assert.equal(problem === undefined, c.ok, problem);
    });
});

test('what a log says about leading now: its last leadership event for that cluster', () => {
  const events = [elected(1000), elected(1500, 'c2'), lost(2000), released(2500, 'c2'), elected(3000)];
  assert.equal(saysItLeads(events, 'c1'), true);
  assert.equal(saysItLeads(events, 'c2'), false);
  assert.equal(saysItLeads(events.slice(0, 3), 'c1'), false);
  assert.equal(saysItLeads([], 'c1'), false);
});
