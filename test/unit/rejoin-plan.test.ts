import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRejoin, type RejoinDecision } from '../../src/recovery/rejoin-plan.ts';
import { deadObs, kits, mariadb, mysql, type Kit } from '../helpers/views.ts';

// Whether a former primary joins as it is, is rewound first, or is left to a person. The story of
// every fixture: n1 was primary, n2 was promoted at the common point (n1's transactions 1..10), then
// n2 wrote five transactions of its own. n1 comes back.

const CP = ['0-1-10', 'U1:1-10'] as const;
const NEW_PRIMARY = ['0-2-15', 'U1:1-10,U2:1-5'] as const;
/** n1 wrote six transactions after the common point that never reached a replica. */
const ERRANT_NODE = ['0-1-16', 'U1:1-16'] as const;
const ERRANT = ['0-1-16', 'U1:11-16'] as const;
/** n1 has nothing beyond the common point. */
const CLEAN_NODE = ['0-1-10', 'U1:1-10'] as const;

type Policy = 'manual' | 'flashback';
interface Expect {
  action: RejoinDecision['action'];
  reason: RegExp;
  errant?: string;
}

function decide(k: Kit, o: { node: readonly [string, string]; primary?: readonly [string, string]; cp?: readonly [string, string]; policy: Policy; rewind: true | string }): RejoinDecision {
  return decideRejoin({
    node: k.serverObs(1, k.g(...o.node)),
    primary: k.primaryObs(2, k.g(...(o.primary ?? NEW_PRIMARY))),
    commonPoint: o.cp ? k.gtid(...o.cp) : undefined,
    policy: o.policy,
    rewind: o.rewind,
  });
}

function check(d: RejoinDecision, e: Expect, k: Kit): void {
  assert.equal(d.action, e.action, `${d.action}: ${d.reason}`);
  assert.match(d.reason, e.reason);
  if (e.errant !== undefined) {
    const got = d.action === 'rewind' ? d.errant.toString() : d.action === 'refuse' ? d.errant : undefined;
    assert.equal(got, e.errant);
  }
  if (d.action === 'rewind') {
    assert.equal(d.errant.flavor, k.flavor);
    assert.equal(d.commonPoint.toString(), k.gtid(...CP).toString());
  }
}

// --- the matrix: node state × policy × common point × rewind capability, both flavors ------------

const NO_FLASHBACK = 'this server family has no flashback';
const matrix: { node: 'errant' | 'clean'; policy: Policy; cp: boolean; rewind: true | string; expect: (k: Kit) => Expect }[] = [];
for (const policy of ['manual', 'flashback'] as const)
  for (const cp of [true, false])
    for (const rewind of [true, NO_FLASHBACK] as const) {
      matrix.push({
        node: 'clean',
        policy,
        cp,
        rewind,
        expect: () => ({ action: 'join', reason: cp ? /has nothing the primary lacks beyond the common point/ : /has nothing the primary lacks$/ }),
      });
      matrix.push({
        node: 'errant',
        policy,
        cp,
        rewind,
        expect: (k) => {
          const errant = k.text(...ERRANT);
          // The order of the rules: the policy first, then the common point, then the capability.
          if (policy === 'manual') return { action: 'refuse', reason: /rejoin policy is manual: it stays read_only and fenced/, errant };
          if (!cp) return { action: 'refuse', reason: /point where it parted from the cluster is unknown.*rebuild it with regent clone/, errant };
          if (rewind !== true) return { action: 'refuse', reason: new RegExp(`cannot be rewound here: ${NO_FLASHBACK}`), errant };
          return { action: 'rewind', reason: /save, rewind with flashback, rejoin/, errant };
        },
      });
    }

for (const k of kits)
  for (const m of matrix) {
    const name = `rejoin [${k.flavor}]: ${m.node} node, policy ${m.policy}, common point ${m.cp ? 'known' : 'unknown'}, rewind ${m.rewind === true ? 'possible' : 'impossible'}`;
    test(name, () => {
      const d = decide(k, { node: m.node === 'errant' ? ERRANT_NODE : CLEAN_NODE, cp: m.cp ? CP : undefined, policy: m.policy, rewind: m.rewind });
      check(d, m.expect(k), k);
    });
  }

// --- the cases the matrix does not show --------------------------------------------------------

const special: { name: string; k: Kit; run: () => RejoinDecision; expect: Expect }[] = [
  {
    name: 'MariaDB, common point known: an entry behind the new primary\'s seq but written by the node after the common point is errant',
    k: mariadb,
    run: () => decide(mariadb, { node: ['0-1-12', ''], cp: CP, policy: 'flashback', rewind: true }),
    expect: { action: 'rewind', reason: /errant transactions 0-1-12 after 0-1-10/, errant: '0-1-12' },
  },
  {
    name: 'MariaDB, common point unknown: that same entry cannot be told from history (positions only; it joins and strict mode stops it)',
    k: mariadb,
    run: () => decide(mariadb, { node: ['0-1-12', ''], policy: 'flashback', rewind: true }),
    expect: { action: 'join', reason: /has nothing the primary lacks$/ },
  },
  {
    name: 'MySQL, common point unknown: GTID sets show the errant transactions all the same (refused, cannot rewind safely)',
    k: mysql,
    run: () => decide(mysql, { node: ['', 'U1:1-12'], policy: 'flashback', rewind: true }),
    expect: { action: 'refuse', reason: /point where it parted from the cluster is unknown/, errant: mysql.text('', 'U1:11-12') },
  },
  {
    name: 'MariaDB: a node that already applied some of the new primary\'s writes has nothing errant',
    k: mariadb,
    run: () => decide(mariadb, { node: ['0-2-13', ''], cp: CP, policy: 'manual', rewind: true }),
    expect: { action: 'join', reason: /beyond the common point 0-1-10/ },
  },
  {
    name: 'MySQL: a node that already applied some of the new primary\'s writes has nothing errant',
    k: mysql,
    run: () => decide(mysql, { node: ['', 'U1:1-10,U2:1-3'], cp: CP, policy: 'manual', rewind: true }),
    expect: { action: 'join', reason: /beyond the common point/ },
  },
  {
    name: 'MySQL: errant transactions of another origin (written on the node under its own uuid) are rewound',
    k: mysql,
    run: () => decide(mysql, { node: ['', 'U1:1-10,U3:1-2'], cp: CP, policy: 'flashback', rewind: true }),
    expect: { action: 'rewind', reason: /save, rewind/, errant: mysql.text('', 'U3:1-2') },
  },
  {
    name: 'MariaDB: errant transactions in another domain are rewound',
    k: mariadb,
    run: () => decide(mariadb, { node: ['0-1-10,1-1-4', ''], cp: CP, policy: 'flashback', rewind: true }),
    expect: { action: 'rewind', reason: /save, rewind/, errant: '1-1-4' },
  },
];

for (const c of special) test(`rejoin [${c.k.flavor}]: ${c.name}`, () => check(c.run(), c.expect, c.k));

for (const k of kits) {
  test(`rejoin [${k.flavor}]: an unreachable node is refused`, () => {
    const d = decideRejoin({ node: deadObs(1), primary: k.primaryObs(2, k.g(...NEW_PRIMARY)), commonPoint: k.gtid(...CP), policy: 'flashback', rewind: true });
    assert.deepEqual(d, { action: 'refuse', reason: '127.0.0.1:3301 is not reachable' });
  });
  test(`rejoin [${k.flavor}]: an unreachable primary is refused`, () => {
    const d = decideRejoin({ node: k.serverObs(1, k.g(...CLEAN_NODE)), primary: deadObs(2), commonPoint: k.gtid(...CP), policy: 'flashback', rewind: true });
    assert.deepEqual(d, { action: 'refuse', reason: 'the primary 127.0.0.1:3302 is not reachable' });
  });
}
