import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderReport, runChaos } from '../../chaos/run.ts';

const quiet = () => {};

test('short fixed-seed chaos run: faults under load, zero invariant violations', { timeout: 600000 }, async () => {
  const report = await runChaos({ minutes: 1.5, seed: 42, reportDir: 'test-artifacts/chaos', log: quiet });
  assert.deepEqual(report.violations, [], renderReport(report));
  assert.ok(report.faults.length >= 5, `only ${report.faults.length} faults injected`);
  assert.ok(report.failovers >= 1, 'no failover happened');
  assert.ok(report.writes.acknowledged > 1000, `only ${report.writes.acknowledged} writes`);
});

test('the checker catches a deliberately broken build (relay-log drain disabled)', { timeout: 300000 }, async () => {
  const broken = await runChaos({ minutes: 0, seed: 7, nodes: 3, scenario: 'stuck-relay-log', skipDrain: true, reportDir: 'test-artifacts/chaos', log: quiet });
  assert.ok(
    broken.violations.some((v) => v.invariant === 'acknowledged-write-lost'),
    `expected lost acknowledged writes, got: ${JSON.stringify(broken.violations)}`,
  );
  // The same scenario with the drain: nothing lost.
  const sound = await runChaos({ minutes: 0, seed: 7, nodes: 3, scenario: 'stuck-relay-log', reportDir: 'test-artifacts/chaos', log: quiet });
  assert.deepEqual(sound.violations, [], renderReport(sound));
});
