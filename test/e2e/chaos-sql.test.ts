import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderReport, runChaos, type FaultKind } from '../../chaos/run.ts';

const quiet = () => {};

/**
 * The chaos suite's SQL-endpoint mode, short: writer sessions, a reader and the writer samples go
 * through the SQL-aware endpoint; each writer increments its own counter row and reads it back in
 * the same session (routed to a replica: read-your-writes). Zero violations: no acknowledged write
 * lost, none applied twice (each counter between its acknowledged and acknowledged + unknown
 * increments), no read-back missed the session's own write, one writer behind the endpoint.
 */
test('SQL endpoint under switchover, primary kill -9 and SIGSTOP, manager kill -9: zero violations', { timeout: 300000 }, async () => {
  const faults: FaultKind[] = ['switchover', 'kill-primary', 'stop-primary', 'kill-manager'];
  const report = await runChaos({ minutes: 0, seed: 53, nodes: 3, endpoint: 'sql', faults, reportDir: 'test-artifacts/chaos', log: quiet });
  const text = renderReport(report);
  assert.deepEqual(report.violations, [], text);
  assert.deepEqual(report.faults.map((f) => f.kind), faults, text);
  assert.equal(report.endpoint, 'sql');
  assert.ok(report.failovers >= 1 && report.switchovers >= 1, text);
  const sql = report.sql!;
  assert.ok(sql.increments.acknowledged > 200, `only ${sql.increments.acknowledged} increments\n${text}`);
  assert.ok(sql.transactions.committed > 50, `only ${sql.transactions.committed} transactions\n${text}`);
  // Read-your-writes was exercised: most read-backs were answered by a replica, none missed.
  assert.ok(sql.readBacks.onReplica > sql.readBacks.total / 2, `read-backs on replicas: ${sql.readBacks.onReplica} of ${sql.readBacks.total}\n${text}`);
  assert.equal(sql.readBacks.missed, 0, text);
  for (const f of report.faults) assert.ok(f.clientErrors, `fault ${f.n} has no error counts`);
  assert.match(text, /client errors \(c \/ w \/ rb \/ r\)/);
});
