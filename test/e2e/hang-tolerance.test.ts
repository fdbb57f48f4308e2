// regent-test: alone (measures pauses in milliseconds: runs after the other files, one at a time)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { startSandbox } from '../helpers/env.ts';
import { ManagerProcess, Writer } from '../helpers/manager.ts';

/**
 * failover.hangToleranceMs (default 3000): a primary that stalls (SIGSTOP, then SIGCONT) for less
 * than the tolerance is ridden out, with writes through the writer endpoint only paused; a longer
 * stall is a failover; a crash (kill -9: connections refused) is a failover at once.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOLERANCE_MS = 3000;

describe('hang tolerance: stalls are ridden out, hangs and crashes are failed over', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  let writer: Writer | undefined;
  const api = async (method: string, path: string): Promise<Record<string, unknown>> => {
    const token = readFileSync(join(sb.dir, 'secrets/api-token.pw'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${sb.node(1).port + PORT.api}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return (await res.json()) as Record<string, unknown>;
  };
  const primaryId = () => `127.0.0.1:${sb.node(1).port}`;

  before(async () => {
    // The default tolerance, so the test proves the default; writes go through the writer endpoint.
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    await Writer.prepare(sb);
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await sleep(1000);
    const cfg = sb.config().clusters[0]!;
    assert.equal(cfg.failover.hangToleranceMs, TOLERANCE_MS);
    const [host, port] = cfg.router.writer!.split(':');
    writer = new Writer(sb, () => ({ host: host!, port: Number(port) }));
  });
  after(async () => {
    await writer?.stop();
    for (const n of sb?.nodes ?? []) {
      try {
        sb.resume(n);
      } catch {
        // not running
      }
    }
    await manager?.stop();
    await cleanup?.();
  });

  for (const stallMs of [500, 1000, 2000]) {
    test(`a ${stallMs} ms stall under writes: no failover, no errant transaction, nothing blocked`, async (t) => {
      const mark = manager.events.length;
      const ackedBefore = writer!.acked.length;
      const failuresBefore = writer!.failures.length;
      sb.pause(sb.node(1));
      await sleep(stallMs);
      sb.resume(sb.node(1));
      // Long enough for a failover that was going to happen to have happened.
      await sleep(TOLERANCE_MS + 1500);
      const started = manager.events.slice(mark).filter((e) => e.event === 'failover_started');
      assert.deepEqual(started, [], 'a stall shorter than the hang tolerance was failed over');
      const cluster = await api('GET', '/api/v1/clusters/sandbox');
      assert.equal(cluster['decidedPrimary'], primaryId());
      assert.equal(cluster['blockedUntil'], undefined, 'automatic failover blocked after a stall');
      assert.deepEqual((cluster['state'] as { fenced: string[] }).fenced, []);
      const problems = (cluster['problems'] as { code: string }[]).map((p) => p.code);
      assert.ok(!problems.includes('ErrantGtid'), `errant transactions after a ${stallMs} ms stall: ${problems.join(', ')}`);
      assert.deepEqual(problems, [], `the cluster did not settle after a ${stallMs} ms stall`);
      assert.ok(writer!.acked.length > ackedBefore + 10, 'writes did not go on after the stall');
      assert.equal(writer!.failures.length, failuresBefore, `writes failed during a ${stallMs} ms stall: ${JSON.stringify(writer!.failures.slice(failuresBefore))}`);
      const silent = manager.events.slice(mark).find((e) => e.event === 'problem_started' && e['code'] === 'UnreachablePrimary');
      t.diagnostic(`${stallMs} ms stall: ${silent ? 'reported as UnreachablePrimary, ' : ''}no failover, ${writer!.acked.length - ackedBefore} writes acknowledged meanwhile`);
    });
  }

  test(`a stall of tolerance + 1 s (${TOLERANCE_MS + 1000} ms) is failed over within tolerance + 0.5 s`, async (t) => {
    const mark = manager.events.length;
    const stoppedAt = Date.now();
    sb.pause(sb.node(1));
    const started = await manager.waitFor((e) => e.event === 'failover_started', TOLERANCE_MS + 5000, 'failover of a hung primary', mark);
    // Writable when the promote step ended (read_only=OFF returned); the failover ends later, after
    // re-pointing the replicas (one reconnecting to the frozen primary may take MariaDB 2 s to stop).
    const promoted = await manager.waitFor((e) => e.event === 'failover_step' && e['step'] === 'promote', 10000, 'the new primary promoted', mark);
    const done = await manager.waitFor((e) => e.event === 'failover_succeeded', 10000, 'failover done', mark);
    const detect = Date.parse(started.time) - stoppedAt;
    const writable = Date.parse(promoted.time) - stoppedAt;
    t.diagnostic(`hung primary: failover started ${detect} ms after SIGSTOP, new primary writable after ${writable} ms, failover done after ${Date.parse(done.time) - stoppedAt} ms (tolerance ${TOLERANCE_MS} ms)`);
    await sleep(Math.max(0, stoppedAt + TOLERANCE_MS + 1000 - Date.now()));
    sb.resume(sb.node(1));
    assert.ok(detect >= TOLERANCE_MS - 600, `failed over ${detect} ms after the stall began, before the tolerance (the last answer can precede the stall by a probe interval)`);
    assert.ok(writable <= TOLERANCE_MS + 500, `new primary writable ${writable} ms after the stall began (tolerance ${TOLERANCE_MS} ms)`);
    // The old primary wakes up writable and is fenced at once.
    await manager.waitFor((e) => e.event === 'fenced_stray_primary', 10000, 'fence of the woken primary', mark);
  });

  test('a crash (kill -9) is still failed over in well under a second', async (t) => {
    // Anti-flapping blocks a second automatic failover until acknowledged.
    assert.ok((await api('POST', '/api/v1/clusters/sandbox/ack'))['acknowledgedAt']);
    const cluster = await api('GET', '/api/v1/clusters/sandbox');
    const primary = sb.nodes.find((n) => `127.0.0.1:${n.port}` === cluster['decidedPrimary'])!;
    assert.ok(primary && primary !== sb.node(1));
    const mark = manager.events.length;
    const killedAt = Date.now();
    await sb.kill(primary);
    const done = await manager.waitFor((e) => e.event === 'failover_succeeded', 10000, 'failover after kill -9', mark);
    const took = Date.parse(done.time) - killedAt;
    t.diagnostic(`kill -9: new primary writable ${took} ms after the kill`);
    assert.ok(took < 1000, `kill -9 failed over in ${took} ms`);
  });
});
