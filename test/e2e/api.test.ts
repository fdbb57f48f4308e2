import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { runCli, startSandbox } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

/** Every body the API sent during this file, scanned for secrets at the end. */
const seen: string[] = [];

describe('HTTP API on a real sandbox', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  let base: string;
  let token: string;
  const id = (n: number) => `127.0.0.1:${sb.node(n).port}`;

  const call = async (method: string, path: string, opts: { body?: unknown; auth?: string | false } = {}) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const auth = opts.auth === undefined ? token : opts.auth;
    if (auth) headers['authorization'] = `Bearer ${auth}`;
    const res = await fetch(`${base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    seen.push(text);
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // /metrics and the dashboard are not JSON
    }
    return { status: res.status, text, json, type: res.headers.get('content-type') ?? '' };
  };

  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    token = readFileSync(join(sb.dir, 'secrets/api-token.pw'), 'utf8').trim();
    base = `http://127.0.0.1:${sb.node(1).port + PORT.api}`;
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await manager.waitFor((e) => e.event === 'router_writer_changed', 5000, 'first analysis');
  });
  after(async () => {
    await manager?.stop();
    // No secret in any response, nor in the manager's log.
    const secrets = readdirSync(join(sb.dir, 'secrets')).map((f) => readFileSync(join(sb.dir, 'secrets', f), 'utf8').trim());
    const haystack = [...seen, ...(manager?.raw ?? [])].join('\n');
    await cleanup?.();
    for (const s of secrets) assert.ok(!haystack.includes(s), 'a configured password or the API token appeared in an API response or the log');
  });

  test('reads: clusters, cluster, problems, instance, plan, recoveries, managers', async () => {
    const all = await call('GET', '/api/v1/clusters');
    assert.equal(all.status, 200);
    const clusters = all.json['clusters'] as { name: string; health: string; primary: string; instances: unknown[] }[];
    assert.equal(clusters[0]!.name, 'sandbox');
    assert.equal(clusters[0]!.primary, id(1));
    assert.equal(clusters[0]!.instances.length, 3);

    const one = await call('GET', '/api/v1/clusters/sandbox');
    assert.equal(one.status, 200);
    assert.equal(one.json['decidedPrimary'], id(1));
    assert.equal((one.json['routing'] as { table: { writer: { target: string } } }).table.writer.target, id(1));

    assert.deepEqual((await call('GET', '/api/v1/clusters/sandbox/problems')).json['problems'], []);
    const inst = await call('GET', `/api/v1/clusters/sandbox/instances/node2`);
    assert.equal(inst.status, 200);
    assert.equal(inst.json['role'], 'replica');
    assert.equal((inst.json['settings'] as { readOnly: boolean }).readOnly, true);
    const plan = await call('GET', '/api/v1/clusters/sandbox/plan');
    assert.equal((plan.json['choice'] as { candidate: string }).candidate, id(2));
    assert.equal((await call('GET', '/api/v1/recoveries')).status, 200);
    const managers = (await call('GET', '/api/v1/managers')).json['managers'] as { leader: boolean; self: boolean }[];
    assert.equal(managers.length, 1);
    assert.equal(managers[0]!.leader, true);
    assert.equal((await call('GET', '/')).type.startsWith('text/html'), true);
  });

  test('errors: unknown cluster, instance, endpoint, method, bad body', async () => {
    assert.equal((await call('GET', '/api/v1/clusters/nope')).status, 404);
    assert.equal((await call('GET', '/api/v1/clusters/sandbox/instances/nope')).status, 404);
    assert.equal((await call('GET', '/api/v1/nothing')).status, 404);
    assert.equal((await call('DELETE', '/api/v1/clusters')).status, 405);
    assert.equal((await call('POST', '/api/v1/clusters/sandbox/instances/node2/repair', { body: { action: 'skip' } })).status, 400);
    assert.equal((await call('PUT', '/api/v1/clusters/sandbox/instances/node2/promotion', { body: { rule: 'always' } })).status, 400);
  });

  test('every action refuses without the token, and with a wrong one', async () => {
    const actions: [string, string, unknown][] = [
      ['POST', '/api/v1/clusters/sandbox/failover', { force: true }],
      ['POST', '/api/v1/clusters/sandbox/switchover', {}],
      ['POST', '/api/v1/clusters/sandbox/ack', {}],
      ['POST', '/api/v1/clusters/sandbox/instances/node2/rejoin', {}],
      ['POST', '/api/v1/clusters/sandbox/instances/node2/repair', { action: 'retry' }],
      ['POST', '/api/v1/clusters/sandbox/instances/node2/maintenance', { minutes: 5 }],
      ['DELETE', '/api/v1/clusters/sandbox/instances/node2/maintenance', undefined],
      ['PUT', '/api/v1/clusters/sandbox/instances/node2/promotion', { rule: 'never' }],
    ];
    for (const [method, path, body] of actions) {
      assert.equal((await call(method, path, { body, auth: false })).status, 401, `${method} ${path} without token`);
      assert.equal((await call(method, path, { body, auth: 'wrong-token' })).status, 401, `${method} ${path} with a wrong token`);
    }
    // Nothing happened.
    assert.equal((await call('GET', '/api/v1/clusters/sandbox')).json['decidedPrimary'], id(1));
  });

  test('actions with the token: maintenance, promotion rule, ack, repair, rejoin refusal, switchover, failover', async () => {
    const m = await call('POST', '/api/v1/clusters/sandbox/instances/node3/maintenance', { body: { minutes: 5 } });
    assert.equal(m.status, 200);
    assert.equal((await call('GET', '/api/v1/clusters/sandbox/instances/node3')).json['maintenance'], true);
    assert.equal((await call('DELETE', '/api/v1/clusters/sandbox/instances/node3/maintenance')).status, 200);
    assert.equal((await call('GET', '/api/v1/clusters/sandbox/instances/node3')).json['maintenance'], false);

    const p = await call('PUT', '/api/v1/clusters/sandbox/instances/node2/promotion', { body: { rule: 'never' } });
    assert.equal(p.status, 200);
    assert.equal((await call('GET', '/api/v1/clusters/sandbox/plan')).json['choice'] && ((await call('GET', '/api/v1/clusters/sandbox/plan')).json['choice'] as { candidate: string }).candidate, id(3));
    assert.equal((await call('PUT', '/api/v1/clusters/sandbox/instances/node2/promotion', { body: { rule: 'neutral' } })).status, 200);

    assert.equal((await call('POST', '/api/v1/clusters/sandbox/ack')).status, 200);
    const repair = await call('POST', '/api/v1/clusters/sandbox/instances/node2/repair', { body: { action: 'retry' } });
    assert.equal(repair.status, 200, repair.text);
    const rejoinPrimary = await call('POST', '/api/v1/clusters/sandbox/instances/node1/rejoin');
    assert.equal(rejoinPrimary.status, 409);

    const sw = await call('POST', '/api/v1/clusters/sandbox/switchover', { body: { target: 'node2' } });
    assert.equal(sw.status, 200, sw.text);
    assert.equal(sw.json['newPrimary'], id(2));
    assert.ok(Array.isArray(sw.json['steps']));

    const refused = await call('POST', '/api/v1/clusters/sandbox/failover', { body: {} });
    assert.equal(refused.status, 409, 'failover of a live primary without force');
    const fo = await call('POST', '/api/v1/clusters/sandbox/failover', { body: { force: true } });
    assert.equal(fo.status, 200, fo.text);
    assert.notEqual(fo.json['newPrimary'], id(2));

    const rec = (await call('GET', '/api/v1/recoveries?cluster=sandbox')).json['recoveries'] as { kind: string; outcome: string; steps: { durationMs: number }[] }[];
    assert.ok(rec.some((r) => r.kind === 'switchover' && r.outcome === 'success'));
    assert.ok(rec.some((r) => r.kind === 'failover' && r.outcome === 'success' && r.steps.every((s) => typeof s.durationMs === 'number')));
  });

  test('events arrive over SSE', async () => {
    const ac = new AbortController();
    const res = await fetch(`${base}/api/v1/events`, { signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    const got: string[] = [];
    const reading = (async () => {
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        got.push(dec.decode(value));
        if (got.join('').includes('"type":"maintenance"')) return;
      }
    })();
    await call('POST', '/api/v1/clusters/sandbox/instances/node3/maintenance', { body: { minutes: 1 } });
    await Promise.race([reading, new Promise((r) => setTimeout(r, 5000))]);
    ac.abort();
    seen.push(got.join(''));
    assert.match(got.join(''), /data: \{"at":\d+,"type":"maintenance","cluster":"sandbox"/);
    await call('DELETE', '/api/v1/clusters/sandbox/instances/node3/maintenance');
  });

  test('/metrics parses as Prometheus text and has the promised series', async () => {
    const m = await call('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.type, /text\/plain/);
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/;
    const names = new Set<string>();
    for (const line of m.text.split('\n')) {
      if (!line || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      assert.match(line, sample, `not Prometheus text format: ${line}`);
      names.add(line.split(/[{ ]/)[0]!);
    }
    for (const series of [
      'regent_instance_up',
      'regent_instance_read_only',
      'regent_replica_lag_seconds',
      'regent_replica_io_thread_running',
      'regent_replica_sql_thread_running',
      'regent_instance_gtid_transactions',
      'regent_probe_latency_seconds',
      'regent_failovers_total',
      'regent_failover_duration_seconds_count',
      'regent_switchovers_total',
      'regent_switchover_duration_seconds_count',
      'regent_leader',
      'regent_router_accepted_total',
      'regent_router_active_connections',
      'regent_router_bytes_total',
      'regent_router_held_connections',
      'regent_router_hold_seconds_count',
      'regent_router_backend_changes_total',
    ])
      assert.ok(names.has(series), `missing series ${series}`);
  });

  test('the CLI acts through the running manager', async () => {
    const r = await runCli(['switchover', '--config', sb.configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /switchover done in \d+ ms/);
    assert.ok(manager.events.some((e) => e.event === 'api_action' && String(e['path']).endsWith('/switchover')));
  });
});
