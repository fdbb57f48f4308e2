import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterState, Coordinator } from '../../src/coordination/coordinator.ts';
import type { Decision } from '../../src/decision/decision.ts';
import { DecisionRecord, type DecisionChange } from '../../src/decision/record.ts';
import { silentLogger } from '../../src/util/log.ts';
import { id } from '../helpers/views.ts';

// The one owner of what Regent decided about a cluster: each verb changes memory, tells the
// subscribers, and persists through the coordinator (only when this process may write shared
// state), applying the change to the freshly read shared state.

/** An in-memory coordinator: only the cluster state calls are used by the record. */
class FakeCoordinator {
  state: ClusterState = {};
  reads = 0;
  writes = 0;
  /** When set, getClusterState waits for it (a slow shared-state read). */
  readGate?: Promise<void>;
  async getClusterState(_cluster: string): Promise<ClusterState> {
    this.reads++;
    const snapshot = structuredClone(this.state);
    await this.readGate;
    return snapshot;
  }
  async updateClusterState(_cluster: string, update: (s: ClusterState) => ClusterState): Promise<ClusterState> {
    this.writes++;
    this.state = update(structuredClone(this.state));
    return structuredClone(this.state);
  }
}

function rig(opts: { mayPersist?: boolean; state?: ClusterState } = {}) {
  const coord = new FakeCoordinator();
  if (opts.state) coord.state = opts.state;
  let persist = opts.mayPersist ?? true;
  const record = new DecisionRecord('c', coord as unknown as Coordinator, silentLogger, () => persist);
  const heard: { d: Decision; change: DecisionChange }[] = [];
  record.subscribe((d, change) => {
    heard.push({ d, change });
  });
  return { coord, record, heard, setPersist: (p: boolean) => (persist = p) };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const between = (t: number, before: number) => assert.ok(t >= before && t <= Date.now(), `${t} not in [${before}, now]`);

// --- each verb: memory, the change told, what is stored ----------------------------------------

interface VerbCase {
  name: string;
  /** Shared state before (also the record's memory: it follows it first). */
  state?: ClusterState;
  run: (r: DecisionRecord) => Promise<void>;
  change: DecisionChange | ((c: DecisionChange) => void);
  check: (d: Decision, stored: ClusterState, started: number) => void;
  persisted?: boolean;
}

const verbCases: VerbCase[] = [
  {
    name: 'adopt: the primary seen becomes the decided one, now',
    run: (r) => r.adopt(id(1), '2 replicas replicate from it'),
    change: { verb: 'adopt', primary: id(1), evidence: '2 replicas replicate from it' },
    check: (d, s, t) => {
      assert.equal(d.decidedPrimary, id(1));
      between(d.decidedAt, t);
      assert.equal(s.decidedPrimary, id(1));
      assert.equal(s.decidedAt, d.decidedAt);
    },
  },
  {
    name: 'hold: a primary change starts; kept in memory, never stored',
    state: { decidedPrimary: id(1) },
    run: (r) => r.hold('switchover', 'p1'),
    change: { verb: 'hold', kind: 'switchover', planId: 'p1' },
    check: (d, s, t) => {
      assert.equal(d.changing?.kind, 'switchover');
      assert.equal(d.changing?.planId, 'p1');
      between(d.changing!.since, t);
      assert.deepEqual(s, { decidedPrimary: id(1) });
    },
    persisted: false,
  },
  {
    name: 'fence without a change: the instance is fenced, nothing starts',
    state: { decidedPrimary: id(2) },
    run: (r) => r.fence(id(1), 'stray writer'),
    change: { verb: 'fence', instance: id(1), reason: 'stray writer' },
    check: (d, s) => {
      assert.deepEqual([...d.fenced], [id(1)]);
      assert.equal(d.changing, undefined);
      assert.deepEqual(s.fenced, [id(1)]);
      assert.equal(s.decidedPrimary, id(2));
    },
  },
  {
    name: 'fence with a change: fenced and a failover under way at the same moment (the change is not stored)',
    state: { decidedPrimary: id(1) },
    run: (r) => r.fence(id(1), 'dead primary', { kind: 'failover', planId: 'p1' }),
    change: { verb: 'fence', instance: id(1), reason: 'dead primary' },
    check: (d, s, t) => {
      assert.ok(d.fenced.has(id(1)));
      assert.deepEqual({ kind: d.changing?.kind, planId: d.changing?.planId }, { kind: 'failover', planId: 'p1' });
      between(d.changing!.since, t);
      assert.deepEqual(s.fenced, [id(1)]);
      assert.equal('changing' in s, false);
    },
  },
  {
    name: 'promote (failover): new primary, the old one fenced with its common point, the recovery recorded, the acknowledgement cleared',
    state: { decidedPrimary: id(1), fenced: [id(2)], acknowledgedAt: 5 },
    run: async (r) => {
      await r.fence(id(1), 'dead', { kind: 'failover', planId: 'p1' });
      await r.promote(id(2), { kind: 'failover', planId: 'p1', oldPrimary: id(1), commonPoint: '0-1-10' });
    },
    change: { verb: 'promote', primary: id(2), previous: id(1), kind: 'failover' },
    check: (d, s, t) => {
      assert.equal(d.decidedPrimary, id(2));
      between(d.decidedAt, t);
      assert.equal(d.changing, undefined);
      assert.deepEqual([...d.fenced], [id(1)], 'the promoted one is no longer fenced; the old one is');
      assert.equal(d.commonPoints.get(id(1)), '0-1-10');
      assert.deepEqual(d.lastRecovery, { planId: 'p1', at: d.decidedAt, kind: 'failover', oldPrimary: id(1), newPrimary: id(2), outcome: 'success' });
      assert.equal(d.acknowledgedAt, undefined);
      assert.equal(s.decidedPrimary, id(2));
      assert.deepEqual(s.fenced, [id(1)]);
      assert.deepEqual(s.commonPoints, { [id(1)]: '0-1-10' });
      assert.equal(s.acknowledgedAt, undefined);
      assert.equal(s.lastRecovery?.outcome, 'success');
    },
  },
  {
    name: 'promote (switchover): neither primary fenced, the switchover recorded, no recovery, the acknowledgement kept',
    state: { decidedPrimary: id(1), fenced: [id(1)], acknowledgedAt: 5, lastRecovery: { planId: 'old', at: 1, kind: 'failover', oldPrimary: id(3), newPrimary: id(1), outcome: 'success' } },
    run: async (r) => {
      await r.hold('switchover', 's1');
      await r.promote(id(2), { kind: 'switchover', planId: 's1', oldPrimary: id(1), writePauseMs: 87 });
    },
    change: { verb: 'promote', primary: id(2), previous: id(1), kind: 'switchover' },
    check: (d, s) => {
      assert.equal(d.decidedPrimary, id(2));
      assert.equal(d.changing, undefined);
      assert.deepEqual([...d.fenced], []);
      assert.deepEqual(d.lastSwitchover, { planId: 's1', at: d.decidedAt, oldPrimary: id(1), newPrimary: id(2), writePauseMs: 87 });
      assert.equal(d.lastRecovery?.planId, 'old');
      assert.equal(d.acknowledgedAt, 5);
      assert.equal(s.fenced, undefined);
      assert.equal(s.lastSwitchover?.writePauseMs, 87);
    },
  },
  {
    name: 'rollBack: the change ends, what it fenced is unfenced, writers follow the given primary',
    state: { decidedPrimary: id(1), fenced: [id(3)] },
    run: async (r) => {
      await r.fence(id(1), 'switchover', { kind: 'switchover', planId: 's1' });
      await r.rollBack('target did not catch up', { primary: id(1), unfence: [id(1)] });
    },
    change: { verb: 'roll-back', primary: id(1), reason: 'target did not catch up' },
    check: (d, s) => {
      assert.equal(d.changing, undefined);
      assert.equal(d.decidedPrimary, id(1));
      assert.deepEqual([...d.fenced], [id(3)], 'only what the change fenced is unfenced');
      assert.deepEqual(s.fenced, [id(3)]);
    },
  },
  {
    name: 'rollBack without a primary keeps the decided one',
    state: { decidedPrimary: id(2) },
    run: (r) => r.rollBack('aborted'),
    change: { verb: 'roll-back', primary: undefined, reason: 'aborted' },
    check: (d, s) => {
      assert.equal(d.decidedPrimary, id(2));
      assert.equal(s.decidedPrimary, id(2));
    },
  },
  {
    name: 'failed before the promotion: writers follow the decided primary again, what the failover fenced is unfenced, it counts as a recovery',
    state: { decidedPrimary: id(1), acknowledgedAt: 5 },
    run: async (r) => {
      await r.fence(id(1), 'dead', { kind: 'failover', planId: 'p1' });
      await r.failed({ planId: 'p1', oldPrimary: id(1), unfence: [id(1)] });
    },
    change: { verb: 'recovery-failed', planId: 'p1' },
    check: (d, s, t) => {
      assert.equal(d.decidedPrimary, id(1));
      assert.equal(d.changing, undefined);
      assert.deepEqual([...d.fenced], []);
      assert.equal(d.lastRecovery?.outcome, 'failed');
      assert.equal(d.lastRecovery?.newPrimary, undefined);
      between(d.lastRecovery!.at, t);
      assert.equal(s.lastRecovery?.outcome, 'failed');
      assert.equal(s.decidedPrimary, id(1));
    },
  },
  {
    name: 'failed after the promotion: the promoted one takes writes, the old one stays fenced with its common point',
    state: { decidedPrimary: id(1), fenced: [id(2)] },
    run: (r) => r.failed({ planId: 'p1', oldPrimary: id(1), promoted: id(2), commonPoint: '0-1-10' }),
    change: { verb: 'recovery-failed', planId: 'p1' },
    check: (d, s, t) => {
      assert.equal(d.decidedPrimary, id(2));
      between(d.decidedAt, t);
      assert.deepEqual([...d.fenced], [id(1)]);
      assert.equal(d.commonPoints.get(id(1)), '0-1-10');
      assert.deepEqual({ outcome: d.lastRecovery?.outcome, newPrimary: d.lastRecovery?.newPrimary }, { outcome: 'failed', newPrimary: id(2) });
      assert.equal(s.decidedPrimary, id(2));
    },
  },
  {
    name: 'rejoined: no longer fenced, nothing errant, no common point',
    state: { decidedPrimary: id(2), fenced: [id(1), id(3)], errant: { [id(1)]: '0-1-12', [id(3)]: '0-3-1' }, commonPoints: { [id(1)]: '0-1-10' } },
    run: (r) => r.rejoined(id(1)),
    change: { verb: 'rejoined', instance: id(1) },
    check: (d, s) => {
      assert.deepEqual([...d.fenced], [id(3)]);
      assert.deepEqual([...d.errant.keys()], [id(3)]);
      assert.equal(d.commonPoints.size, 0);
      assert.deepEqual(s.fenced, [id(3)]);
      assert.equal(s.commonPoints, undefined);
    },
  },
  {
    name: 'noteErrant: the errant set is recorded',
    run: (r) => r.noteErrant(id(2), '0-2-5'),
    change: { verb: 'errant', instance: id(2), errant: '0-2-5' },
    check: (d, s) => {
      assert.equal(d.errant.get(id(2)), '0-2-5');
      assert.deepEqual(s.errant, { [id(2)]: '0-2-5' });
    },
  },
  {
    name: 'noteErrant(undefined): the instance has none any more',
    state: { errant: { [id(2)]: '0-2-5' } },
    run: (r) => r.noteErrant(id(2), undefined),
    change: { verb: 'errant', instance: id(2), errant: undefined },
    check: (d, s) => {
      assert.equal(d.errant.size, 0);
      assert.equal(s.errant, undefined);
    },
  },
  {
    name: 'setMaintenance: until a time',
    run: (r) => r.setMaintenance(id(3), 99_000),
    change: { verb: 'maintenance', instance: id(3), until: 99_000 },
    check: (d, s) => {
      assert.equal(d.maintenance.get(id(3)), 99_000);
      assert.deepEqual(s.maintenance, { [id(3)]: 99_000 });
    },
  },
  {
    name: 'setMaintenance(undefined): out of maintenance',
    state: { maintenance: { [id(3)]: 99_000 } },
    run: (r) => r.setMaintenance(id(3), undefined),
    change: { verb: 'maintenance', instance: id(3), until: undefined },
    check: (d, s) => {
      assert.equal(d.maintenance.size, 0);
      assert.equal(s.maintenance, undefined);
    },
  },
  {
    name: 'acknowledge: the last recovery is acknowledged now',
    state: { lastRecovery: { planId: 'p1', at: 1, kind: 'failover', oldPrimary: id(1), newPrimary: id(2), outcome: 'success' } },
    run: (r) => r.acknowledge(),
    change: { verb: 'acknowledge' },
    check: (d, s, t) => {
      between(d.acknowledgedAt!, t);
      assert.equal(s.acknowledgedAt, d.acknowledgedAt);
    },
  },
];

for (const c of verbCases) {
  test(`DecisionRecord ${c.name}`, async () => {
    const { coord, record, heard } = rig({ state: structuredClone(c.state ?? {}) });
    await record.follow();
    heard.length = 0;
    const writes = coord.writes;
    const started = Date.now();
    await c.run(record);
    const last = heard.at(-1);
    assert.ok(last, 'subscribers heard of it');
    // Subscribers hear before the decision is stored; what is stored is the same decision.
    assert.deepEqual(defined(last.d), defined(record.snapshot), 'subscribers get the new decision');
    if (typeof c.change === 'function') c.change(last.change);
    else assert.deepEqual(last.change, c.change);
    c.check(record.snapshot, coord.state, started);
    if (c.persisted === false) assert.equal(coord.writes, writes, 'not stored');
    else assert.ok(coord.writes > writes, 'stored');
  });
}

// --- persistence rules ------------------------------------------------------------------------

test('DecisionRecord: nothing is stored when this process may not persist (a follower, a proxy); memory changes all the same', async () => {
  const { coord, record, heard } = rig({ mayPersist: false });
  await record.adopt(id(1), 'e');
  await record.fence(id(1), 'r', { kind: 'failover', planId: 'p' });
  await record.promote(id(2), { kind: 'failover', planId: 'p', oldPrimary: id(1), commonPoint: '0-1-1' });
  await record.setMaintenance(id(3), 5);
  await record.acknowledge();
  assert.equal(coord.writes, 0);
  assert.deepEqual(coord.state, {});
  assert.equal(record.snapshot.decidedPrimary, id(2));
  assert.equal(heard.length, 5);
});

test('DecisionRecord: persisting applies the change to the freshly read state: what a CLI changed meanwhile survives', async () => {
  const { coord, record } = rig();
  await record.adopt(id(1), 'e');
  // A CLI command puts n3 in maintenance and acknowledges, behind the record's back.
  coord.state = { ...coord.state, maintenance: { [id(3)]: 77 }, acknowledgedAt: 42 };
  await record.fence(id(2), 'stray');
  assert.deepEqual(coord.state.maintenance, { [id(3)]: 77 }, 'not overwritten by memory');
  assert.equal(coord.state.acknowledgedAt, 42);
  assert.deepEqual(coord.state.fenced, [id(2)]);
  assert.equal(record.snapshot.maintenance.get(id(3)), 77, 'memory takes on what was stored');
  assert.equal(record.snapshot.acknowledgedAt, 42);
});

test('DecisionRecord: a change under way survives persisting (it is never in the stored state)', async () => {
  const { record } = rig();
  await record.fence(id(1), 'dead', { kind: 'failover', planId: 'p1' });
  await record.noteErrant(id(3), '0-3-1');
  assert.equal(record.snapshot.changing?.planId, 'p1');
});

test('DecisionRecord: noteErrant with the value already known changes nothing, tells nobody, stores nothing', async () => {
  const { coord, record, heard } = rig();
  await record.noteErrant(id(2), '0-2-5');
  const before = record.snapshot;
  const writes = coord.writes;
  heard.length = 0;
  await record.noteErrant(id(2), '0-2-5');
  assert.equal(record.snapshot, before);
  assert.equal(heard.length, 0);
  assert.equal(coord.writes, writes);
  await record.noteErrant(id(4), undefined);
  assert.equal(heard.length, 0, 'removing what is not there is no change either');
});

test('DecisionRecord: snapshots are never mutated; each change makes a new one', async () => {
  const { record } = rig();
  const before = record.snapshot;
  await record.fence(id(1), 'r');
  assert.notEqual(record.snapshot, before);
  assert.equal(before.fenced.size, 0);
});

// --- subscribers ------------------------------------------------------------------------------

test('DecisionRecord: subscribers are awaited before the verb goes on (a fence closes connections before the promotion)', async () => {
  const { coord, record } = rig();
  const gate = deferred();
  let closed = false;
  record.subscribe(async (_d, change) => {
    if (change.verb !== 'fence') return;
    await gate.promise;
    closed = true;
  });
  let done = false;
  const fencing = record.fence(id(1), 'r').then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'the verb waits for the subscriber');
  assert.equal(coord.writes, 0, 'and stores only after every subscriber is done');
  gate.resolve();
  await fencing;
  assert.equal(closed, true);
  assert.equal(coord.writes, 1);
});

test('DecisionRecord: a subscriber that throws does not stop the verb nor the other subscribers', async () => {
  const { coord, record, heard } = rig();
  record.subscribe(() => {
    throw new Error('router exploded');
  });
  record.subscribe(async () => {
    throw new Error('async too');
  });
  const later: string[] = [];
  record.subscribe((_d, c) => {
    later.push(c.verb);
  });
  await record.adopt(id(1), 'e');
  assert.equal(record.snapshot.decidedPrimary, id(1));
  assert.equal(coord.state.decidedPrimary, id(1));
  assert.deepEqual(later, ['adopt']);
  assert.equal(heard.length, 1);
});

test('DecisionRecord: an unsubscribed listener hears nothing more', async () => {
  const { record } = rig();
  const got: string[] = [];
  const off = record.subscribe((_d, c) => {
    got.push(c.verb);
  });
  await record.acknowledge();
  off();
  await record.acknowledge();
  assert.deepEqual(got, ['acknowledge']);
});

// --- follow -----------------------------------------------------------------------------------

test('DecisionRecord follow: takes the shared state, keeping the change under way', async () => {
  const { coord, record } = rig({ mayPersist: false });
  await record.hold('failover', 'p9');
  coord.state = { decidedPrimary: id(2), decidedAt: 123, fenced: [id(1)], maintenance: { [id(3)]: 9 }, errant: { [id(1)]: '0-1-12' }, acknowledgedAt: 7 };
  await record.follow();
  const d = record.snapshot;
  assert.deepEqual(
    { p: d.decidedPrimary, at: d.decidedAt, fenced: [...d.fenced], m: [...d.maintenance], e: [...d.errant], ack: d.acknowledgedAt, changing: d.changing?.planId },
    { p: id(2), at: 123, fenced: [id(1)], m: [[id(3), 9]], e: [[id(1), '0-1-12']], ack: 7, changing: 'p9' },
  );
});

const followCases: { name: string; after: ClusterState; notified: boolean }[] = [
  { name: 'the decided primary changed: subscribers hear of it', after: { decidedPrimary: id(2), decidedAt: 10 }, notified: true },
  { name: 'the decision time changed: subscribers hear of it', after: { decidedPrimary: id(1), decidedAt: 11 }, notified: true },
  { name: 'the fenced set changed: subscribers hear of it', after: { decidedPrimary: id(1), decidedAt: 10, fenced: [id(3)] }, notified: true },
  { name: 'maintenance changed: subscribers hear of it', after: { decidedPrimary: id(1), decidedAt: 10, maintenance: { [id(3)]: 5 } }, notified: true },
  { name: 'only an acknowledgement changed: nothing routing-relevant, nobody told', after: { decidedPrimary: id(1), decidedAt: 10, acknowledgedAt: 99 }, notified: false },
  { name: 'only errant sets changed: nobody told', after: { decidedPrimary: id(1), decidedAt: 10, errant: { [id(2)]: '0-2-1' } }, notified: false },
  { name: 'nothing changed: nobody told', after: { decidedPrimary: id(1), decidedAt: 10 }, notified: false },
];

for (const c of followCases) {
  test(`DecisionRecord follow: ${c.name}`, async () => {
    const { coord, record, heard } = rig({ state: { decidedPrimary: id(1), decidedAt: 10 } });
    await record.follow();
    heard.length = 0;
    coord.state = c.after;
    await record.follow();
    assert.equal(heard.length, c.notified ? 1 : 0);
    if (c.notified) assert.deepEqual(heard[0]!.change, { verb: 'follow' });
    assert.equal(record.snapshot.acknowledgedAt, c.after.acknowledgedAt, 'memory follows in every case');
  });
}

test('DecisionRecord follow: a read that a local change overtook is ignored', async () => {
  const { coord, record } = rig({ mayPersist: false, state: { decidedPrimary: id(1), decidedAt: 10 } });
  await record.follow();
  const gate = deferred();
  coord.readGate = gate.promise;
  // The read starts while the shared state still says n1 ...
  const following = record.follow();
  await new Promise((r) => setImmediate(r));
  // ... and a local promotion happens before it returns.
  await record.promote(id(2), { kind: 'failover', planId: 'p1', oldPrimary: id(1), commonPoint: '0-1-10' });
  gate.resolve();
  await following;
  assert.equal(record.snapshot.decidedPrimary, id(2), 'the stale read did not undo the promotion');
  assert.ok(record.snapshot.fenced.has(id(1)));
  // The next read (not overtaken) is taken as usual.
  coord.readGate = undefined;
  coord.state = { decidedPrimary: id(3), decidedAt: 20 };
  await record.follow();
  assert.equal(record.snapshot.decidedPrimary, id(3));
});
