import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { managerRefusal } from '../../src/cli/api-client.ts';
import { guardPipes } from '../../src/cli/output.ts';
import { CredentialsWatch, credentialsVerdict, type WatchedCluster } from '../../src/manager/credentials-watch.ts';
import type { InstanceObservation } from '../../src/monitor/observation.ts';
import { createLogger, formatTextRecord, heldDestination, resolveLogFormat } from '../../src/util/log.ts';
import { Secret } from '../../src/util/secret.ts';

/** The pure parts of what an operator sees: log lines, refusals, credential watch (anti-flapping: decision.test.ts). */

/** A destination that records what is written, posing as a terminal or a pipe. */
function sink(isTTY: boolean): NodeJS.WritableStream & { lines: string[] } {
  const lines: string[] = [];
  return { isTTY, lines, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream & { lines: string[] };
}

test('log format: auto is text on a terminal and JSON elsewhere; explicit formats win', () => {
  assert.equal(resolveLogFormat(sink(true), 'auto'), 'text');
  assert.equal(resolveLogFormat(sink(false), 'auto'), 'json');
  assert.equal(resolveLogFormat(sink(true), 'json'), 'json');
  assert.equal(resolveLogFormat(sink(false), 'text'), 'text');
});

test('the text log: time, level symbol, message and its reason without the repeated endpoint; secrets stay censored', () => {
  const out = sink(false);
  const log = createLogger('info', out, 'text');
  log.warn({ event: 'instance_unreachable', instance: '10.0.0.1:3306', reason: '10.0.0.1:3306: connection refused', password: 'hunter2' }, '10.0.0.1:3306 unreachable');
  log.info({ token: new Secret('s3cr3t', 'test') }, 'started');
  log.debug('not shown at info');
  assert.equal(out.lines.length, 2);
  assert.match(out.lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} ⚠ 10\.0\.0\.1:3306 unreachable: connection refused\n$/);
  assert.match(out.lines[1]!, /^\d\d:\d\d:\d\d\.\d{3} ℹ started\n$/);
  assert.ok(!out.lines.join('').includes('hunter2') && !out.lines.join('').includes('s3cr3t'));
  assert.equal(formatTextRecord('not json'), 'not json\n');
  // JSON stays JSON, one object per line.
  const json = sink(false);
  createLogger('info', json, 'json').error({ event: 'x', err: 'boom' }, 'failed');
  assert.equal((JSON.parse(json.lines[0]!) as { msg: string; level: string }).level, 'error');
});

test('a held destination keeps records until released (in order) or discarded', () => {
  const out = sink(true);
  const held = heldDestination(out);
  assert.equal((held as unknown as { isTTY: boolean }).isTTY, true, 'the format decision still sees the terminal');
  held.write('a\n');
  held.write('b\n');
  assert.deepEqual(out.lines, []);
  held.release();
  held.write('c\n');
  assert.deepEqual(out.lines, ['a\n', 'b\n', 'c\n']);
  const other = sink(false);
  const dropped = heldDestination(other);
  dropped.write('x\n');
  dropped.discard();
  assert.deepEqual(other.lines, []);
});

test('EPIPE on an output stream is swallowed, once and again', () => {
  const s = new PassThrough() as unknown as NodeJS.WriteStream;
  guardPipes([s]);
  guardPipes([s]); // installing twice adds no second handler
  assert.equal(s.listenerCount('error'), 1);
  const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  assert.doesNotThrow(() => s.emit('error', epipe));
  assert.doesNotThrow(() => s.emit('error', epipe));
});

test('a refusal from the manager: token or request problems are exit 2, declined actions exit 1', () => {
  assert.deepEqual(managerRefusal({ status: 401, json: { error: 'this action needs the API token' } }, 'switchover'), {
    code: 2,
    line: 'regent: switchover not sent: the manager refused the API token: this action needs the API token (manager.api.token)',
  });
  assert.equal(managerRefusal({ status: 404, json: { error: 'no cluster named "x"' } }, 'ack').code, 2);
  assert.deepEqual(managerRefusal({ status: 409, json: { error: 'x is already the primary' } }, 'switchover'), { code: 1, line: 'regent: switchover refused: x is already the primary' });
});

/** A cluster whose instances' last probes were: 'ok', 'unprobed', or the error kind they failed with. */
function cluster(kinds: string[]): WatchedCluster {
  const probers = new Map<string, { latest: InstanceObservation }>();
  kinds.forEach((k, i) => {
    const id = `db${i + 1}:3306`;
    const latest: InstanceObservation =
      k === 'unprobed' ? { id, at: 0, reachable: false, error: { kind: 'unreachable', message: 'not probed yet' } }
      : k === 'ok' ? { id, at: 1000, reachable: true }
      : { id, at: 1000, reachable: false, error: { kind: k as 'auth', message: `${id}: ${k}` } };
    probers.set(id, { latest });
  });
  return { cluster: { name: 'c', accounts: { manager: { user: 'regent', password: new Secret('x', 'file /etc/regent/manager.pw') } } }, monitor: { probers } };
}

test('credentials verdict: rejected only when every instance refused the login; anything else that answered accepts', () => {
  assert.equal(credentialsVerdict(cluster(['auth', 'auth', 'auth'])), 'rejected');
  assert.equal(credentialsVerdict(cluster(['auth', 'auth', 'unprobed'])), 'pending');
  assert.equal(credentialsVerdict(cluster(['auth', 'refused', 'unprobed'])), 'accepted', 'a refused connection says nothing about credentials, but it answered');
  assert.equal(credentialsVerdict(cluster(['auth', 'ok', 'auth'])), 'accepted');
  assert.equal(credentialsVerdict(cluster(['unprobed', 'unprobed'])), 'pending');
});

test('the credentials watch: an error at once, again every repeatMs while it lasts, info when it ends', () => {
  const out = sink(false);
  const log = createLogger('info', out, 'json');
  const c = cluster(['auth', 'auth']);
  const watch = new CredentialsWatch([c], log, { repeatMs: 60000 });
  const events = () => out.lines.map((l) => JSON.parse(l) as { event: string; level: string; msg: string; instances?: string[] });
  watch.check(1000);
  watch.check(2000);
  watch.check(60999);
  assert.equal(events().length, 1);
  assert.equal(events()[0]!.level, 'error');
  assert.match(events()[0]!.msg, /^cluster c: every instance \(2\) rejects the manager account 'regent': Regent cannot see the cluster, nor fail it over; set the account's password in credentials\.manager \(read from file \/etc\/regent\/manager\.pw\)/);
  watch.check(61000);
  assert.equal(events().length, 2, 'repeated after repeatMs');
  // One instance accepts again: a new line at once naming the one still refusing.
  c.monitor.probers.get('db1:3306')!.latest = { id: 'db1:3306', at: 61100, reachable: true };
  watch.check(61100);
  assert.match(events()[2]!.msg, /^cluster c: 1 of 2 instances \(db2:3306\) rejects the manager account/);
  c.monitor.probers.get('db2:3306')!.latest = { id: 'db2:3306', at: 61200, reachable: true };
  watch.check(61200);
  watch.check(61300);
  assert.deepEqual(events().map((e) => `${e.level} ${e.event}`), ['error credentials_rejected', 'error credentials_rejected', 'error credentials_rejected', 'info credentials_accepted']);
});
