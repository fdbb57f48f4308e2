import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderReport, runChaos, type FaultKind } from '../../chaos/run.ts';

const quiet = () => {};

/**
 * The chaos suite's multi-manager mode, short: three managers on a three-member etcd, three
 * clusters (load and faults on one), and each kind of fault that takes a manager or an etcd member
 * away once, between faults of the data path. Zero violations: no acknowledged write lost, one
 * writer behind the endpoint, never two acting managers for a cluster (log intervals, journal
 * writers), exactly one leader per cluster after each fault.
 */
test('several managers on etcd: leader and manager kill -9, leader stop, etcd member restarts, under load: zero violations', { timeout: 600000 }, async () => {
  const faults: FaultKind[] = ['kill-leader', 'restart-etcd-member', 'kill-primary', 'restart-leader', 'kill-leader-and-primary', 'kill-manager', 'switchover', 'restart-etcd-member'];
  const report = await runChaos({ minutes: 0, seed: 16, nodes: 3, managers: 3, faults, reportDir: 'test-artifacts/chaos', log: quiet });
  assert.deepEqual(report.violations, [], renderReport(report));
  assert.deepEqual(report.faults.map((f) => f.kind), faults, renderReport(report));
  for (const f of report.faults.filter((x) => x.kind === 'kill-leader' || x.kind === 'restart-leader' || x.kind === 'kill-leader-and-primary'))
    assert.ok(f.takeoverMs !== undefined, `fault ${f.n} (${f.kind}): no other manager took the cluster over\n${renderReport(report)}`);
  assert.ok(report.failovers >= 2, `expected the failovers of kill-primary and kill-leader-and-primary\n${renderReport(report)}`);
  assert.ok(report.leadership!.plans >= 3 && report.leadership!.leaderChecks === faults.length + 1, JSON.stringify(report.leadership));
});
