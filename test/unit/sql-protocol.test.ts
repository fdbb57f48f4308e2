import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { MariaGtidPosition } from '../../src/gtid/index.ts';
import { checkLogin, ed25519Sign, hostMatches, matchAccount, nativeToken, recoverSha1Password, sha1 } from '../../src/router/sql/auth.ts';
import { classify } from '../../src/router/sql/classify.ts';
import { compressFrames, Decompressor, frame, MAX_FRAME, PacketReader, PacketTooLarge } from '../../src/router/sql/packets.ts';
import { eofPayload, errPayload } from '../../src/router/sql/protocol.ts';
import { ResponseRelay } from '../../src/router/sql/response.ts';
import { route, type RouteContext, type SessionView } from '../../src/router/sql/route.ts';

test('frames: a packet over 16 MiB is split and read back whole, with its sequence ids', () => {
  const payload = Buffer.alloc(MAX_FRAME + 10, 7);
  const raw = frame(payload, 3);
  const r = new PacketReader(64 << 20);
  for (let i = 0; i < raw.length; i += 65536) r.push(raw.subarray(i, i + 65536));
  const p = r.next()!;
  assert.equal(p.payload.length, payload.length);
  assert.equal(p.seq, 3);
  assert.equal(p.lastSeq, 4);
  assert.equal(r.next(), undefined);
});

test('frames: a packet announced bigger than the limit throws before it is buffered', () => {
  const r = new PacketReader(1 << 20);
  const h = Buffer.alloc(4);
  h.writeUIntLE(2 << 20, 0, 3);
  r.push(h);
  assert.throws(() => r.next(), PacketTooLarge);
});

test('compression: frames round-trip, sequence ids advance', () => {
  const data = Buffer.concat([frame(Buffer.from('x'.repeat(500)), 1), frame(Buffer.from('y'), 2)]);
  const { out, nextSeq } = compressFrames(data, 1);
  assert.equal(nextSeq, 2);
  const d = new Decompressor();
  assert.deepEqual(Buffer.concat(d.push(out)), data);
  assert.equal(d.lastSeq, 1);
});

test('response relay: a result set ends at its last EOF, across chunk boundaries, and passes bytes unchanged', () => {
  const packets = [Buffer.from([1]), Buffer.from('coldef'), eofPayload(2), Buffer.from([1, 0x41]), Buffer.from([1, 0x42]), eofPayload(2)];
  const raw = Buffer.concat(packets.map((p, i) => frame(p, i + 1)));
  for (const cut of [1, 5, 9, 13, raw.length - 3]) {
    const relay = new ResponseRelay('result', { clientSessionTrack: true });
    const out: Buffer[] = [];
    relay.feed(raw.subarray(0, cut), out);
    assert.equal(relay.done, false);
    relay.feed(raw.subarray(cut), out);
    assert.equal(relay.done, true);
    assert.deepEqual(Buffer.concat(out), raw);
  }
});

test('response relay: MORE_RESULTS keeps it going; ERR ends it', () => {
  const relay = new ResponseRelay('result', { clientSessionTrack: true });
  const ok = (status: number) => Buffer.from([0, 0, 0, status & 0xff, status >> 8, 0, 0]);
  relay.feed(frame(ok(8 | 2), 1), []);
  assert.equal(relay.done, false);
  relay.feed(frame(errPayload({ code: 1064, state: '42000' }, 'syntax'), 2), []);
  assert.equal(relay.done, true);
  assert.equal(relay.summary.error?.code, 1064);
});

test('mysql_native_password: the reply yields SHA1(password), which answers any other scramble', () => {
  const pw = Buffer.from('s3cret');
  const stored = sha1(sha1(pw));
  const s1 = Buffer.from('abcdefghijklmnopqrst');
  const s2 = Buffer.from('ABCDEFGHIJKLMNOPQRST');
  const reply = nativeToken(sha1(pw), s1);
  const recovered = recoverSha1Password(reply, s1, stored)!;
  assert.deepEqual(recovered, sha1(pw));
  assert.deepEqual(nativeToken(recovered, s2), nativeToken(sha1(pw), s2));
  assert.equal(recoverSha1Password(nativeToken(sha1(Buffer.from('wrong')), s1), s1, stored), undefined);
  const rows = [{ user: 'app', host: '127.0.0.1', plugin: 'mysql_native_password', auth: `*${stored.toString('hex').toUpperCase()}` }, { user: 'ed', host: '%', plugin: 'ed25519', auth: 'x' }];
  assert.equal(checkLogin(rows, 'app', '127.0.0.1', reply, s1, () => undefined).ok, true);
  assert.deepEqual(checkLogin(rows, 'app', '127.0.0.1', Buffer.alloc(20), s1, () => undefined), { ok: false, reason: 'bad_password' });
  assert.deepEqual(checkLogin(rows, 'nobody', '127.0.0.1', reply, s1, () => undefined), { ok: false, reason: 'unknown_user' });
  assert.deepEqual(checkLogin(rows, 'ed', '127.0.0.1', reply, s1, () => undefined), { ok: false, reason: 'plugin_unsupported', plugin: 'ed25519' });
  assert.equal(checkLogin(rows, 'ed', '127.0.0.1', nativeToken(sha1(Buffer.from('edpw')), s1), s1, () => 'edpw').ok, true);
});

test('accounts: host patterns and the most specific match', () => {
  assert.ok(hostMatches('10.0.%', '10.0.3.4'));
  assert.ok(!hostMatches('10.0.%', '10.1.3.4'));
  assert.ok(hostMatches('10.0.0.0/255.255.0.0', '::ffff:10.0.9.9'));
  const rows = [
    { user: 'app', host: '%', plugin: 'mysql_native_password', auth: '' },
    { user: 'app', host: '10.0.0.5', plugin: 'mysql_native_password', auth: '' },
    { user: '', host: '10.0.0.5', plugin: 'mysql_native_password', auth: '' },
  ];
  assert.equal(matchAccount(rows, 'app', '10.0.0.5')?.host, '10.0.0.5');
  assert.equal(matchAccount(rows, 'app', '10.0.0.6')?.host, '%');
});

test('client_ed25519: the signature is standard Ed25519 with the password as seed (checked with node:crypto)', () => {
  const seed = Buffer.alloc(32, 9);
  const msg = Buffer.from('0123456789abcdef0123456789abcdef');
  const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  assert.deepEqual(ed25519Sign(seed, msg), sign(null, msg, key));
  assert.ok(verify(null, msg, createPublicKey(key), ed25519Sign(seed, msg)));
});

test('route: writes, transactions and pins to the primary; reads to a replica that has the session\'s GTIDs', () => {
  const table = { writer: { mode: 'route' as const, target: 'p:1' }, readers: ['r:2', 'r:3'], excluded: {} };
  const g = (t: string) => MariaGtidPosition.parse(t);
  const ctx: RouteContext = { table, applied: new Map([['r:2', g('0-1-5')], ['r:3', g('0-1-9')]]), lag: new Map([['r:2', 0], ['r:3', 0]]), mode: 'session', waitTimeoutMs: 1000, hints: true, cursor: 0 };
  const s: SessionView = { trx: 'none', autocommit: true };
  assert.deepEqual(route(classify('UPDATE t SET a = 1'), s, ctx).route, { to: 'primary', reason: 'write' });
  assert.deepEqual(route(classify('SELECT 1'), { ...s, trx: 'primary' }, ctx).route, { to: 'primary', reason: 'transaction' });
  assert.deepEqual(route(classify('SELECT 1'), { ...s, pinned: 'temporary table' }, ctx).route, { to: 'primary', reason: 'session_bound' });
  assert.deepEqual(route(classify('SELECT 1'), { ...s, autocommit: false }, ctx).route, { to: 'primary', reason: 'transaction' });
  assert.deepEqual(route(classify('SELECT my_f()'), s, ctx).route, { to: 'primary', reason: 'unsure' });
  assert.equal(route(classify('/* regent:replica */ SELECT my_f()'), s, ctx).route.to, 'replica');
  assert.deepEqual(route(classify('SELECT 1'), { ...s, written: g('0-1-7') }, ctx).route, { to: 'replica', id: 'r:3', reason: 'read' });
  const waiting = route(classify('SELECT 1'), { ...s, written: g('0-1-12') }, ctx).route;
  assert.equal(waiting.to === 'replica' && waiting.wait?.toString(), '0-1-12');
  assert.deepEqual(route(classify('SELECT 1'), { ...s, written: g('0-1-12') }, { ...ctx, lag: new Map([['r:2', 5], ['r:3', 3]]) }).route, { to: 'primary', reason: 'causal_wait' });
  assert.equal(route(classify('SELECT 1'), { ...s, written: g('0-1-12') }, { ...ctx, mode: 'none' }).route.to, 'replica');
  assert.deepEqual(route(classify('SELECT 1'), s, { ...ctx, table: { ...table, readers: [] } }).route, { to: 'primary', reason: 'no_replica' });
});
