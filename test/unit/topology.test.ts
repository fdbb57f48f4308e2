import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inferTopology, type ClusterView } from '../../src/analysis/cluster-view.ts';
import { cluster, deadObs, decided, id, primaryObs, replicaObs, serverObs, view } from '../helpers/views.ts';

// Who is primary, from facts: every rung of inferTopology's ladder, each with its evidence, and the
// interplay with what Regent decided (the decided primary, the fenced former primaries).

const c3 = cluster(3);
const c5 = cluster(5);
const connecting = { ioThread: 'connecting' as const, lastIoErrno: 2003, lastIoError: "Can't connect" };

interface Case {
  name: string;
  v: ClusterView;
  primary: string | undefined;
  evidence: string;
  /** replica -> its source (undefined: outside the cluster); every entry, nothing else. */
  sources?: Record<string, string | undefined>;
  orphans?: string[];
}

const cases: Case[] = [
  // Rung 1: the replicas' own word about their source.
  {
    name: 'replicas point at the primary',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')]),
    primary: id(1),
    evidence: '2 replicas replicate from it',
    sources: { [id(2)]: id(1), [id(3)]: id(1) },
    orphans: [],
  },
  {
    name: 'one replica points at the primary (singular evidence)',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), deadObs(3)]),
    primary: id(1),
    evidence: '1 replica replicates from it',
    sources: { [id(2)]: id(1) },
    orphans: [],
  },
  {
    name: 'an intermediate is walked up: the top of the chain is the primary, counting every replica below it',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10', { source: 2 })]),
    primary: id(1),
    evidence: '2 replicas replicate from it',
    sources: { [id(2)]: id(1), [id(3)]: id(2) },
    orphans: [],
  },
  {
    name: 'a dead primary is still the primary while its replicas point at it (that is how it is known dead)',
    v: view(c3, [deadObs(1), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10', connecting)]),
    primary: id(1),
    evidence: '2 replicas replicate from it',
    orphans: [],
  },
  {
    name: 'several pointer tops: the most followed wins when the decided primary is not among them',
    v: view(c5, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10'), serverObs(4, '0-1-10'), replicaObs(5, '0-1-10', { source: 4 })]),
    primary: id(1),
    evidence: '2 replicas replicate from it',
    orphans: [id(4)],
  },
  {
    name: 'several pointer tops: the decided primary among them wins, with its own count as evidence',
    v: view(c5, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10'), serverObs(4, '0-1-10'), replicaObs(5, '0-1-10', { source: 4 })], { decision: decided({ primary: id(4) }) }),
    primary: id(4),
    evidence: '1 replica replicates from it',
    orphans: [id(1)],
  },
  {
    name: 'one pointer top: the decided primary elsewhere does not outvote it (unless it is a live writer)',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), serverObs(3, '0-1-10')], { decision: decided({ primary: id(3) }) }),
    primary: id(1),
    evidence: '1 replica replicates from it',
    orphans: [id(3)],
  },
  // Rung 2: the decided live writer, over stale or dead pointers.
  {
    name: 'a fenced pointer top loses to the decided live writer (replicas\' last probe predates their re-pointing)',
    v: view(c3, [primaryObs(1, '0-1-10'), primaryObs(2, '0-1-10'), replicaObs(3, '0-1-10', { source: 1 })], { decision: decided({ primary: id(2), fenced: [id(1)] }) }),
    primary: id(2),
    evidence: 'the writable primary Regent decided on',
    sources: { [id(3)]: id(1) },
    orphans: [id(1)],
  },
  {
    name: 'a fenced pointer top still wins when the decided primary is not a live writer',
    v: view(c3, [primaryObs(1, '0-1-10'), primaryObs(2, '0-1-10', { readOnly: true }), replicaObs(3, '0-1-10', { source: 1 })], { decision: decided({ primary: id(2), fenced: [id(1)] }) }),
    primary: id(1),
    evidence: '1 replica replicates from it',
    orphans: [id(2)],
  },
  {
    name: 'pointers naming a dead former primary do not outvote the decided live writer',
    v: view(c3, [deadObs(1), primaryObs(2, '0-2-12'), replicaObs(3, '0-1-10', { ...connecting, source: 1 })], { decision: decided({ primary: id(2) }) }),
    primary: id(2),
    evidence: 'the writable primary Regent decided on',
    orphans: [],
  },
  {
    name: 'pointers naming a dead primary win when nothing was decided (a writable root is not enough)',
    v: view(c3, [deadObs(1), primaryObs(2, '0-2-12'), replicaObs(3, '0-1-10', { ...connecting, source: 1 })]),
    primary: id(1),
    evidence: '1 replica replicates from it',
    orphans: [id(2)],
  },
  {
    name: 'pointers naming the decided primary, dead: it stays the primary',
    v: view(c3, [deadObs(1), replicaObs(2, '0-1-10', connecting), replicaObs(3, '0-1-10', connecting)], { decision: decided({ primary: id(1) }) }),
    primary: id(1),
    evidence: '2 replicas replicate from it',
  },
  {
    name: 'no pointers, two writable roots, the decided one among them: the decided live writer',
    v: view(c3, [primaryObs(1, '0-1-10'), primaryObs(2, '0-1-10'), deadObs(3)], { decision: decided({ primary: id(2) }) }),
    primary: id(2),
    evidence: 'the writable primary Regent decided on',
    orphans: [id(1)],
  },
  // Rung 3: the only writable root.
  {
    name: 'no pointers: the only writable instance that replicates from nobody',
    v: view(c3, [primaryObs(1, '0-1-10'), serverObs(2, '0-1-10'), serverObs(3, '0-1-10')]),
    primary: id(1),
    evidence: 'the only writable instance that replicates from nobody',
    sources: {},
    orphans: [id(2), id(3)],
  },
  {
    name: 'the only writable root beats a decided primary that is dead',
    v: view(c3, [deadObs(1), primaryObs(2, '0-1-10'), serverObs(3, '0-1-10')], { decision: decided({ primary: id(1) }) }),
    primary: id(2),
    evidence: 'the only writable instance that replicates from nobody',
    orphans: [id(3)],
  },
  // Rung 4: the decided primary.
  {
    name: 'no pointers, no writable root: the decided primary, dead',
    v: view(c3, [deadObs(1), serverObs(2, '0-1-10'), serverObs(3, '0-1-10')], { decision: decided({ primary: id(1) }) }),
    primary: id(1),
    evidence: 'the primary Regent decided on',
    orphans: [id(2), id(3)],
  },
  {
    name: 'no pointers, no writable root: the decided primary, read_only',
    v: view(c3, [serverObs(1, '0-1-10'), serverObs(2, '0-1-10'), deadObs(3)], { decision: decided({ primary: id(2) }) }),
    primary: id(2),
    evidence: 'the primary Regent decided on',
    orphans: [id(1)],
  },
  {
    name: 'two writable roots, the decided primary not among them: the decided primary',
    v: view(c3, [deadObs(1), primaryObs(2, '0-1-10'), primaryObs(3, '0-1-10')], { decision: decided({ primary: id(1) }) }),
    primary: id(1),
    evidence: 'the primary Regent decided on',
    orphans: [id(2), id(3)],
  },
  // Rung 5: the only root.
  {
    name: 'nothing decided, no writable root: the only instance that replicates from nobody',
    v: view(c3, [deadObs(1), serverObs(2, '0-1-10'), deadObs(3)]),
    primary: id(2),
    evidence: 'the only instance that replicates from nobody',
    orphans: [],
  },
  // Rung 6: the configured primary.
  {
    name: 'nothing reachable, nothing decided: the configured primary',
    v: view(c3, [deadObs(1), deadObs(2), deadObs(3)]),
    primary: id(1),
    evidence: 'configured primary',
    sources: {},
    orphans: [],
  },
  {
    name: 'two writable roots, nothing decided: the configured primary (the split brain is not settled by guessing)',
    v: view(c3, [deadObs(1), primaryObs(2, '0-1-10'), primaryObs(3, '0-1-10')]),
    primary: id(1),
    evidence: 'configured primary',
    orphans: [id(2), id(3)],
  },
  {
    name: 'several read_only roots, nothing decided: the configured primary',
    v: view(c3, [serverObs(1, '0-1-10'), serverObs(2, '0-1-10'), serverObs(3, '0-1-10')]),
    primary: id(1),
    evidence: 'configured primary',
    orphans: [id(2), id(3)],
  },
  // Sources.
  {
    name: 'a replica of a host outside the cluster: its source is undefined, it is not an orphan, and it makes no pointer',
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10', { sourceHost: '10.0.0.9', sourcePort: 3306 })]),
    primary: id(1),
    evidence: '1 replica replicates from it',
    sources: { [id(2)]: id(1), [id(3)]: undefined },
    orphans: [],
  },
  {
    name: 'unreachable replicas have no known source; a replica with no source host is a root',
    v: view(c3, [primaryObs(1, '0-1-10'), deadObs(2), replicaObs(3, '0-1-10', { sourceHost: '' })]),
    primary: id(1),
    evidence: 'the only writable instance that replicates from nobody',
    sources: {},
    orphans: [id(3)],
  },
];

for (const c of cases) {
  test(`inferTopology: ${c.name}`, () => {
    const t = inferTopology(c.v);
    assert.equal(t.primary, c.primary);
    assert.equal(t.primaryEvidence, c.evidence);
    if (c.sources) assert.deepEqual(Object.fromEntries(t.sources), c.sources);
    if (c.orphans) assert.deepEqual(t.orphans, c.orphans);
  });
}

test('inferTopology: replicas pointing at each other (a cycle) do not hang the walk; it stops where it would repeat', () => {
  const t = inferTopology(view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { source: 3 }), replicaObs(3, '0-1-10', { source: 2 })]));
  assert.equal(t.primary, id(2));
  assert.equal(t.primaryEvidence, '1 replica replicates from it');
  assert.deepEqual(t.orphans, [id(1)]);
});
