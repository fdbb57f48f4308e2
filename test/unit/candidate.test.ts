import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chooseCandidate, type ReplicaFacts } from '../../src/recovery/candidate.ts';
import { MariaGtidPosition } from '../../src/gtid/index.ts';
import { cluster } from '../helpers/views.ts';

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
