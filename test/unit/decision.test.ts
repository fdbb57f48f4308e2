import { test } from 'node:test';
import assert from 'node:assert/strict';
import { antiFlapping, decisionFromState, decisionToState, emptyDecision, inMaintenance, maintenanceSet, type Decision } from '../../src/decision/decision.ts';
import type { ClusterState } from '../../src/coordination/coordinator.ts';
import { decided, id } from '../helpers/views.ts';

// What Regent decided, as pure functions: anti-flapping (safety rule 5), the stored form and
// maintenance windows. `now` is always given.

const AT = Date.UTC(2026, 0, 2, 3, 4, 5);
const recovery = (over: Partial<NonNullable<Decision['lastRecovery']>> = {}): Decision['lastRecovery'] => ({ planId: 'p1', at: AT, kind: 'failover', oldPrimary: id(1), newPrimary: id(2), outcome: 'success', ...over });
const BLOCK = 3600;
/** Without the keys whose value is undefined (stored and rebuilt objects differ only there). */
const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const flapCases: { name: string; d: Decision; now: number; blockedUntil?: number; block?: number }[] = [
  { name: 'no recovery yet: allowed', d: decided(), now: AT },
  { name: 'within the block period after a recovery: blocked until its end', d: decided({ lastRecovery: recovery() }), now: AT + 10_000, blockedUntil: AT + BLOCK * 1000 },
  { name: 'one millisecond before the end of the block period: blocked', d: decided({ lastRecovery: recovery() }), now: AT + BLOCK * 1000 - 1, blockedUntil: AT + BLOCK * 1000 },
  { name: 'at the end of the block period: allowed', d: decided({ lastRecovery: recovery() }), now: AT + BLOCK * 1000 },
  { name: 'after the block period: allowed', d: decided({ lastRecovery: recovery() }), now: AT + BLOCK * 2000 },
  { name: 'acknowledged after the recovery: allowed at once', d: decided({ lastRecovery: recovery(), acknowledgedAt: AT + 5 }), now: AT + 10 },
  { name: 'acknowledged at the very moment of the recovery: allowed', d: decided({ lastRecovery: recovery(), acknowledgedAt: AT }), now: AT + 10 },
  { name: 'acknowledged before the recovery (an earlier one): still blocked', d: decided({ lastRecovery: recovery(), acknowledgedAt: AT - 1 }), now: AT + 10, blockedUntil: AT + BLOCK * 1000 },
  { name: 'a failed recovery counts all the same', d: decided({ lastRecovery: recovery({ outcome: 'failed', newPrimary: undefined }) }), now: AT + 10, blockedUntil: AT + BLOCK * 1000 },
  { name: 'a block period of 0: never blocked', d: decided({ lastRecovery: recovery() }), now: AT, block: 0 },
];

for (const c of flapCases) {
  test(`antiFlapping: ${c.name}`, () => {
    const r = antiFlapping(c.d, c.block ?? BLOCK, c.now);
    assert.equal(r.blockedUntil, c.blockedUntil);
    if (c.blockedUntil === undefined) assert.deepEqual(r, {});
    else assert.match(r.reason!, /run `regent ack c` to allow it$/);
  });
}

test('antiFlapping: the reason names the recovery, when it was, the block period and `regent ack`', () => {
  const r = antiFlapping(decided({ lastRecovery: recovery() }), BLOCK, AT + 1);
  assert.equal(
    r.reason,
    `blocked by anti-flapping: the last recovery (failover ${id(1)} -> ${id(2)}, success) was at 2026-01-02T03:04:05.000Z and the block period is 3600 s; run \`regent ack c\` to allow it`,
  );
  const failed = antiFlapping(decided({ lastRecovery: recovery({ outcome: 'failed', newPrimary: undefined }) }), BLOCK, AT + 1);
  assert.match(failed.reason!, new RegExp(`\\(failover ${id(1)} -> none, failed\\)`));
});

// --- the stored form -------------------------------------------------------------------------

test('decisionToState / decisionFromState: a full decision survives the round trip (except the change under way, which is never stored)', () => {
  const d: Decision = {
    ...decided({
      primary: id(2),
      decidedAt: AT,
      fenced: [id(1)],
      maintenance: { [id(3)]: AT + 60_000 },
      errant: { [id(1)]: '0-1-12' },
      commonPoints: { [id(1)]: '0-1-10' },
      lastRecovery: recovery(),
      acknowledgedAt: AT + 5,
      changing: { kind: 'failover', planId: 'p2', since: AT },
    }),
    lastSwitchover: { planId: 's1', at: AT - 10, oldPrimary: id(3), newPrimary: id(1), writePauseMs: 120 },
  };
  const state = decisionToState(d);
  assert.deepEqual(state, {
    decidedPrimary: id(2),
    decidedAt: AT,
    lastRecovery: recovery(),
    lastSwitchover: d.lastSwitchover,
    acknowledgedAt: AT + 5,
    fenced: [id(1)],
    commonPoints: { [id(1)]: '0-1-10' },
    errant: { [id(1)]: '0-1-12' },
    maintenance: { [id(3)]: AT + 60_000 },
  });
  const back = decisionFromState('c', JSON.parse(JSON.stringify(state)) as ClusterState);
  assert.deepEqual(defined(back), defined({ ...d, changing: undefined }));
});

test('decisionToState: an empty decision stores nothing but undefined fields', () => {
  const state = decisionToState(emptyDecision('c'));
  assert.deepEqual(JSON.parse(JSON.stringify(state)), {});
  assert.deepEqual(defined(decisionFromState('c', {})), defined(emptyDecision('c')));
});

test('decisionFromState: a state written before the rename (`primary`) gives the decided primary', () => {
  assert.equal(decisionFromState('c', { primary: id(1) }).decidedPrimary, id(1));
  assert.equal(decisionFromState('c', { primary: id(1), decidedPrimary: id(2) }).decidedPrimary, id(2), 'the new name wins');
  assert.equal(decisionToState(decisionFromState('c', { primary: id(1) })).primary, undefined, 'the old name is never written');
  assert.equal(decisionToState(decisionFromState('c', { primary: id(1) })).decidedPrimary, id(1));
});

// --- maintenance -----------------------------------------------------------------------------

const m = decided({ maintenance: { [id(1)]: 2000, [id(2)]: 1000, [id(3)]: 500 } });
const maintenanceCases: { name: string; d?: Decision; id: string; now: number; expect: boolean }[] = [
  { name: 'no decision record: not in maintenance', d: undefined, id: id(1), now: 1000, expect: false },
  { name: 'not listed: not in maintenance', d: m, id: id(4), now: 1000, expect: false },
  { name: 'a window that ends later: in maintenance', d: m, id: id(1), now: 1000, expect: true },
  { name: 'a window that ends right now: over', d: m, id: id(2), now: 1000, expect: false },
  { name: 'a window that ended: over', d: m, id: id(3), now: 1000, expect: false },
];
for (const c of maintenanceCases) test(`inMaintenance: ${c.name}`, () => assert.equal(inMaintenance(c.d, c.id, c.now), c.expect));

test('maintenanceSet: only the windows open at `now`', () => {
  assert.deepEqual(maintenanceSet(m, 1000), new Set([id(1)]));
  assert.deepEqual(maintenanceSet(m, 0), new Set([id(1), id(2), id(3)]));
  assert.deepEqual(maintenanceSet(m, 5000), new Set());
  assert.deepEqual(maintenanceSet(undefined, 0), new Set());
});
