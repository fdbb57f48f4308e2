import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { eventually, runCli, startSandbox } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';
import { dashboardExpressions, matches, parseExposition, ruleExpressions, selectors } from '../helpers/promql.ts';

/**
 * The alerting rules and the Grafana dashboard in deploy/ against a real manager's /metrics: every
 * series they select (name and label matchers) is there from the start, before anything happened,
 * so an alert can never sit silent on a series that does not exist yet. Then the anti-flapping gauge
 * across a real failover and `regent ack`.
 */
describe('deploy/ rules and dashboard against a live /metrics', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  let manager: ManagerProcess | undefined;
  let base: string;

  const scrape = async () => {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    return parseExposition(await res.text());
  };

  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    base = `http://127.0.0.1:${sb.node(1).port + PORT.api}`;
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await manager.waitFor((e) => e.event === 'router_writer_changed', 5000, 'first analysis');
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('every series selected by an alerting rule or a dashboard panel exists before any event', async () => {
    const samples = await scrape();
    const exprs = [...ruleExpressions().map((r) => ({ name: `alert ${r.name}`, expr: r.expr })), ...dashboardExpressions()];
    const all = exprs.flatMap((e) => selectors(e.expr).map((s) => ({ ...s, where: e.name })));
    // Not vacuous: the rules alone select these (and the parse found them).
    for (const name of ['regent_instance_is_primary', 'regent_instance_up', 'regent_failovers_total', 'regent_failover_blocked', 'regent_replica_lag_seconds', 'regent_instance_errant_transactions', 'regent_instance_credentials_rejected', 'regent_leader', 'regent_router_held_connections'])
      assert.ok(all.some((s) => s.name === name), `no rule or panel selects ${name}`);
    const missing = all.filter((sel) => !samples.some((s) => matches(sel, s)));
    assert.deepEqual(
      missing.map((m) => `${m.where}: ${m.name}{${m.matchers.map((x) => `${x.label}${x.op}"${x.value}"`).join(',')}}`),
      [],
      'selected by deploy/ but not exported by a fresh manager',
    );
  });

  test('regent_failover_blocked: 0, then 1 after a failover (anti-flapping), 0 again after regent ack', { timeout: 60000 }, async () => {
    const value = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return /^regent_failover_blocked\{cluster="sandbox"\} (\S+)$/m.exec(text)?.[1];
    };
    assert.equal(await value(), '0');
    const since = manager!.events.length;
    await sb.kill(sb.node(1));
    await manager!.waitFor((e) => e.event === 'failover_succeeded', 20000, 'failover', since);
    await eventually(async () => (await value()) === '1', 5000, 'regent_failover_blocked 1 after the failover');
    const ack = await runCli(['ack', '--config', sb.configFile]);
    assert.equal(ack.code, 0, ack.stderr);
    await eventually(async () => (await value()) === '0', 5000, 'regent_failover_blocked 0 after regent ack');
  });
});
