import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chooseCandidate, type ReplicaFacts } from '../../src/recovery/candidate.ts';
import { MariaGtidPosition } from '../../src/gtid/index.ts';
import { analyzeCluster } from '../../src/analysis/analyze.ts';
import { planFailover } from '../../src/recovery/plan.ts';
import { cluster, deadObs, id, kits, replicaObs, view, type Kit } from '../helpers/views.ts';

function facts(c: ReturnType<typeof cluster>, n: number, gtid: string, extra: Partial<ReplicaFacts> = {}): ReplicaFacts {
  return {
    instance: c.instances[n - 1]!,
    reachable: true,
    executed: MariaGtidPosition.parse(gtid),
    logBin: true,
    logReplicaUpdates: true,
    sqlDelay: 0,
    ...extra,
  };
}

test('the most advanced replica wins', () => {
  const c = cluster(4);
  const r = chooseCandidate([facts(c, 2, '0-1-10'), facts(c, 3, '0-1-12'), facts(c, 4, '0-1-11')], { oldPrimaryOrigin: '1' });
  assert.equal(r.candidate, c.instances[2]!.id);
  assert.equal(r.catchUpFrom, undefined);
});

test('a never replica that is ahead is not promoted; the winner catches up from it', () => {
  const c = cluster(5, { promotion: { 2: 'never' } });
  const r = chooseCandidate([facts(c, 2, '0-1-20'), facts(c, 3, '0-1-18'), facts(c, 4, '0-1-19'), facts(c, 5, '0-1-17')], { oldPrimaryOrigin: '1' });
  assert.equal(r.candidate, c.instances[3]!.id);
  assert.equal(r.catchUpFrom, c.instances[1]!.id);
  assert.ok(r.rejected.some((x) => x.id === c.instances[1]!.id && /never/.test(x.why)));
});

test('prefer wins a tie; then the old primary data center; then config order', () => {
  const c = cluster(4, { promotion: { 4: 'prefer' }, dc: { 1: 'east', 3: 'east' } });
  assert.equal(chooseCandidate([facts(c, 2, '0-1-10'), facts(c, 3, '0-1-10'), facts(c, 4, '0-1-10')], { oldPrimaryDataCenter: 'east' }).candidate, c.instances[3]!.id);
  const c2 = cluster(4, { dc: { 1: 'east', 3: 'east' } });
  const r = chooseCandidate([facts(c2, 2, '0-1-10'), facts(c2, 3, '0-1-10'), facts(c2, 4, '0-1-10')], { oldPrimaryDataCenter: 'east' });
  assert.equal(r.candidate, c2.instances[2]!.id);
  assert.match(r.reasons.join(' '), /data center east/);
  const c3 = cluster(4);
  assert.equal(chooseCandidate([facts(c3, 2, '0-1-10'), facts(c3, 3, '0-1-10'), facts(c3, 4, '0-1-10')], {}).candidate, c3.instances[1]!.id);
});

test('a prefer replica that is behind does not win', () => {
  const c = cluster(3, { promotion: { 2: 'prefer' } });
  assert.equal(chooseCandidate([facts(c, 2, '0-1-9'), facts(c, 3, '0-1-10')], {}).candidate, c.instances[2]!.id);
});

test('errant replicas, delayed replicas, no-binlog replicas and broken SQL threads are never promoted', () => {
  const c = cluster(6);
  const r = chooseCandidate(
    [
      facts(c, 2, '0-1-10,1-2-1', {}),
      facts(c, 3, '0-1-10', { sqlDelay: 3600 }),
      facts(c, 4, '0-1-10', { logBin: false }),
      facts(c, 5, '0-1-10', { sqlError: '1062: dup' }),
      facts(c, 6, '0-1-9'),
    ],
    { oldPrimaryOrigin: '1' },
  );
  assert.equal(r.candidate, c.instances[5]!.id);
  const why = new Map(r.rejected.map((x) => [x.id, x.why]));
  assert.match(why.get(c.instances[1]!.id)!, /errant/);
  assert.match(why.get(c.instances[2]!.id)!, /delayed/);
  assert.match(why.get(c.instances[3]!.id)!, /binary log/);
  assert.match(why.get(c.instances[4]!.id)!, /SQL thread/);
});

test('a replica known errant from earlier is refused even when alone', () => {
  const c = cluster(2);
  const r = chooseCandidate([facts(c, 2, '0-1-10', { errant: '0-2-11' })], {});
  assert.equal(r.candidate, undefined);
  assert.match(r.refusal!, /no replica may be promoted.*errant/);
});

test('no allowed candidate: refuse with the reason', () => {
  const c = cluster(3, { promotion: { 2: 'never', 3: 'never' } });
  const r = chooseCandidate([facts(c, 2, '0-1-10'), facts(c, 3, '0-1-10')], {});
  assert.equal(r.candidate, undefined);
  assert.match(r.refusal!, /never/);
});

test('diverged replicas: refuse rather than lose a transaction', () => {
  const c = cluster(3, { promotion: { 2: 'never' } });
  const r = chooseCandidate([facts(c, 2, '0-1-10,1-1-5'), facts(c, 3, '0-1-11')], { oldPrimaryOrigin: '1' });
  assert.equal(r.candidate, undefined);
  assert.match(r.refusal!, /diverged/);
});

test('property: the candidate (with its catch-up source) never misses a transaction any reachable replica has', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ seq: fc.integer({ min: 0, max: 30 }), never: fc.boolean() }), { minLength: 1, maxLength: 6 }),
      (specs) => {
        const c = cluster(specs.length + 1, { promotion: Object.fromEntries(specs.map((s, i) => [i + 2, s.never ? 'never' : undefined]).filter(([, v]) => v)) });
        const fs = specs.map((s, i) => facts(c, i + 2, s.seq === 0 ? '' : `0-1-${s.seq}`));
        const r = chooseCandidate(fs, { oldPrimaryOrigin: '1' });
        const max = Math.max(...specs.map((s) => s.seq));
        if (specs.every((s) => s.never)) {
          assert.equal(r.candidate, undefined);
          return;
        }
        assert.ok(r.candidate);
        const chosen = fs.find((f) => f.instance.id === r.candidate)!;
        const holder = r.catchUpFrom ? fs.find((f) => f.instance.id === r.catchUpFrom)! : chosen;
        assert.ok(holder.executed!.contains(MariaGtidPosition.parse(max === 0 ? '' : `0-1-${max}`)));
        assert.notEqual(chosen.instance.promotion, 'never');
      },
    ),
  );
});

test('transactions only in a relay log that cannot be applied block the failover', () => {
  const c = cluster(3);
  const r = chooseCandidate(
    [facts(c, 2, '0-1-10', { received: MariaGtidPosition.parse('0-1-12'), sqlError: '1062: dup' }), facts(c, 3, '0-1-10', { received: MariaGtidPosition.parse('0-1-10') })],
    { oldPrimaryOrigin: '1' },
  );
  assert.equal(r.candidate, undefined);
  assert.match(r.refusal!, /received 0-1-12 that no replica has applied/);
});

// --- failover.maxLagForCandidateSeconds -------------------------------------------------------

const lagCases: { name: string; lags: (number | undefined)[]; gtids?: string[]; limit?: number; candidate?: number; catchUpFrom?: number; rejected: Record<number, RegExp>; refusal?: RegExp }[] = [
  {
    name: 'a replica further behind than the limit is refused, naming the key',
    lags: [30, 2],
    limit: 10,
    candidate: 3,
    rejected: { 2: /^it was 30 s behind its source, more than failover\.maxLagForCandidateSeconds \(10 s\)$/ },
  },
  { name: 'a replica exactly at the limit is allowed', lags: [10, 10], limit: 10, candidate: 2, rejected: {} },
  {
    name: 'unknown lag is refused when the limit is set',
    lags: [undefined, 2],
    limit: 10,
    candidate: 3,
    rejected: { 2: /^its lag is unknown and failover\.maxLagForCandidateSeconds is 10$/ },
  },
  { name: 'without the limit, lag (known or not) does not matter', lags: [3600, undefined], candidate: 2, rejected: {} },
  {
    name: 'a replica beyond the limit that is the most advanced is still the catch-up source',
    lags: [30, 2],
    gtids: ['0-1-12', '0-1-10'],
    limit: 10,
    candidate: 3,
    catchUpFrom: 2,
    rejected: { 2: /maxLagForCandidateSeconds/ },
  },
  {
    name: 'every replica beyond the limit: the failover is refused with the reason',
    lags: [30, undefined],
    limit: 10,
    rejected: { 2: /30 s behind/, 3: /lag is unknown/ },
    refusal: /^no replica may be promoted: .*failover\.maxLagForCandidateSeconds/,
  },
  { name: 'a limit of 0 allows only replicas that were not behind at all', lags: [1, 0], limit: 0, candidate: 3, rejected: { 2: /1 s behind/ } },
];

for (const c of lagCases) {
  test(`maxLagForCandidateSeconds: ${c.name}`, () => {
    const cl = cluster(c.lags.length + 1);
    const fs = c.lags.map((lag, i) => facts(cl, i + 2, c.gtids?.[i] ?? '0-1-10', { lagSeconds: lag }));
    const r = chooseCandidate(fs, { oldPrimaryOrigin: '1', maxLagSeconds: c.limit });
    assert.equal(r.candidate, c.candidate === undefined ? undefined : cl.instances[c.candidate - 1]!.id, r.refusal);
    assert.equal(r.catchUpFrom, c.catchUpFrom === undefined ? undefined : cl.instances[c.catchUpFrom - 1]!.id);
    const why = new Map(r.rejected.map((x) => [x.id, x.why]));
    assert.equal(why.size, Object.keys(c.rejected).length, JSON.stringify(r.rejected));
    for (const [n, re] of Object.entries(c.rejected)) assert.match(why.get(cl.instances[Number(n) - 1]!.id) ?? '(not rejected)', re);
    if (c.refusal) assert.match(r.refusal!, c.refusal);
    else assert.equal(r.refusal, undefined);
  });
}

test('maxLagForCandidateSeconds: the failover plan reads the key from the cluster config and the lag from the view', () => {
  const cl = cluster(3, { yaml: '    failover:\n      maxLagForCandidateSeconds: 5' });
  const v = view(cl, [deadObs(1), replicaObs(2, '0-1-10', { ioThread: 'connecting', secondsBehind: null }, { lastMeasuredLagSeconds: 40 }), replicaObs(3, '0-1-10', { ioThread: 'connecting', secondsBehind: 1 })]);
  const plan = planFailover(v, analyzeCluster(v), 'test');
  assert.ok(!('refusal' in plan));
  assert.equal(plan.choice.candidate, id(3));
  assert.match(plan.choice.rejected.find((x) => x.id === id(2))!.why, /40 s behind its source, more than failover\.maxLagForCandidateSeconds \(5 s\)/);
});

// --- MySQL fixtures beside the MariaDB ones ---------------------------------------------------

function kfacts(k: Kit, c: ReturnType<typeof cluster>, n: number, g: readonly [string, string], extra: Partial<ReplicaFacts> = {}): ReplicaFacts {
  return { instance: c.instances[n - 1]!, reachable: true, executed: k.gtid(...g), logBin: true, logReplicaUpdates: true, sqlDelay: 0, ...extra };
}

const flavorCases: {
  name: string;
  promotion?: Record<number, 'prefer' | 'never'>;
  replicas: { n: number; g: readonly [string, string]; extra?: Partial<ReplicaFacts> }[];
  candidate?: number;
  catchUpFrom?: number;
  rejected?: Record<number, RegExp>;
  refusal?: RegExp;
}[] = [
  {
    name: 'the most advanced replica wins',
    replicas: [
      { n: 2, g: ['0-1-10', 'U1:1-10'] },
      { n: 3, g: ['0-1-12', 'U1:1-12'] },
      { n: 4, g: ['0-1-11', 'U1:1-11'] },
    ],
    candidate: 3,
  },
  {
    name: 'a never replica ahead: the winner catches up from it',
    promotion: { 2: 'never' },
    replicas: [
      { n: 2, g: ['0-1-20', 'U1:1-20'] },
      { n: 3, g: ['0-1-18', 'U1:1-18'] },
      { n: 4, g: ['0-1-19', 'U1:1-19'] },
    ],
    candidate: 4,
    catchUpFrom: 2,
    rejected: { 2: /never/ },
  },
  {
    name: 'a replica with errant transactions is not promoted, and the winner does not catch up from it (it lacks only those)',
    replicas: [
      { n: 2, g: ['0-1-10,1-2-3', 'U1:1-10,U2:1-3'] },
      { n: 3, g: ['0-1-10', 'U1:1-10'] },
    ],
    candidate: 3,
    rejected: { 2: /errant transactions/ },
  },
  {
    name: 'errant transactions: the only replica with a transaction the others lack is errant: refused, catching up from it would copy them',
    replicas: [
      { n: 2, g: ['0-1-10,1-2-3', 'U1:1-10,U2:1-3'] },
      { n: 3, g: ['0-1-9', 'U1:1-9'] },
    ],
    rejected: { 2: /errant transactions/ },
    refusal: /only 127\.0\.0\.1:3302 holds.*has errant transactions.*would copy them to the new primary/,
  },
  {
    name: 'errant transactions: the winner catches up from a clean replica, never from the errant one',
    promotion: { 3: 'never' },
    replicas: [
      { n: 2, g: ['0-1-10,1-2-3', 'U1:1-10,U2:1-3'] },
      { n: 3, g: ['0-1-10', 'U1:1-10'] },
      { n: 4, g: ['0-1-9', 'U1:1-9'] },
    ],
    candidate: 4,
    catchUpFrom: 3,
    rejected: { 2: /errant transactions/, 3: /never/ },
  },
  {
    name: 'a known errant set from the decision record refuses the replica',
    replicas: [
      { n: 2, g: ['0-1-10', 'U1:1-10'], extra: { errant: 'known' } },
      { n: 3, g: ['0-1-10', 'U1:1-10'] },
    ],
    candidate: 3,
    rejected: { 2: /^errant transactions known$/ },
  },
  {
    name: 'a replica known errant (decision record) holds a transaction the winner lacks: refused, never caught up from',
    replicas: [
      { n: 2, g: ['0-1-11', 'U1:1-11'], extra: { errant: 'known' } },
      { n: 3, g: ['0-1-10', 'U1:1-10'] },
    ],
    rejected: { 2: /errant transactions/ },
    refusal: /has errant transactions.*would copy them/,
  },
  {
    name: 'diverged replicas: refuse rather than lose a transaction',
    promotion: { 2: 'never' },
    replicas: [
      { n: 2, g: ['0-1-10,1-1-5', 'U1:1-10:12-16'] },
      { n: 3, g: ['0-1-11', 'U1:1-11'] },
    ],
    refusal: /diverged/,
  },
  {
    name: 'transactions only in a relay log that cannot be applied block the failover',
    replicas: [
      { n: 2, g: ['0-1-10', 'U1:1-10'], extra: { sqlError: '1062: dup' } },
      { n: 3, g: ['0-1-10', 'U1:1-10'] },
    ],
    refusal: /received .* that no replica has applied/,
  },
  {
    name: 'in maintenance: never promoted',
    replicas: [
      { n: 2, g: ['0-1-10', 'U1:1-10'], extra: { maintenance: true } },
      { n: 3, g: ['0-1-10', 'U1:1-10'] },
    ],
    candidate: 3,
    rejected: { 2: /^in maintenance$/ },
  },
  {
    name: 'unreachable replicas are listed and skipped',
    replicas: [
      { n: 2, g: ['0-1-12', 'U1:1-12'], extra: { reachable: false } },
      { n: 3, g: ['0-1-10', 'U1:1-10'] },
    ],
    candidate: 3,
    rejected: { 2: /^unreachable$/ },
  },
];

for (const k of kits)
  for (const c of flavorCases) {
    test(`candidate [${k.flavor}]: ${c.name}`, () => {
      const cl = cluster(Math.max(...c.replicas.map((r) => r.n)), { promotion: c.promotion });
      const fs = c.replicas.map((r) => {
        const f = kfacts(k, cl, r.n, r.g, r.extra);
        // A relay-log case: the first replica received two more transactions than it applied.
        if (/relay log/.test(c.name) && r.n === 2) f.received = k.gtid('0-1-12', 'U1:1-12');
        return f;
      });
      const r = chooseCandidate(fs, { oldPrimaryOrigin: k.origin(1) });
      const at = (n?: number) => (n === undefined ? undefined : cl.instances[n - 1]!.id);
      assert.equal(r.candidate, at(c.candidate), r.refusal);
      assert.equal(r.catchUpFrom, at(c.catchUpFrom));
      for (const [n, re] of Object.entries(c.rejected ?? {})) assert.match(r.rejected.find((x) => x.id === at(Number(n)))?.why ?? '(not rejected)', re);
      if (c.refusal) assert.match(r.refusal ?? '', c.refusal);
      else assert.equal(r.refusal, undefined);
      if (/errant/.test(c.name) && !/known/.test(c.name)) assert.equal(r.rejected.find((x) => x.id === at(2))!.why, `errant transactions ${k.text('1-2-3', 'U2:1-3')}`);
    });
  }

test('candidate [mariadb]: an errant entry in a shared domain implies history it does not show: never caught up from, refused', () => {
  // n2 wrote 0-2-11 itself after applying 0-1-10: its position cannot say "0-1-10 but not 0-2-11".
  const c = cluster(3);
  const r = chooseCandidate([facts(c, 2, '0-2-11'), facts(c, 3, '0-1-10')], { oldPrimaryOrigin: '1' });
  assert.equal(r.candidate, undefined);
  assert.equal(r.catchUpFrom, undefined);
  assert.match(r.refusal!, /has errant transactions 0-2-11.*would copy them/);
});
