import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCluster, type Analysis } from '../../src/analysis/analyze.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import { checkSwitchover, type LongTransaction, type SwitchoverCheck } from '../../src/recovery/switchover-checks.ts';
import { cluster, deadObs, decided, id, kits, view, type Kit } from '../helpers/views.ts';

// Pre-checks of a planned switchover: every refusal, what passed, and the automatic target choice.
// Each case runs with MariaDB and with MySQL fixtures.

const settings = { maxLagSeconds: 5, maxTransactionSeconds: 10 };
const c3 = cluster(3);

interface Case {
  name: string;
  v: (k: Kit) => ClusterView;
  target?: string;
  longTransactions?: LongTransaction[];
  /** Override the analysis (a primary the topology does not know). */
  analysis?: (v: ClusterView) => Analysis;
  /** Every refusal, in order (exact text or pattern). */
  refusals: (string | RegExp)[] | ((k: Kit) => (string | RegExp)[]);
  /** The target the check settles on. */
  chosen?: string;
  passed?: (string | RegExp)[];
}

const P = ['0-1-10', 'U1:1-10'] as const;
const healthy = (k: Kit, extra: { r2?: Parameters<Kit['replicaObs']>[2]; o2?: Parameters<Kit['replicaObs']>[3]; g2?: readonly [string, string] } = {}) => [
  k.primaryObs(1, k.g(...P)),
  k.replicaObs(2, k.g(...(extra.g2 ?? P)), extra.r2 ?? {}, extra.o2 ?? {}),
  k.replicaObs(3, k.g(...P)),
];

const cases: Case[] = [
  {
    name: 'everything fine: no refusal, and the report lists what passed',
    v: (k) => view(c3, healthy(k)),
    target: id(2),
    refusals: [],
    chosen: id(2),
    passed: [`primary ${id(1)} is reachable and writable`, `target ${id(2)} replicates from ${id(1)}`, 'target lag 0 s', 'no errant transactions on the target', 'no write transaction older than 10 s'],
  },
  { name: 'the target may be named by instance name', v: (k) => view(c3, healthy(k)), target: 'n2', refusals: [], chosen: id(2) },
  {
    name: 'the primary is unreachable: a failover, not a switchover',
    v: (k) => view(c3, [deadObs(1), k.replicaObs(2, k.g(...P), { ioThread: 'connecting' }), k.replicaObs(3, k.g(...P), { ioThread: 'connecting' })]),
    target: id(2),
    refusals: [`the primary ${id(1)} is not reachable: this is a failover, not a switchover`],
  },
  {
    name: 'no primary known: refused',
    v: (k) => view(c3, healthy(k)),
    analysis: (v) => {
      const a = analyzeCluster(v);
      return { ...a, topology: { ...a.topology, primary: undefined } };
    },
    refusals: ['the primary (unknown) is not reachable: this is a failover, not a switchover'],
  },
  {
    name: 'the primary is read_only already',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P), { readOnly: true }), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g(...P))]),
    target: id(2),
    refusals: [`the primary ${id(1)} is read_only already; fix that first (regent status)`],
  },
  { name: 'the target is not an instance of the cluster', v: (k) => view(c3, healthy(k)), target: '10.9.9.9:3306', refusals: ['10.9.9.9:3306 is not an instance of cluster c'] },
  { name: 'the target is the primary already', v: (k) => view(c3, healthy(k)), target: 'n1', refusals: [`${id(1)} is already the primary`] },
  {
    name: 'the target is unreachable',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), deadObs(2), k.replicaObs(3, k.g(...P))]),
    target: id(2),
    refusals: [`target ${id(2)} is unreachable`],
  },
  {
    name: 'the target replicates from another replica, not from the primary',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P), { source: 3 }), k.replicaObs(3, k.g(...P))]),
    target: id(2),
    refusals: [`target ${id(2)} does not replicate from the primary ${id(1)}`],
  },
  {
    name: 'the target replicates from nobody',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.serverObs(2, k.g(...P)), k.replicaObs(3, k.g(...P))]),
    target: id(2),
    refusals: [`target ${id(2)} does not replicate from the primary ${id(1)}`],
  },
  {
    name: 'the target\'s IO thread is stopped',
    v: (k) => view(c3, healthy(k, { r2: { ioThread: 'no' } })),
    target: id(2),
    refusals: [`target ${id(2)} is not replicating (IO no, SQL yes)`],
  },
  {
    name: 'the target\'s SQL thread stopped on an error (named)',
    v: (k) => view(c3, healthy(k, { r2: { sqlThread: false, lastSqlErrno: 1062, lastSqlError: 'Duplicate entry' } })),
    target: id(2),
    refusals: [`target ${id(2)} is not replicating (IO yes, SQL no, error 1062)`],
  },
  { name: 'the target lags beyond switchover.maxLagSeconds', v: (k) => view(c3, healthy(k, { r2: { secondsBehind: 6 } })), target: id(2), refusals: [`target ${id(2)} lags 6 s (limit 5 s)`] },
  { name: 'the target lags exactly switchover.maxLagSeconds: allowed', v: (k) => view(c3, healthy(k, { r2: { secondsBehind: 5 } })), target: id(2), refusals: [], passed: [/target lag 5 s/] },
  { name: 'the target\'s lag is unknown', v: (k) => view(c3, healthy(k, { r2: { secondsBehind: null } })), target: id(2), refusals: [`target ${id(2)} lags an unknown time (limit 5 s)`] },
  {
    name: 'the target has promotion rule never',
    v: (k) => ({ ...view(cluster(3, { promotion: { 2: 'never' } }), healthy(k)) }),
    target: id(2),
    refusals: [`target ${id(2)} has promotion rule never`],
  },
  {
    name: 'the target is in maintenance',
    v: (k) => view(c3, healthy(k), { decision: decided({ primary: id(1), maintenance: [id(2)] }) }),
    target: id(2),
    refusals: [`target ${id(2)} is in maintenance`],
  },
  {
    name: 'a maintenance window that ended does not count',
    v: (k) => view(c3, healthy(k), { decision: decided({ primary: id(1), maintenance: { [id(2)]: 999 } }) }),
    target: id(2),
    refusals: [],
  },
  { name: 'the target is a delayed replica', v: (k) => view(c3, healthy(k, { r2: { sqlDelay: 3600 } })), target: id(2), refusals: [`target ${id(2)} is a delayed replica (3600 s)`] },
  {
    name: 'the target has no binary log',
    v: (k) => view(c3, healthy(k, { o2: { logBin: false } })),
    target: id(2),
    refusals: [`target ${id(2)} has no usable binary log (log_bin and log_slave_updates must be ON)`],
  },
  {
    name: 'the target does not log what it replicates (log_slave_updates off)',
    v: (k) => view(c3, healthy(k, { o2: { logReplicaUpdates: false } })),
    target: id(2),
    refusals: [`target ${id(2)} has no usable binary log (log_bin and log_slave_updates must be ON)`],
  },
  {
    name: 'errant transactions known from the decision record, though the GTIDs look clean now',
    v: (k) => view(c3, healthy(k), { decision: decided({ primary: id(1), errant: { [id(2)]: k.text('0-2-4', 'U2:1-4') } }) }),
    target: id(2),
    refusals: (k) => [`target ${id(2)} has errant transactions ${k.text('0-2-4', 'U2:1-4')}`],
  },
  {
    name: 'errant transactions computed from the GTIDs',
    v: (k) => view(c3, healthy(k, { g2: ['0-1-10,1-2-3', 'U1:1-10,U2:1-3'] })),
    target: id(2),
    refusals: (k) => [`target ${id(2)} has errant transactions ${k.text('1-2-3', 'U2:1-3')}`],
  },
  {
    name: 'the primary\'s own newest commits on the target are not errant',
    v: (k) => view(c3, healthy(k, { g2: ['0-1-12', 'U1:1-12'] })),
    target: id(2),
    refusals: [],
  },
  {
    name: 'long write transactions on the primary: each named, the short one not',
    v: (k) => view(c3, healthy(k)),
    target: id(2),
    longTransactions: [
      { id: '421', seconds: 30, rowsModified: 1000 },
      { id: '422', seconds: 2, rowsModified: 1 },
      { id: '423', seconds: 11, rowsModified: 7 },
    ],
    refusals: [`write transaction(s) running longer than 10 s on ${id(1)}: trx 421 (30 s, 1000 rows), trx 423 (11 s, 7 rows); let them finish or kill them`],
  },
  {
    name: 'several refusals at once, in order',
    v: (k) => view(cluster(3, { promotion: { 2: 'never' } }), healthy(k, { r2: { sqlDelay: 60, secondsBehind: 9 } }), { decision: decided({ maintenance: [id(2)] }) }),
    target: id(2),
    refusals: [`target ${id(2)} lags 9 s (limit 5 s)`, `target ${id(2)} has promotion rule never`, `target ${id(2)} is in maintenance`, `target ${id(2)} is a delayed replica (60 s)`],
  },
  {
    name: 'automatic target: the most advanced replica of the primary',
    v: (k) => view(c3, [k.primaryObs(1, k.g('0-1-12', 'U1:1-12')), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g('0-1-12', 'U1:1-12'))]),
    refusals: [],
    chosen: id(3),
    passed: [new RegExp(`^target ${id(3)} chosen: ${id(3)} has every transaction`)],
  },
  {
    name: 'automatic target: a never replica is skipped',
    v: (k) => view(cluster(3, { promotion: { 3: 'never' } }), [k.primaryObs(1, k.g('0-1-12', 'U1:1-12')), k.replicaObs(2, k.g('0-1-12', 'U1:1-12')), k.replicaObs(3, k.g('0-1-12', 'U1:1-12'))]),
    refusals: [],
    chosen: id(2),
  },
  {
    name: 'automatic target: only replicas of the primary are considered',
    v: (k) => view(c3, [k.primaryObs(1, k.g(...P)), k.replicaObs(2, k.g(...P)), k.replicaObs(3, k.g('0-1-12', 'U1:1-12'), { sourceHost: '10.0.0.9', sourcePort: 3306 })]),
    refusals: [],
    chosen: id(2),
  },
  {
    name: 'automatic target: none may be promoted',
    v: (k) => view(cluster(3, { promotion: { 2: 'never', 3: 'never' } }), healthy(k)),
    refusals: [/^no replica may become primary: no replica may be promoted: .*promotion rule is never/],
  },
];

function matches(actual: string[], expected: (string | RegExp)[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${JSON.stringify(actual)}`);
  expected.forEach((e, i) => (typeof e === 'string' ? assert.equal(actual[i], e) : assert.match(actual[i]!, e)));
}

for (const k of kits)
  for (const c of cases) {
    test(`switchover checks [${k.flavor}]: ${c.name}`, () => {
      const v = c.v(k);
      const analysis = c.analysis ? c.analysis(v) : analyzeCluster(v);
      const r: SwitchoverCheck = checkSwitchover(v, analysis, { target: c.target, settings, longTransactions: c.longTransactions ?? [] });
      const refusals = typeof c.refusals === 'function' ? c.refusals(k) : c.refusals;
      matches(r.refusals, refusals, 'refusals');
      if (c.chosen) assert.equal(r.target, c.chosen);
      if (c.passed) for (const p of c.passed) assert.ok(r.passed.some((x) => (typeof p === 'string' ? x === p : p.test(x))), `passed should include ${p}: ${JSON.stringify(r.passed)}`);
      if (refusals.length === 0) assert.equal(r.oldPrimary, id(1));
    });
  }
