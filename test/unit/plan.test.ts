import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCluster } from '../../src/analysis/analyze.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import { originSeenByReplicas, planFailover, renderPlan, replicaFactsFromView, type FailoverPlan, type StepName } from '../../src/recovery/plan.ts';
import { cluster, deadObs, decided, id, kits, view, type Kit } from '../helpers/views.ts';

// The failover plan: who takes part, the steps (what runs, what the journal and --dry-run show)
// with their reasons, the provisional candidate. Both flavors.

const connecting = { ioThread: 'connecting' as const, lastIoErrno: 2003, lastIoError: "Can't connect" };
const BASE_STEPS: StepName[] = ['fence-old-primary', 'stop-io-threads', 'drain-relay-logs', 'choose-candidate', 'catch-up', 'promote', 'repoint-replicas', 'publish', 'verify'];

function plan(v: ClusterView, trigger = 'DeadPrimary'): FailoverPlan {
  const p = planFailover(v, analyzeCluster(v), trigger);
  assert.ok(!('refusal' in p), 'refusal' in p ? p.refusal : '');
  return p;
}
const step = (p: FailoverPlan, name: StepName) => p.steps.find((s) => s.name === name)?.reason;

/** n1 dead, n2 and n3 lost it; n2 at 10, n3 at 12 (the most advanced). */
const deadPrimary = (k: Kit, c = cluster(3)) =>
  view(c, [deadObs(1), k.replicaObs(2, k.g('0-1-10', 'U1:1-10'), connecting), k.replicaObs(3, k.g('0-1-12', 'U1:1-12'), connecting)]);

interface Case {
  name: string;
  v: (k: Kit) => ClusterView;
  check: (p: FailoverPlan, k: Kit) => void;
}

const cases: Case[] = [
  {
    name: 'without hooks the steps are the nine of a failover, in order',
    v: (k) => deadPrimary(k),
    check: (p) => assert.deepEqual(p.steps.map((s) => s.name), BASE_STEPS),
  },
  {
    name: 'pre- and post-failover hooks add their steps first and last, with the count',
    v: (k) => deadPrimary(k, cluster(3, { yaml: '    hooks:\n      preFailover: ["/bin/true", "/bin/echo pre"]\n      postFailover: ["/bin/echo post"]' })),
    check: (p) => {
      assert.deepEqual(p.steps.map((s) => s.name), ['pre-failover-hooks', ...BASE_STEPS, 'post-failover-hooks']);
      assert.match(step(p, 'pre-failover-hooks')!, /run 2 pre-failover hook\(s\); a non-zero exit aborts the failover/);
      assert.match(step(p, 'post-failover-hooks')!, /run 1 post-failover hook\(s\)/);
    },
  },
  {
    name: 'only a pre-failover hook: only its step is added',
    v: (k) => deadPrimary(k, cluster(3, { yaml: '    hooks:\n      preFailover: ["/bin/true"]' })),
    check: (p) => assert.deepEqual(p.steps.map((s) => s.name), ['pre-failover-hooks', ...BASE_STEPS]),
  },
  {
    name: 'a failoverFailed hook adds no step',
    v: (k) => deadPrimary(k, cluster(3, { yaml: '    hooks:\n      failoverFailed: ["/bin/true"]' })),
    check: (p) => assert.deepEqual(p.steps.map((s) => s.name), BASE_STEPS),
  },
  {
    name: 'the provisional candidate is the most advanced replica; catch-up is listed as not needed',
    v: (k) => deadPrimary(k),
    check: (p) => {
      assert.equal(p.choice.candidate, id(3));
      assert.equal(step(p, 'choose-candidate'), `choose again from exact positions (now: ${id(3)})`);
      assert.equal(step(p, 'catch-up'), 'only if a replica that may not be promoted holds transactions the candidate lacks (now: not needed)');
      assert.match(step(p, 'promote')!, new RegExp(`^${id(3)}: stop and reset replication`));
    },
  },
  {
    name: 'a never replica ahead: catch-up is listed with who catches up from whom',
    v: (k) => deadPrimary(k, cluster(3, { promotion: { 3: 'never' } })),
    check: (p) => {
      assert.equal(p.choice.candidate, id(2));
      assert.equal(p.choice.catchUpFrom, id(3));
      assert.equal(step(p, 'catch-up'), `${id(2)} replicates from ${id(3)} until it has everything`);
    },
  },
  {
    name: 'no candidate: the plan still lists its steps, with none as the provisional choice',
    v: (k) => deadPrimary(k, cluster(3, { promotion: { 2: 'never', 3: 'never' } })),
    check: (p) => {
      assert.equal(p.choice.candidate, undefined);
      assert.match(p.choice.refusal!, /never/);
      assert.equal(step(p, 'choose-candidate'), 'choose again from exact positions (now: none)');
      assert.match(step(p, 'promote')!, /^\(candidate\): /);
    },
  },
  {
    name: 'an unreachable old primary is fenced by the routers, and set read_only when it answers',
    v: (k) => deadPrimary(k),
    check: (p) => assert.equal(step(p, 'fence-old-primary'), `${id(1)} is unreachable: routers stop sending it writes; it is set read_only the moment it answers again`),
  },
  {
    name: 'a reachable old primary (a forced failover) is set read_only with its sessions killed',
    v: (k) => view(cluster(3), [k.primaryObs(1, k.g('0-1-10', 'U1:1-10')), k.replicaObs(2, k.g('0-1-10', 'U1:1-10')), k.replicaObs(3, k.g('0-1-10', 'U1:1-10'))]),
    check: (p) => assert.equal(step(p, 'fence-old-primary'), `${id(1)} is reachable: set read_only and kill client sessions so nobody writes to it`),
  },
  {
    name: 'only the replicas of the old primary take part: not a former primary waiting for a rejoin, not a replica of an outside source',
    v: (k) =>
      view(cluster(5), [
        deadObs(1),
        k.replicaObs(2, k.g('0-1-10', 'U1:1-10'), connecting),
        k.replicaObs(3, k.g('0-1-10', 'U1:1-10'), connecting),
        k.serverObs(4, k.g('0-4-20', 'U4:1-20')),
        k.replicaObs(5, k.g('0-1-30', 'U1:1-30'), { sourceHost: '10.0.0.9', sourcePort: 3306 }),
      ]),
    check: (p) => {
      assert.deepEqual([...p.replicas].sort(), [id(2), id(3)]);
      assert.equal(step(p, 'stop-io-threads'), `stop IO threads on ${id(2)}, ${id(3)} so no replica takes more from the old primary`);
      assert.ok(![id(4), id(5)].includes(p.choice.candidate!));
    },
  },
  {
    name: 'IO threads are stopped on the reachable replicas only',
    v: (k) => view(cluster(4), [deadObs(1), k.replicaObs(2, k.g('0-1-10', 'U1:1-10'), connecting), deadObs(3), k.replicaObs(4, k.g('0-1-10', 'U1:1-10'), connecting)], { decision: decided({ primary: id(1) }) }),
    check: (p) => {
      assert.equal(step(p, 'stop-io-threads'), `stop IO threads on ${id(2)}, ${id(4)} so no replica takes more from the old primary`);
    },
  },
  {
    name: 'the plan carries the cluster, the old primary and the trigger',
    v: (k) => deadPrimary(k),
    check: (p) => {
      assert.equal(p.cluster, 'c');
      assert.equal(p.kind, 'failover');
      assert.equal(p.oldPrimary, id(1));
      assert.equal(p.trigger, 'DeadPrimary');
    },
  },
  {
    name: 'failover.maxLagForCandidateSeconds from the config: a lagging replica is not the provisional candidate',
    v: (k) =>
      view(cluster(3, { yaml: '    failover:\n      maxLagForCandidateSeconds: 5' }), [
        deadObs(1),
        k.replicaObs(2, k.g('0-1-10', 'U1:1-10'), { ...connecting, secondsBehind: null }, { lastMeasuredLagSeconds: 1 }),
        k.replicaObs(3, k.g('0-1-12', 'U1:1-12'), { ...connecting, secondsBehind: null }, { lastMeasuredLagSeconds: 60 }),
      ]),
    check: (p) => {
      assert.equal(p.choice.candidate, id(2));
      assert.equal(p.choice.catchUpFrom, id(3), 'the lagging replica still gives what it has');
      assert.match(p.choice.rejected.find((r) => r.id === id(3))!.why, /60 s behind its source, more than failover\.maxLagForCandidateSeconds \(5 s\)/);
    },
  },
  {
    name: 'the old primary unreachable: a replica merely ahead by its transactions is not errant (origin from what replicas saw)',
    v: (k) => deadPrimary(k),
    check: (p, k) => {
      assert.equal(p.choice.candidate, id(3));
      assert.deepEqual(p.choice.rejected, []);
      assert.equal(p.choice.catchUpFrom, undefined, k.flavor);
    },
  },
];

for (const k of kits)
  for (const c of cases) {
    test(`failover plan [${k.flavor}]: ${c.name}`, () => c.check(plan(c.v(k)), k));
  }

test('failover plan: refused when no primary is known', () => {
  const v = deadPrimary(kits[0]!);
  const a = analyzeCluster(v);
  const p = planFailover(v, { ...a, topology: { ...a.topology, primary: undefined } }, 'manual');
  assert.deepEqual(p, { refusal: 'no primary is known for this cluster, so there is nothing to fail over from' });
  assert.equal(renderPlan(p), 'no failover: no primary is known for this cluster, so there is nothing to fail over from');
});

// --- originSeenByReplicas --------------------------------------------------------------------

for (const k of kits) {
  test(`originSeenByReplicas [${k.flavor}]: the old primary's GTID origin as its replicas saw it (${k.flavor === 'mysql' ? 'Source_UUID' : 'Master_Server_Id'})`, () => {
    assert.equal(originSeenByReplicas(deadPrimary(k), id(1)), k.origin(1));
  });
  test(`originSeenByReplicas [${k.flavor}]: unknown when no replica replicates from it`, () => {
    const v = view(cluster(3), [deadObs(1), k.replicaObs(2, k.g('0-1-10', 'U1:1-10'), { source: 3 }), k.serverObs(3, k.g('0-1-10', 'U1:1-10'))]);
    assert.equal(originSeenByReplicas(v, id(1)), undefined);
  });
}

// --- replicaFactsFromView --------------------------------------------------------------------

for (const k of kits) {
  test(`replicaFactsFromView [${k.flavor}]: config order, what the relay log will add before the drain, exact after`, () => {
    const v = view(cluster(3), [
      deadObs(1),
      k.replicaObs(3, k.g('0-1-10', 'U1:1-10'), { ...connecting, receivedGtid: k.gtid('0-1-12', 'U1:1-12') }),
      k.replicaObs(2, k.g('0-1-9', 'U1:1-9'), connecting),
    ]);
    const before = replicaFactsFromView(v, [id(3), id(2)], false);
    assert.deepEqual(before.map((f) => f.instance.id), [id(2), id(3)]);
    assert.equal(before[1]!.executed!.toString(), k.text('0-1-12', 'U1:1-12'));
    assert.equal(before[1]!.received!.toString(), k.text('0-1-12', 'U1:1-12'));
    const after = replicaFactsFromView(v, [id(3), id(2)], true);
    assert.equal(after[1]!.executed!.toString(), k.text('0-1-10', 'U1:1-10'));
  });

  test(`replicaFactsFromView [${k.flavor}]: SQL error, delay, binlog settings, lag, errant and maintenance from the decision`, () => {
    const v = view(
      cluster(4),
      [
        deadObs(1),
        k.replicaObs(2, k.g('0-1-9', 'U1:1-9'), { sqlThread: false, lastSqlErrno: 1062, lastSqlError: 'Duplicate entry', secondsBehind: 7 }),
        k.replicaObs(3, k.g('0-1-9', 'U1:1-9'), { sqlDelay: 3600, secondsBehind: null }, { logBin: false, lastMeasuredLagSeconds: 4 }),
        deadObs(4),
      ],
      { decision: decided({ errant: { [id(2)]: 'E' }, maintenance: { [id(3)]: 2000, [id(2)]: 500 } }) },
    );
    const [f2, f3, f4] = replicaFactsFromView(v, [id(2), id(3), id(4)], true);
    assert.deepEqual(
      { sqlError: f2!.sqlError, errant: f2!.errant, maintenance: f2!.maintenance, lag: f2!.lagSeconds, logBin: f2!.logBin },
      { sqlError: '1062: Duplicate entry', errant: 'E', maintenance: false, lag: 7, logBin: true },
    );
    assert.deepEqual(
      { sqlError: f3!.sqlError, delay: f3!.sqlDelay, maintenance: f3!.maintenance, lag: f3!.lagSeconds, logBin: f3!.logBin },
      { sqlError: undefined, delay: 3600, maintenance: true, lag: 4, logBin: false },
    );
    assert.deepEqual({ reachable: f4!.reachable, executed: f4!.executed, logBin: f4!.logBin }, { reachable: false, executed: undefined, logBin: false });
  });
}

// --- renderPlan --------------------------------------------------------------------------------

test('renderPlan: old and new primary, the reasons, the rejected replicas and the numbered steps', () => {
  const k = kits[0]!;
  const p = plan(deadPrimary(k, cluster(3, { promotion: { 3: 'never' } })));
  const text = renderPlan(p);
  const lines = text.split('\n');
  assert.equal(lines[0], 'failover plan for cluster c (trigger: DeadPrimary)');
  assert.equal(lines[1], `  old primary: ${id(1)}`);
  assert.equal(lines[2], `  new primary: ${id(2)}`);
  assert.ok(lines.includes(`    not ${id(3)}: promotion rule is never`));
  assert.ok(lines.some((l) => l.startsWith('    because ')));
  assert.ok(lines.includes('  steps:'));
  assert.ok(lines.includes(`    5. catch-up: ${id(2)} replicates from ${id(3)} until it has everything`));
  assert.equal(lines.at(-1), '    9. verify: replicas connected to the new primary');
});

test('renderPlan: no candidate is said loudly', () => {
  const p = plan(deadPrimary(kits[0]!, cluster(3, { promotion: { 2: 'never', 3: 'never' } })));
  assert.match(renderPlan(p), /\n {2}NO CANDIDATE: no replica may be promoted: /);
});
