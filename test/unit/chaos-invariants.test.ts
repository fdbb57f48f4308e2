import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkInvariants, wasPrimaryDuring, type FinalNode, type PrimaryEpoch } from '../../chaos/invariants.ts';

const epochs: PrimaryEpoch[] = [
  { serverId: 1, from: 0, fencedAt: 1000 },
  { serverId: 2, from: 1100 },
];

function node(name: string, serverId: number, rows: [number, number][], checksum = 'x'): FinalNode {
  return { name, serverId, ids: new Set(rows.map(([id]) => id)), rowServer: new Map(rows), checksum };
}

test('a write belongs to the primary of its moment, with the hold window in between', () => {
  assert.ok(wasPrimaryDuring(epochs, 1, 500, 600, 0));
  assert.ok(wasPrimaryDuring(epochs, 2, 1050, 1150, 0), 'held during the change, executed by the new primary');
  assert.ok(!wasPrimaryDuring(epochs, 1, 1050, 1150, 0), 'the old primary after its fence');
  assert.ok(!wasPrimaryDuring(epochs, 2, 500, 600, 0));
});

test('clean run: no violations', () => {
  const rows: [number, number][] = [
    [1, 1],
    [2, 2],
  ];
  const v = checkInvariants({
    acked: [
      { id: 1, sentAt: 100, ackAt: 110 },
      { id: 2, sentAt: 1200, ackAt: 1210 },
    ],
    samples: [{ sentAt: 1300, ackAt: 1301, serverId: 2, readOnly: false }],
    epochs,
    final: [node('a', 1, rows), node('b', 2, rows)],
    converged: true,
    convergenceDetail: '',
  });
  assert.deepEqual(v, []);
});

test('a lost acknowledged write, a write after the fence, a stray endpoint answer and diverged data are all caught', () => {
  const v = checkInvariants({
    acked: [
      { id: 1, sentAt: 100, ackAt: 110 },
      { id: 2, sentAt: 1200, ackAt: 1210 },
      { id: 3, sentAt: 1300, ackAt: 1310 },
    ],
    samples: [{ sentAt: 1500, ackAt: 1501, serverId: 1, readOnly: false }],
    epochs,
    final: [
      node('a', 1, [
        [1, 1],
        [2, 1],
      ], 'x'),
      node('b', 2, [
        [1, 1],
        [2, 1],
      ], 'y'),
    ],
    converged: true,
    convergenceDetail: '',
  });
  const kinds = v.map((x) => x.invariant).sort();
  assert.deepEqual(kinds, ['acknowledged-write-lost', 'acknowledged-write-lost', 'checksum-mismatch', 'two-writers-behind-endpoint', 'write-on-non-primary']);
});

test('no convergence is a violation', () => {
  const v = checkInvariants({ acked: [], samples: [], epochs, final: [], converged: false, convergenceDetail: 'node3 not replicating' });
  assert.deepEqual(v.map((x) => x.invariant), ['no-convergence']);
});
