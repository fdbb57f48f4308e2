import { test } from 'node:test';
import assert from 'node:assert/strict';
import { primaryLeaving } from '../../src/router/sql/route.ts';

/**
 * When the SQL endpoint's sessions stop using their primary connection. A primary that misses a
 * probe under load makes the routing table hold writes for a moment; that must not end open
 * transactions (the L4 writer does not close its connections then either). Only a primary that is
 * being replaced does.
 */

const none = { fenced: new Set<string>(), changing: false };

test('the writer moved to another instance: the primary connection goes', () => {
  assert.equal(primaryLeaving('a:1', { mode: 'route', target: 'b:1' }, none), true);
  assert.equal(primaryLeaving('a:1', { mode: 'route', target: 'a:1' }, none), false);
});

test('writes held for a moment (unreachable for a probe, read_only, nothing decided): the connection stays', () => {
  for (const reason of ['primary a:1 unreachable', 'primary a:1 is read_only', 'no primary decided yet'])
    assert.equal(primaryLeaving('a:1', { mode: 'hold', reason }, none), false, reason);
});

test('the primary is being replaced (fenced, or a failover or switchover under way): the connection goes', () => {
  assert.equal(primaryLeaving('a:1', { mode: 'hold', reason: 'primary a:1 is fenced' }, { fenced: new Set(['a:1']), changing: false }), true);
  assert.equal(primaryLeaving('a:1', { mode: 'hold', reason: 'primary change under way' }, { fenced: new Set(), changing: true }), true);
  // Another instance fenced long ago says nothing about this one.
  assert.equal(primaryLeaving('a:1', { mode: 'hold', reason: 'primary a:1 unreachable' }, { fenced: new Set(['c:1']), changing: false }), false);
});
