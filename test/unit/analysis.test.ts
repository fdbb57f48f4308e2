import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCluster } from '../../src/analysis/analyze.ts';
import type { ProblemCode } from '../../src/analysis/problems.ts';
import { cluster, deadObs, decided, id, primaryObs, replicaObs, view } from '../helpers/views.ts';

const c3 = cluster(3);
const codes = (v: ReturnType<typeof view>) => analyzeCluster(v).problems.map((p) => `${p.code}@${p.instance ?? '-'}`).sort();

interface Case {
  name: string;
  v: ReturnType<typeof view>;
  expect: string[];
  primary?: string;
}

const connecting = { ioThread: 'connecting' as const, lastIoErrno: 2003, lastIoError: "Can't connect to server" };

const cases: Case[] = [
  {
    name: 'healthy cluster has no problems',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-9')]),
    expect: [],
    primary: id(1),
  },
  {
    name: 'dead primary: we and every replica lost it',
    v: view(c3, [deadObs(1), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10', connecting)]),
    expect: [`DeadPrimary@${id(1)}`],
    primary: id(1),
  },
  {
    name: 'unreachable primary: a replica still receives from it',
    v: view(c3, [deadObs(1, 'timeout'), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10')]),
    expect: [`UnreachablePrimary@${id(1)}`],
  },
  {
    name: 'frozen primary: replicas still say Yes but heard nothing for longer than the silence window, silent past the hang tolerance',
    v: view(c3, [deadObs(1, 'timeout', -2000), replicaObs(2, '0-1-10', {}, { lastContact: -1000 }), replicaObs(3, '0-1-10', {}, { lastContact: -1000 })]),
    expect: [`DeadPrimary@${id(1)}`],
  },
  {
    name: 'stalled primary: everyone lost it, but silent for less than the hang tolerance: unreachable only',
    v: view(c3, [deadObs(1, 'timeout', -1000), replicaObs(2, '0-1-10', {}, { lastContact: -1000 }), replicaObs(3, '0-1-10', connecting)]),
    expect: [`UnreachablePrimary@${id(1)}`],
  },
  {
    name: 'crashed primary (connection refused): dead at once, whatever the hang tolerance',
    v: view(c3, [deadObs(1, 'refused', 999), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10', connecting)]),
    expect: [`DeadPrimary@${id(1)}`],
  },
  {
    name: 'silent primary never seen answering (no start of silence known): unreachable only',
    v: view(c3, [deadObs(1, 'timeout'), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10', connecting)]),
    expect: [`UnreachablePrimary@${id(1)}`],
  },
  {
    name: 'frozen primary, silence not yet long enough: unreachable only',
    v: view(c3, [deadObs(1, 'timeout'), replicaObs(2, '0-1-10', {}, { lastContact: 500 }), replicaObs(3, '0-1-10', {}, { lastContact: -1000 })]),
    expect: [`UnreachablePrimary@${id(1)}`],
  },
  {
    name: 'dead primary and some replicas',
    v: view(c3, [deadObs(1), replicaObs(2, '0-1-10', connecting), deadObs(3)]),
    expect: [`DeadPrimaryAndSomeReplicas@${id(1)}`, `UnreachableInstance@${id(3)}`],
  },
  {
    name: 'everything unreachable',
    v: view(c3, [deadObs(1), deadObs(2), deadObs(3)], { decision: decided({ primary: id(1) }) }),
    expect: [`DeadPrimaryAndAllReplicas@${id(1)}`, `UnreachableInstance@${id(2)}`, `UnreachableInstance@${id(3)}`],
  },
  {
    name: 'replication stopped without error',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { ioThread: 'no', sqlThread: false }), replicaObs(3, '0-1-10')]),
    expect: [`ReplicationStopped@${id(2)}`],
  },
  {
    name: 'SQL thread broken on an error',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-8', { sqlThread: false, lastSqlErrno: 1062, lastSqlError: 'Duplicate entry' }), replicaObs(3, '0-1-10')]),
    expect: [`ReplicationBroken@${id(2)}`],
  },
  {
    name: 'writable replica',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', {}, { readOnly: false }), replicaObs(3, '0-1-10')]),
    expect: [`WritableReplica@${id(2)}`],
  },
  {
    name: 'primary read_only: nobody can write',
    v: view(c3, [primaryObs(1, '0-1-10', { readOnly: true }), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')]),
    expect: [`NoWritablePrimary@${id(1)}`],
  },
  {
    name: 'two writable primaries: the old one came back writable',
    v: view(c3, [primaryObs(1, '0-1-10'), primaryObs(2, '0-1-10,1-2-3'), replicaObs(3, '0-1-10,1-2-3', { source: 2 })], { decision: decided({ primary: id(2) }) }),
    expect: ['TwoWritablePrimaries@-', `OrphanInstance@${id(1)}`],
    primary: id(2),
  },
  {
    name: 'errant GTID on a replica (written locally, never by the primary)',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-2-11'), replicaObs(3, '0-1-10')]),
    expect: [`ErrantGtid@${id(2)}`],
  },
  {
    name: 'a replica ahead of the primary snapshot by the primary\'s own transactions is not errant',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-12'), replicaObs(3, '0-1-10')]),
    expect: [],
  },
  {
    name: 'replica lagging past the threshold',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-5', { secondsBehind: 60 }), replicaObs(3, '0-1-10')]),
    expect: [`ReplicaLagging@${id(2)}`],
  },
  {
    name: 'replica left pointing at a dead former primary',
    v: view(c3, [deadObs(1), primaryObs(2, '0-2-12'), replicaObs(3, '0-1-10', { ...connecting, source: 1 })], { decision: decided({ primary: id(2) }) }),
    expect: [`ReplicaPointsElsewhere@${id(3)}`, `UnreachableInstance@${id(1)}`],
    primary: id(2),
  },
  {
    name: 'replica cannot reach a primary we can reach',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10')]),
    expect: [`ReplicaCannotReachPrimary@${id(2)}`],
  },
];

for (const c of cases) {
  test(`analysis: ${c.name}`, () => {
    assert.deepEqual(codes(c.v), [...c.expect].sort());
    if (c.primary) assert.equal(analyzeCluster(c.v).topology.primary, c.primary);
  });
}

test('every problem carries evidence', () => {
  for (const c of cases) for (const p of analyzeCluster(c.v).problems) assert.ok(p.evidence.length > 0, `${p.code} in "${c.name}" has no evidence`);
});

test('maintenance instances are not reported', () => {
  const v = view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { ioThread: 'no', sqlThread: false }), replicaObs(3, '0-1-10')], { decision: decided({ maintenance: [id(2)] }) });
  assert.deepEqual(codes(v), []);
});

test('dead primary evidence names each replica and why it lost the primary', () => {
  const v = view(c3, [deadObs(1), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10', {}, { lastContact: -5000 })]);
  const p = analyzeCluster(v).problems.find((x) => x.code === ('DeadPrimary' satisfies ProblemCode))!;
  assert.ok(p);
  assert.match(p.evidence.join('\n'), new RegExp(`${id(2)}: IO thread reconnecting`));
  assert.match(p.evidence.join('\n'), new RegExp(`${id(3)}: IO thread connected but nothing received for 6000 ms`));
});

test('right after a failover, replicas whose last probe still names the old primary do not make it primary again', () => {
  // The old primary (n1) woke up writable; n2 was promoted; n3's last probe predates its re-pointing.
  const v = view(c3, [primaryObs(1, '0-1-10'), primaryObs(2, '0-1-10'), replicaObs(3, '0-1-10', { source: 1 })], { decision: decided({ primary: id(2), fenced: [id(1)] }) });
  const a = analyzeCluster(v);
  assert.equal(a.topology.primary, id(2));
  assert.ok(a.problems.some((p) => p.code === 'TwoWritablePrimaries'));
});
