import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCluster } from '../../src/analysis/analyze.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import { mayAdopt } from '../../src/manager/cluster-supervisor.ts';
import { cluster, deadObs, decided, id, primaryObs, replicaObs, serverObs, view } from '../helpers/views.ts';

// Whether the primary the topology shows may replace the decided one (a person changed it, or no
// record yet). Never on stale facts, never a fenced instance, never during a split brain.

const c3 = cluster(3);

const cases: { name: string; primary: string; v: ClusterView; expect: boolean }[] = [
  { name: 'unreachable: no', primary: id(1), v: view(c3, [deadObs(1), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')]), expect: false },
  {
    name: 'reachable but not probed fully (no settings): no',
    primary: id(1),
    v: view(c3, [{ id: id(1), at: 1000, reachable: true }, replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')]),
    expect: false,
  },
  { name: 'read_only: no', primary: id(1), v: view(c3, [primaryObs(1, '0-1-10', { readOnly: true }), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')]), expect: false },
  {
    name: 'two writable instances (split brain): no',
    primary: id(2),
    v: view(c3, [primaryObs(1, '0-1-10'), primaryObs(2, '0-1-10'), replicaObs(3, '0-1-10', { source: 2 })], { decision: decided({ primary: id(1) }) }),
    expect: false,
  },
  {
    name: 'fenced by Regent: no, however writable and followed',
    primary: id(1),
    v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')].map((o) => ({ ...o, at: 5000 })), { decision: decided({ primary: id(2), decidedAt: 100, fenced: [id(1)] }) }),
    expect: false,
  },
  { name: 'no decided primary yet: yes', primary: id(1), v: view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')]), expect: true },
  { name: 'no decided primary, even unfollowed: yes', primary: id(1), v: view(c3, [primaryObs(1, '0-1-10'), serverObs(2, '0-1-10'), deadObs(3)]), expect: true },
  {
    name: 'right after a decision: observations not newer than it (plus 100 ms) are stale: no',
    primary: id(2),
    v: view(c3, [primaryObs(2, '0-1-10'), replicaObs(3, '0-1-10', { source: 2 }), deadObs(1)].map((o) => ({ ...o, at: 1050 })), { decision: decided({ primary: id(1), decidedAt: 1000 }) }),
    expect: false,
  },
  {
    name: 'one reachable observation still stale is enough to wait: no',
    primary: id(2),
    v: view(c3, [{ ...primaryObs(2, '0-1-10'), at: 2000 }, { ...replicaObs(3, '0-1-10', { source: 2 }), at: 1100 }, deadObs(1, 'refused', 0)], { decision: decided({ primary: id(1), decidedAt: 1000 }) }),
    expect: false,
  },
  {
    name: 'fresh observations and followed by a replica (a person switched over by hand): yes',
    primary: id(2),
    v: view(c3, [{ ...primaryObs(2, '0-1-10'), at: 2000 }, { ...replicaObs(3, '0-1-10', { source: 2 }), at: 2000 }, deadObs(1, 'refused', 0)], { decision: decided({ primary: id(1), decidedAt: 1000 }) }),
    expect: true,
  },
  {
    name: 'fresh observations but no replica follows it: no',
    primary: id(2),
    v: view(c3, [{ ...primaryObs(2, '0-1-10'), at: 2000 }, { ...serverObs(3, '0-1-10'), at: 2000 }, deadObs(1, 'refused', 0)], { decision: decided({ primary: id(1), decidedAt: 1000 }) }),
    expect: false,
  },
];

for (const c of cases) test(`mayAdopt: ${c.name}`, () => assert.equal(mayAdopt(c.primary, analyzeCluster(c.v), c.v), c.expect));
