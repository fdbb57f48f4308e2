import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCounters, checkReadYourWrites, type CounterTally, type ReadBack } from '../../chaos/invariants.ts';

const counters = (entries: [number, number][]) => new Map(entries);

test('counters: the final value must lie between acknowledged and acknowledged + unknown increments', () => {
  const tallies: CounterTally[] = [
    { writer: 1, acked: 10, unknown: 0 },
    { writer: 2, acked: 7, unknown: 2 },
  ];
  const cases: { name: string; final: [number, number][]; expect: string[] }[] = [
    { name: 'exactly the acknowledged ones', final: [[1, 10], [2, 7]], expect: [] },
    { name: 'unknown increments that did commit', final: [[1, 10], [2, 9]], expect: [] },
    { name: 'one unknown increment committed', final: [[1, 10], [2, 8]], expect: [] },
    { name: 'an acknowledged increment applied twice', final: [[1, 11], [2, 7]], expect: ['write-applied-twice'] },
    { name: 'more than every unknown increment', final: [[1, 10], [2, 10]], expect: ['write-applied-twice'] },
    { name: 'an acknowledged increment lost', final: [[1, 9], [2, 7]], expect: ['acknowledged-increment-lost'] },
    { name: 'a counter row missing altogether', final: [[2, 7]], expect: ['acknowledged-increment-lost'] },
    { name: 'one duplicated, one lost', final: [[1, 12], [2, 6]], expect: ['write-applied-twice', 'acknowledged-increment-lost'] },
  ];
  for (const c of cases) {
    const v = checkCounters(tallies, [{ name: 'node1', counters: counters(c.final) }]);
    assert.deepEqual(v.map((x) => x.invariant), c.expect, c.name);
  }
});

test('counters: every node is judged, and a node without counters (L4 mode) is skipped', () => {
  const tallies: CounterTally[] = [{ writer: 1, acked: 3, unknown: 0 }];
  const v = checkCounters(tallies, [
    { name: 'node1', counters: counters([[1, 3]]) },
    { name: 'node2', counters: counters([[1, 2]]) },
    { name: 'node3' },
  ]);
  assert.equal(v.length, 1);
  assert.equal(v[0]!.invariant, 'acknowledged-increment-lost');
  assert.match(v[0]!.detail, /node2 writer 1: n=2 < 3 acked/);
});

test('read-your-writes: a read-back must see the session row and at least the acknowledged increments', () => {
  const base: ReadBack = { writer: 1, at: 1000, id: 42, minExpected: 5, maxExpected: 6, seen: 5, rowSeen: true, serverId: 2, writeServerId: 1 };
  const cases: { name: string; read: Partial<ReadBack>; expect: string[] }[] = [
    { name: 'saw exactly its writes (on a replica)', read: {}, expect: [] },
    { name: 'saw an unknown increment too', read: { seen: 6 }, expect: [] },
    { name: 'read on the primary', read: { serverId: 1 }, expect: [] },
    { name: 'counter behind its own acknowledged write', read: { seen: 4 }, expect: ['read-missed-own-write'] },
    { name: 'the row it just inserted not visible', read: { rowSeen: false, writeServerId: null }, expect: ['read-missed-own-write'] },
    { name: 'no counter row at all', read: { seen: null }, expect: ['read-missed-own-write'] },
    { name: 'more increments than were ever sent', read: { seen: 7 }, expect: ['write-applied-twice'] },
  ];
  for (const c of cases) {
    const v = checkReadYourWrites([{ ...base, ...c.read }]);
    assert.deepEqual(v.map((x) => x.invariant), c.expect, c.name);
  }
});

test('read-your-writes: misses are counted and named', () => {
  const reads: ReadBack[] = [1, 2, 3].map((i) => ({ writer: i, at: i, id: i, minExpected: 2, maxExpected: 2, seen: i === 2 ? 2 : 1, rowSeen: true, serverId: 3, writeServerId: 1 }));
  const v = checkReadYourWrites(reads);
  assert.equal(v.length, 1);
  assert.match(v[0]!.detail, /^2 read-back\(s\) missed/);
  assert.match(v[0]!.detail, /writer 1 at 1 on server 3: counter 1 < 2 acked/);
});
