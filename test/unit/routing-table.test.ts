import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideReader, decideWriter, pickReader, routingTable, type RouteDecision, type RoutingInput, type RoutingTable } from '../../src/router/routing-table.ts';
import type { InstanceObservation } from '../../src/monitor/observation.ts';
import { cluster, deadObs, id, primaryObs, replicaObs } from '../helpers/views.ts';

// The router's decisions, pure: where the writer endpoint sends new connections (safety rule 2,
// at most one writable primary behind it), which replicas take readers and why the others do not.

const c3 = cluster(3);
const c4 = cluster(4);
const settings = c3.router;

function input(obs: InstanceObservation[], opts: Partial<Omit<RoutingInput, 'observations'>> & { n?: number } = {}): RoutingInput {
  const { n, ...rest } = opts;
  return {
    decidedPrimary: id(1),
    changing: false,
    observations: new Map(obs.map((o) => [o.id, o])),
    instances: (n === 4 ? c4 : c3).instances.map((i) => i.id),
    maintenance: new Set(),
    settings,
    ...rest,
  };
}

const healthy = () => [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')];

// --- the writer -------------------------------------------------------------------------------

const writerCases: { name: string; input: RoutingInput; expect: RoutingTable['writer'] }[] = [
  { name: 'no primary decided: hold', input: input(healthy(), { decidedPrimary: undefined }), expect: { mode: 'hold', reason: 'no primary decided yet' } },
  { name: 'a primary change under way: hold even though the primary is writable', input: input(healthy(), { changing: true }), expect: { mode: 'hold', reason: 'primary change under way' } },
  {
    name: 'the decided primary is fenced: hold even though it is writable',
    input: input(healthy(), { fenced: new Set([id(1)]) }),
    expect: { mode: 'hold', reason: `primary ${id(1)} is fenced` },
  },
  {
    name: 'fenced wins over "just promoted"',
    input: input([primaryObs(1, '0-1-10', { at: 500 }), replicaObs(2, '0-1-10')], { fenced: new Set([id(1)]), decidedAt: 900 }),
    expect: { mode: 'hold', reason: `primary ${id(1)} is fenced` },
  },
  {
    name: 'just promoted: a read_only observation older than the decision does not hold writes',
    input: input([primaryObs(1, '0-1-10', { readOnly: true, at: 500 }), replicaObs(2, '0-1-10')], { decidedAt: 900 }),
    expect: { mode: 'route', target: id(1) },
  },
  {
    name: 'just promoted: an unreachable observation older than the decision does not hold writes',
    input: input([deadObs(1, 'refused', 500), replicaObs(2, '0-1-10')], { decidedAt: 900 }),
    expect: { mode: 'route', target: id(1) },
  },
  {
    name: 'an observation taken at the very moment of the decision counts: read_only holds',
    input: input([primaryObs(1, '0-1-10', { readOnly: true, at: 900 }), replicaObs(2, '0-1-10')], { decidedAt: 900 }),
    expect: { mode: 'hold', reason: `primary ${id(1)} is read_only` },
  },
  {
    name: 'the decided primary is unreachable (observed after the decision): hold',
    input: input([deadObs(1, 'timeout', 1000), replicaObs(2, '0-1-10')], { decidedAt: 900 }),
    expect: { mode: 'hold', reason: `primary ${id(1)} unreachable` },
  },
  {
    name: 'the decided primary was never observed: hold as unreachable',
    input: input([replicaObs(2, '0-1-10')]),
    expect: { mode: 'hold', reason: `primary ${id(1)} unreachable` },
  },
  {
    name: 'the decided primary is read_only: hold',
    input: input([primaryObs(1, '0-1-10', { readOnly: true }), replicaObs(2, '0-1-10')]),
    expect: { mode: 'hold', reason: `primary ${id(1)} is read_only` },
  },
  { name: 'the decided primary is reachable and writable: route to it', input: input(healthy()), expect: { mode: 'route', target: id(1) } },
  {
    name: 'another writable instance is never the writer target: only the decided primary is',
    input: input([primaryObs(1, '0-1-10', { readOnly: true }), primaryObs(2, '0-1-10'), replicaObs(3, '0-1-10')]),
    expect: { mode: 'hold', reason: `primary ${id(1)} is read_only` },
  },
];

for (const c of writerCases) {
  test(`routing writer: ${c.name}`, () => {
    const t = routingTable(c.input);
    assert.deepEqual(t.writer, c.expect);
    assert.deepEqual(decideWriter(t), c.expect.mode === 'route' ? { target: c.expect.target } : { hold: c.expect.reason });
  });
}

// --- the readers ------------------------------------------------------------------------------

const readerCases: { name: string; input: RoutingInput; readers: string[]; excluded: Record<string, string> }[] = [
  { name: 'healthy replicas take readers, in config order; the primary is not a reader', input: input([replicaObs(3, '0-1-10'), primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10')]), readers: [id(2), id(3)], excluded: {} },
  { name: 'a replica in maintenance is excluded however healthy', input: input(healthy(), { maintenance: new Set([id(2)]) }), readers: [id(3)], excluded: { [id(2)]: 'in maintenance' } },
  { name: 'an unreachable replica is excluded', input: input([primaryObs(1, '0-1-10'), deadObs(2), replicaObs(3, '0-1-10')]), readers: [id(3)], excluded: { [id(2)]: 'unreachable' } },
  { name: 'a replica never observed is excluded as unreachable', input: input([primaryObs(1, '0-1-10'), replicaObs(3, '0-1-10')]), readers: [id(3)], excluded: { [id(2)]: 'unreachable' } },
  {
    name: 'an instance replicating from nobody is not a replica',
    input: input([primaryObs(1, '0-1-10'), primaryObs(2, '0-1-10', { readOnly: true }), replicaObs(3, '0-1-10')]),
    readers: [id(3)],
    excluded: { [id(2)]: 'not a replica' },
  },
  {
    name: 'an IO thread that is reconnecting: replication not running',
    input: input([primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { ioThread: 'connecting' }), replicaObs(3, '0-1-10')]),
    readers: [id(3)],
    excluded: { [id(2)]: 'replication not running (IO connecting, SQL yes)' },
  },
  {
    name: 'a stopped SQL thread: replication not running',
    input: input([primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { sqlThread: false }), replicaObs(3, '0-1-10')]),
    readers: [id(3)],
    excluded: { [id(2)]: 'replication not running (IO yes, SQL no)' },
  },
  {
    name: 'unknown lag (Seconds_Behind_Master NULL) is excluded',
    input: input([primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { secondsBehind: null }), replicaObs(3, '0-1-10')]),
    readers: [id(3)],
    excluded: { [id(2)]: 'lag unknown' },
  },
  {
    name: 'lag over router.maxReplicaLagSeconds is excluded; lag equal to it is not',
    input: input([primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { secondsBehind: 11 }), replicaObs(3, '0-1-10', { secondsBehind: 10 })]),
    readers: [id(3)],
    excluded: { [id(2)]: 'lag 11s > 10s' },
  },
  {
    name: 'a replica of a host outside the cluster is excluded',
    input: input([primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { sourceHost: '10.0.0.9', sourcePort: 3306 }), replicaObs(3, '0-1-10')]),
    readers: [id(3)],
    excluded: { [id(2)]: 'replicates from outside the cluster' },
  },
  {
    name: 'a replica of another replica of the cluster (a chain) takes readers',
    input: input([primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10', { source: 2 })]),
    readers: [id(2), id(3)],
    excluded: {},
  },
  {
    name: 'every exclusion at once, each with its own reason',
    input: input([primaryObs(1, '0-1-10'), deadObs(2), replicaObs(3, '0-1-10', { secondsBehind: 60 }), replicaObs(4, '0-1-10')], { n: 4, maintenance: new Set([id(4)]) }),
    readers: [],
    excluded: { [id(2)]: 'unreachable', [id(3)]: 'lag 60s > 10s', [id(4)]: 'in maintenance' },
  },
];

for (const c of readerCases) {
  test(`routing readers: ${c.name}`, () => {
    const t = routingTable(c.input);
    assert.deepEqual(t.readers, c.readers);
    assert.deepEqual(t.excluded, c.excluded);
  });
}

// --- reader fallback to the primary -----------------------------------------------------------

const noReaders = () => [primaryObs(1, '0-1-10'), deadObs(2), deadObs(3)];
const fallbackCases: { name: string; input: RoutingInput; expect: string | undefined }[] = [
  { name: 'no reader, the writer routes and the settings allow it: readers go to the primary', input: input(noReaders()), expect: id(1) },
  { name: 'no reader but readerFallbackToPrimary is off: no fallback', input: input(noReaders(), { settings: { ...settings, readerFallbackToPrimary: false } }), expect: undefined },
  { name: 'no reader and the writer is held: no fallback (the primary is in doubt)', input: input(noReaders(), { changing: true }), expect: undefined },
  { name: 'no reader and the primary is fenced: no fallback', input: input(noReaders(), { fenced: new Set([id(1)]) }), expect: undefined },
  { name: 'a reader exists: no fallback', input: input([primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), deadObs(3)]), expect: undefined },
];

for (const c of fallbackCases) {
  test(`routing reader fallback: ${c.name}`, () => {
    assert.equal(routingTable(c.input).readerFallback, c.expect);
  });
}

// --- decideReader: a backend, hold or refuse --------------------------------------------------

const table = (t: Partial<RoutingTable>): RoutingTable => ({ writer: { mode: 'route', target: id(1) }, readers: [], excluded: {}, ...t });

const readerDecisions: { name: string; table: RoutingTable; expect: RouteDecision }[] = [
  { name: 'a reader is available: it gets the connection', table: table({ readers: [id(2)] }), expect: { target: id(2) } },
  { name: 'only the fallback: the primary gets the connection', table: table({ readerFallback: id(1) }), expect: { target: id(1) } },
  { name: 'no backend while the writer is held: hold (a primary may come back)', table: table({ writer: { mode: 'hold', reason: 'primary change under way' } }), expect: { hold: 'no backend for readers' } },
  { name: 'no backend while the writer routes: refuse (nothing will change by waiting)', table: table({}), expect: { refuse: 'no backend for readers' } },
];

for (const c of readerDecisions) {
  test(`decideReader: ${c.name}`, () => {
    assert.deepEqual(decideReader(c.table, 'round-robin', 0, new Map()).decision, c.expect);
    assert.deepEqual(decideReader(c.table, 'least-connections', 0, new Map()).decision, c.expect);
  });
}

// --- pickReader: round-robin and least-connections --------------------------------------------

test('pickReader round-robin: the cursor walks the readers in order and wraps', () => {
  const t = table({ readers: [id(2), id(3), id(4)] });
  let cursor = 0;
  const picked: string[] = [];
  for (let i = 0; i < 7; i++) {
    const r = pickReader(t, 'round-robin', cursor, new Map());
    assert.equal(r.cursor, cursor + 1);
    cursor = r.cursor;
    picked.push(r.target!);
  }
  assert.deepEqual(picked, [id(2), id(3), id(4), id(2), id(3), id(4), id(2)]);
});

const leastCases: { name: string; readers: string[]; active: [string, number][]; expect: string }[] = [
  { name: 'the reader with the fewest open connections', readers: [id(2), id(3), id(4)], active: [[id(2), 5], [id(3), 1], [id(4), 3]], expect: id(3) },
  { name: 'a reader without a count has none open', readers: [id(2), id(3)], active: [[id(2), 2]], expect: id(3) },
  { name: 'a tie goes to the first in config order', readers: [id(2), id(3), id(4)], active: [[id(2), 4], [id(3), 2], [id(4), 2]], expect: id(3) },
  { name: 'all idle: the first reader', readers: [id(2), id(3)], active: [], expect: id(2) },
];

for (const c of leastCases) {
  test(`pickReader least-connections: ${c.name}`, () => {
    const r = pickReader(table({ readers: c.readers }), 'least-connections', 7, new Map(c.active));
    assert.equal(r.target, c.expect);
    assert.equal(r.cursor, 7, 'least-connections leaves the round-robin cursor alone');
  });
}

test('pickReader: the fallback is the whole pool when there is no reader; nothing at all leaves the cursor alone', () => {
  assert.deepEqual(pickReader(table({ readerFallback: id(1) }), 'round-robin', 3, new Map()), { target: id(1), cursor: 4 });
  assert.deepEqual(pickReader(table({ readerFallback: id(1) }), 'least-connections', 3, new Map([[id(1), 9]])), { target: id(1), cursor: 3 });
  assert.deepEqual(pickReader(table({}), 'round-robin', 3, new Map()), { cursor: 3 });
});

test('pickReader: readers win over the fallback', () => {
  assert.equal(pickReader(table({ readers: [id(2)], readerFallback: id(1) }), 'least-connections', 0, new Map([[id(2), 100]])).target, id(2));
});
