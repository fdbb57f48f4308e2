import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCluster } from '../../src/analysis/analyze.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import type { Problem, ProblemCode } from '../../src/analysis/problems.ts';
import { MariaGtidPosition, MysqlGtidSet } from '../../src/gtid/index.ts';
import { cluster, deadObs, decided, id, kits, mariadb, view, type Kit } from '../helpers/views.ts';

// The diagnosis of a cluster, pure: which problems, about which instance, the inferred primary,
// and the typed data each problem carries. Every case runs with MariaDB and with MySQL fixtures.

const c3 = cluster(3);
const keyOf = (p: Pick<Problem, 'code' | 'instance'>) => `${p.code}@${p.instance ?? '-'}`;
const codes = (v: ClusterView) => analyzeCluster(v).problems.map(keyOf).sort();

interface Case {
  name: string;
  v: (k: Kit) => ClusterView;
  expect: string[];
  /** The primary the topology infers (every case says it). */
  primary: string;
  /**
   * Expected typed data per problem (`code@instance`): each key given is compared (GTID states as
   * text). Every problem whose data is not empty must be listed.
   */
  data?: (k: Kit) => Record<string, Record<string, unknown>>;
}

const connecting = { ioThread: 'connecting' as const, lastIoErrno: 2003, lastIoError: "Can't connect to server" };
const P = ['0-1-10', 'U1:1-10'] as const;

const cases: Case[] = [
  {
    name: 'healthy cluster has no problems',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g('0-1-9', 'U1:1-9'))]),
    expect: [],
    primary: id(1),
  },
  {
    name: 'dead primary: we and every replica lost it',
    v: (k) => view(c3, [deadObs(1), k.replicaObs(2, k.g(...P), connecting), k.replicaObs(3, k.g(...P), connecting)]),
    expect: [`DeadPrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`DeadPrimary@${id(1)}`]: { confirmedBy: [id(2), id(3)] } }),
  },
  {
    name: 'unreachable primary: a replica still receives from it',
    v: (k) => view(c3, [deadObs(1, 'timeout'), k.replicaObs(2, k.g(...P), connecting), k.replicaObs(3, k.g(...P))]),
    expect: [`UnreachablePrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`UnreachablePrimary@${id(1)}`]: { hearing: [id(3)] } }),
  },
  {
    name: 'unreachable primary: no reachable replica replicates from it to confirm',
    v: (k) => view(c3, [deadObs(1, 'timeout'), k.serverObs(2, k.g(...P)), k.serverObs(3, k.g(...P))], { decision: decided({ primary: id(1) }) }),
    expect: [`UnreachablePrimary@${id(1)}`, `OrphanInstance@${id(2)}`, `OrphanInstance@${id(3)}`],
    primary: id(1),
    data: () => ({ [`UnreachablePrimary@${id(1)}`]: { hearing: [] } }),
  },
  {
    name: 'frozen primary: replicas still say Yes but heard nothing for longer than the silence window, silent past the hang tolerance',
    v: (k) => view(c3, [deadObs(1, 'timeout', 1000, -2000), k.replicaObs(2, k.g(...P), {}, { lastContact: -1000 }), k.replicaObs(3, k.g(...P), {}, { lastContact: -1000 })]),
    expect: [`DeadPrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`DeadPrimary@${id(1)}`]: { confirmedBy: [id(2), id(3)] } }),
  },
  {
    name: 'stalled primary: everyone lost it, but silent for less than the hang tolerance: unreachable only',
    v: (k) => view(c3, [deadObs(1, 'timeout', 1000, -1000), k.replicaObs(2, k.g(...P), {}, { lastContact: -1000 }), k.replicaObs(3, k.g(...P), connecting)]),
    expect: [`UnreachablePrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`UnreachablePrimary@${id(1)}`]: { hearing: [], silentForMs: 2000, hangToleranceMs: 3000 } }),
  },
  {
    name: 'crashed primary (connection refused): dead at once, whatever the hang tolerance',
    v: (k) => view(c3, [deadObs(1, 'refused', 1000, 999), k.replicaObs(2, k.g(...P), connecting), k.replicaObs(3, k.g(...P), connecting)]),
    expect: [`DeadPrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`DeadPrimary@${id(1)}`]: { confirmedBy: [id(2), id(3)] } }),
  },
  {
    name: 'silent primary never seen answering (no start of silence known): unreachable only',
    v: (k) => view(c3, [deadObs(1, 'timeout'), k.replicaObs(2, k.g(...P), connecting), k.replicaObs(3, k.g(...P), connecting)]),
    expect: [`UnreachablePrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`UnreachablePrimary@${id(1)}`]: { hearing: [] } }),
  },
  {
    name: 'frozen primary, silence not yet long enough: unreachable only',
    v: (k) => view(c3, [deadObs(1, 'timeout'), k.replicaObs(2, k.g(...P), {}, { lastContact: 500 }), k.replicaObs(3, k.g(...P), {}, { lastContact: -1000 })]),
    expect: [`UnreachablePrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`UnreachablePrimary@${id(1)}`]: { hearing: [id(2)] } }),
  },
  {
    name: 'dead primary and some replicas',
    v: (k) => view(c3, [deadObs(1), k.replicaObs(2, k.g(...P), connecting), deadObs(3)]),
    expect: [`DeadPrimaryAndSomeReplicas@${id(1)}`, `UnreachableInstance@${id(3)}`],
    primary: id(1),
    data: () => ({ [`DeadPrimaryAndSomeReplicas@${id(1)}`]: { confirmedBy: [id(2)], unreachableReplicas: [id(3)] } }),
  },
  {
    name: 'everything unreachable',
    v: () => view(c3, [deadObs(1), deadObs(2), deadObs(3)], { decision: decided({ primary: id(1) }) }),
    expect: [`DeadPrimaryAndAllReplicas@${id(1)}`, `UnreachableInstance@${id(2)}`, `UnreachableInstance@${id(3)}`],
    primary: id(1),
  },
  {
    name: 'replication stopped without error',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P), { ioThread: 'no', sqlThread: false }), k.replicaObs(3, k.g(...P))]),
    expect: [`ReplicationStopped@${id(2)}`],
    primary: id(1),
    data: () => ({ [`ReplicationStopped@${id(2)}`]: { ioThread: 'no', sqlThread: false } }),
  },
  {
    name: 'SQL thread broken on an error',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g('0-1-8', 'U1:1-8'), { sqlThread: false, lastSqlErrno: 1062, lastSqlError: 'Duplicate entry' }), k.replicaObs(3, k.g(...P))]),
    expect: [`ReplicationBroken@${id(2)}`],
    primary: id(1),
    data: () => ({ [`ReplicationBroken@${id(2)}`]: { thread: 'sql', errno: 1062, error: 'Duplicate entry' } }),
  },
  {
    name: 'IO thread stopped on an error',
    v: (k) =>
      view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P), { ioThread: 'no', lastIoErrno: 1236, lastIoError: 'Could not find GTID state requested by slave' }), k.replicaObs(3, k.g(...P))]),
    expect: [`ReplicationBroken@${id(2)}`],
    primary: id(1),
    data: () => ({ [`ReplicationBroken@${id(2)}`]: { thread: 'io', errno: 1236, error: 'Could not find GTID state requested by slave' } }),
  },
  {
    name: 'writable replica',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P), {}, { readOnly: false }), k.replicaObs(3, k.g(...P))]),
    expect: [`WritableReplica@${id(2)}`],
    primary: id(1),
  },
  {
    name: 'primary read_only: nobody can write',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P), { readOnly: true }), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g(...P))]),
    expect: [`NoWritablePrimary@${id(1)}`],
    primary: id(1),
  },
  {
    name: 'two writable primaries: the old one came back writable',
    v: (k) =>
      view(c3, [k.primaryObs(1, k.g(...P)), k.primaryObs(2, k.g('0-1-10,1-2-3', 'U1:1-10,U2:1-3')), k.replicaObs(3, k.g('0-1-10,1-2-3', 'U1:1-10,U2:1-3'), { source: 2 })], {
        decision: decided({ primary: id(2) }),
      }),
    expect: ['TwoWritablePrimaries@-', `OrphanInstance@${id(1)}`],
    primary: id(2),
    data: () => ({ 'TwoWritablePrimaries@-': { writable: [id(1), id(2)] } }),
  },
  {
    name: 'errant GTID on a replica (written locally, never by the primary)',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g('0-2-11', 'U1:1-10,U2:1')), k.replicaObs(3, k.g(...P))]),
    expect: [`ErrantGtid@${id(2)}`],
    primary: id(1),
    data: (k) => ({ [`ErrantGtid@${id(2)}`]: { errant: k.text('0-2-11', 'U2:1') } }),
  },
  {
    name: 'errant GTIDs in another domain / of another origin, beside everything the primary has',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g('0-1-10,5-3-2', 'U1:1-10,U3:1-2'))]),
    expect: [`ErrantGtid@${id(3)}`],
    primary: id(1),
    data: (k) => ({ [`ErrantGtid@${id(3)}`]: { errant: k.text('5-3-2', 'U3:1-2') } }),
  },
  {
    name: "a replica ahead of the primary snapshot by the primary's own transactions is not errant",
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g('0-1-12', 'U1:1-12')), k.replicaObs(3, k.g(...P))]),
    expect: [],
    primary: id(1),
  },
  {
    name: 'replica lagging past the threshold',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g('0-1-5', 'U1:1-5'), { secondsBehind: 60 }), k.replicaObs(3, k.g(...P))]),
    expect: [`ReplicaLagging@${id(2)}`],
    primary: id(1),
    data: () => ({ [`ReplicaLagging@${id(2)}`]: { seconds: 60, thresholdSeconds: 10 } }),
  },
  {
    name: 'replica left pointing at a dead former primary',
    v: (k) => view(c3, [deadObs(1), k.primaryObs(2, k.g('0-2-12', 'U1:1-10,U2:1-2')), k.replicaObs(3, k.g(...P), { ...connecting, source: 1 })], { decision: decided({ primary: id(2) }) }),
    expect: [`ReplicaPointsElsewhere@${id(3)}`, `UnreachableInstance@${id(1)}`],
    primary: id(2),
    data: () => ({ [`ReplicaPointsElsewhere@${id(3)}`]: { source: id(1), sourceInCluster: id(1) } }),
  },
  {
    name: 'replica replicating from a host outside the cluster',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g(...P), { sourceHost: '10.0.0.9', sourcePort: 3306 })]),
    expect: [`ReplicaPointsElsewhere@${id(3)}`],
    primary: id(1),
    data: () => ({ [`ReplicaPointsElsewhere@${id(3)}`]: { source: '10.0.0.9:3306', sourceInCluster: undefined } }),
  },
  {
    name: 'a replica of a healthy replica (a chain) is fine',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g(...P), { source: 2 })]),
    expect: [],
    primary: id(1),
  },
  {
    name: 'replica cannot reach a primary we can reach',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P), connecting), k.replicaObs(3, k.g(...P))]),
    expect: [`ReplicaCannotReachPrimary@${id(2)}`],
    primary: id(1),
    data: () => ({ [`ReplicaCannotReachPrimary@${id(2)}`]: { errno: 2003, error: "Can't connect to server" } }),
  },
  {
    name: 'lease lost (coordination.primaryLease) with other live nodes: the primary must stop taking writes',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g(...P))], { leaseLostForMs: 5000 }),
    expect: [`PrimaryLeaseExpired@${id(1)}`],
    primary: id(1),
    data: () => ({ [`PrimaryLeaseExpired@${id(1)}`]: { contactLostMs: 5000, otherLiveNodes: [id(2), id(3)] } }),
  },
  {
    name: 'lease lost while the primary is the only live node: still reported, with no other live node',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), deadObs(2), deadObs(3)], { leaseLostForMs: 5000 }),
    expect: [`PrimaryLeaseExpired@${id(1)}`, `UnreachableInstance@${id(2)}`, `UnreachableInstance@${id(3)}`],
    primary: id(1),
    data: () => ({ [`PrimaryLeaseExpired@${id(1)}`]: { contactLostMs: 5000, otherLiveNodes: [] } }),
  },
  {
    name: 'lease lost: it is the decided primary that must stop',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.primaryObs(2, k.g(...P)), k.replicaObs(3, k.g(...P), { source: 2 })], { leaseLostForMs: 8000, decision: decided({ primary: id(2) }) }),
    expect: [`PrimaryLeaseExpired@${id(2)}`, 'TwoWritablePrimaries@-', `OrphanInstance@${id(1)}`],
    primary: id(2),
    data: () => ({ [`PrimaryLeaseExpired@${id(2)}`]: { contactLostMs: 8000, otherLiveNodes: [id(1), id(3)] }, 'TwoWritablePrimaries@-': { writable: [id(1), id(2)] } }),
  },
  {
    name: 'lease lost but the primary is read_only already: nothing to fence',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P), { readOnly: true }), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g(...P))], { leaseLostForMs: 5000 }),
    expect: [`NoWritablePrimary@${id(1)}`],
    primary: id(1),
  },
  {
    name: 'lease lost and the primary unreachable: nothing to fence here',
    v: (k) => view(c3, [deadObs(1), k.replicaObs(2, k.g(...P), connecting), k.replicaObs(3, k.g(...P), connecting)], { leaseLostForMs: 5000 }),
    expect: [`DeadPrimary@${id(1)}`],
    primary: id(1),
    data: () => ({ [`DeadPrimary@${id(1)}`]: { confirmedBy: [id(2), id(3)] } }),
  },
];

/** Problem data with GTID states as their text, for comparison. */
function plain(data: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v instanceof MariaGtidPosition || v instanceof MysqlGtidSet ? v.toString() : v]));
}

for (const k of kits)
  for (const c of cases) {
    test(`analysis [${k.flavor}]: ${c.name}`, () => {
      const v = c.v(k);
      const a = analyzeCluster(v);
      assert.deepEqual(a.problems.map(keyOf).sort(), [...c.expect].sort());
      assert.equal(a.topology.primary, c.primary);
      const expected = c.data?.(k) ?? {};
      for (const p of a.problems) {
        const want = expected[keyOf(p)];
        if (Object.keys(p.data).length > 0) assert.ok(want, `the case must state the data of ${keyOf(p)}: ${JSON.stringify(plain(p.data))}`);
        const got = plain(p.data);
        for (const [key, value] of Object.entries(want ?? {})) assert.deepEqual(got[key], value, `${keyOf(p)}.${key}`);
      }
      for (const key of Object.keys(expected)) assert.ok(a.problems.some((p) => keyOf(p) === key), `${key} expected`);
    });
  }

test('ErrantGtid data is a GTID state of the cluster flavor, not text', () => {
  for (const k of kits) {
    const a = analyzeCluster(cases.find((c) => c.name.startsWith('errant GTID on a replica'))!.v(k));
    const p = a.problems.find((x): x is Problem<'ErrantGtid'> => x.code === 'ErrantGtid')!;
    assert.equal(p.data.errant.flavor, k.flavor);
    assert.ok(!p.data.errant.isEmpty());
  }
});

test('every problem carries evidence', () => {
  for (const k of kits) for (const c of cases) for (const p of analyzeCluster(c.v(k)).problems) assert.ok(p.evidence.length > 0, `${p.code} in "${c.name}" (${k.flavor}) has no evidence`);
});

test('the lease summary says when the primary is the only live node', () => {
  const only = analyzeCluster(cases.find((c) => c.name.startsWith('lease lost while'))!.v(mariadb)).problems.find((p) => p.code === 'PrimaryLeaseExpired')!;
  assert.match(only.summary, /must stop taking writes \(but it is the only live node\)$/);
  assert.ok(only.evidence.includes('other live nodes: none'));
  const others = analyzeCluster(cases.find((c) => c.name.startsWith('lease lost (coordination'))!.v(mariadb)).problems.find((p) => p.code === 'PrimaryLeaseExpired')!;
  assert.doesNotMatch(others.summary, /only live node/);
});

for (const k of kits) {
  test(`maintenance instances are not reported [${k.flavor}]`, () => {
    const v = view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P), { ioThread: 'no', sqlThread: false }), k.replicaObs(3, k.g(...P))], { decision: decided({ maintenance: [id(2)] }) });
    assert.deepEqual(codes(v), []);
  });

  test(`a primary in maintenance that is read_only is not reported [${k.flavor}]`, () => {
    const v = view(c3, [k.primaryObs(1, k.g(...P), { readOnly: true }), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g(...P))], { decision: decided({ maintenance: [id(1)] }) });
    assert.deepEqual(codes(v), []);
  });

  test(`dead primary evidence names each replica and why it lost the primary [${k.flavor}]`, () => {
    const v = view(c3, [deadObs(1), k.replicaObs(2, k.g(...P), connecting), k.replicaObs(3, k.g(...P), {}, { lastContact: -5000 })]);
    const p = analyzeCluster(v).problems.find((x) => x.code === ('DeadPrimary' satisfies ProblemCode))!;
    assert.ok(p);
    assert.match(p.evidence.join('\n'), new RegExp(`${id(2)}: IO thread reconnecting`));
    assert.match(p.evidence.join('\n'), new RegExp(`${id(3)}: IO thread connected but nothing received for 6000 ms`));
  });

  test(`right after a failover, replicas whose last probe still names the old primary do not make it primary again [${k.flavor}]`, () => {
    // The old primary (n1) woke up writable; n2 was promoted; n3's last probe predates its re-pointing.
    const v = view(c3, [k.primaryObs(1, k.g(...P)), k.primaryObs(2, k.g(...P)), k.replicaObs(3, k.g(...P), { source: 1 })], { decision: decided({ primary: id(2), fenced: [id(1)] }) });
    const a = analyzeCluster(v);
    assert.equal(a.topology.primary, id(2));
    assert.ok(a.problems.some((p) => p.code === 'TwoWritablePrimaries'));
  });
}
