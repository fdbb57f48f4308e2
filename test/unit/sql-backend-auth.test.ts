import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, privateDecrypt, constants } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { BackendConnection, BackendRefused } from '../../src/router/sql/backend.ts';
import { frame, PacketReader, type Packet } from '../../src/router/sql/packets.ts';
import { buildAuthSwitch, buildGreeting, CAP, COM, ENDPOINT_CAPS, errPacket, okPacket, parseHandshakeResponse, STATUS } from '../../src/router/sql/protocol.ts';

/**
 * The endpoint logging in to a server as an account with caching_sha2_password (MySQL 8's default)
 * whose password is configured: no MySQL server is part of the suite, so a scripted server on
 * 127.0.0.1 plays MySQL's side of the exchange and checks what the endpoint sends, by the
 * plugin's own rules (fast path token, full authentication with the server's RSA key).
 */

const sha256 = (...b: Buffer[]) => {
  const h = createHash('sha256');
  for (const x of b) h.update(x);
  return h.digest();
};
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i % b.length]!));
const PASSWORD = 'sha2-Secret!';
const NONCE = Buffer.from('0123456789abcdefghij');

/** What the scripted server does after the greeting, packet by packet. */
type Script = (c: { next: () => Promise<Packet>; send: (payload: Buffer, seq: number) => void; raw: Socket }) => Promise<void>;

async function scriptedServer(plugin: string, script: Script): Promise<{ server: Server; port: number; done: Promise<void> }> {
  let finish!: (e?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => (finish = (e) => (e ? reject(e) : resolve())));
  const server = createServer((sock) => {
    const reader = new PacketReader(1 << 20);
    const waiting: ((p: Packet) => void)[] = [];
    const queue: Packet[] = [];
    sock.on('data', (d: Buffer) => {
      reader.push(d);
      for (let p = reader.next(); p; p = reader.next()) {
        const w = waiting.shift();
        if (w) w(p);
        else queue.push(p);
      }
    });
    sock.on('error', () => {});
    const next = () => new Promise<Packet>((r) => (queue.length > 0 ? r(queue.shift()!) : waiting.push(r)));
    const send = (payload: Buffer, seq: number) => sock.write(frame(payload, seq));
    send(buildGreeting({ version: '8.0.36', connectionId: 7, scramble: NONCE, caps: ENDPOINT_CAPS, charset: 45, status: STATUS.AUTOCOMMIT, plugin }), 0);
    script({ next, send, raw: sock }).then(() => finish(), finish);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, done };
}

/** Answers the endpoint's own statements after login (session tracking) with OK. */
async function answerInit(c: Parameters<Script>[0]): Promise<void> {
  const q = await c.next();
  assert.equal(q.payload[0], COM.QUERY);
  assert.match(q.payload.toString('utf8', 1), /^SET SESSION session_track/);
  c.raw.write(okPacket(1, STATUS.AUTOCOMMIT));
}

function open(port: number, password = PASSWORD) {
  return BackendConnection.open({
    id: `127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    user: 'app8',
    credential: { kind: 'password', password },
    charset: 45,
    caps: (ENDPOINT_CAPS & ~CAP.COMPRESS) | CAP.SESSION_TRACK,
    connectTimeoutMs: 5000,
    maxPacket: 1 << 24,
    init: ["SET SESSION session_track_system_variables='*', session_track_schema=ON, session_track_gtids='OWN_GTID'"],
  });
}

/** caching_sha2_password's fast-path check, as the server does it from SHA256(SHA256(password)). */
function fastPathOk(token: Buffer, nonce: Buffer): boolean {
  const stage2 = sha256(sha256(Buffer.from(PASSWORD)));
  const candidate = xor(token, sha256(stage2, nonce));
  return sha256(candidate).equals(stage2);
}

test('caching_sha2_password, fast path: the token answers the server\'s nonce, the server says fast auth succeeded, then OK', async () => {
  const { server, port, done } = await scriptedServer('caching_sha2_password', async (c) => {
    const hs = parseHandshakeResponse((await c.next()).payload);
    assert.equal(hs.user, 'app8');
    assert.equal(hs.plugin, 'caching_sha2_password');
    assert.ok(fastPathOk(hs.authResponse, NONCE), 'the fast-path token is right');
    c.send(Buffer.from([0x01, 0x03]), 2);
    c.send(okPacket(3, STATUS.AUTOCOMMIT).subarray(4), 3);
    await answerInit(c);
  });
  try {
    const b = await open(port);
    assert.equal(b.closed, false);
    b.quit();
    await done;
  } finally {
    server.close();
  }
});

test('caching_sha2_password, full authentication without TLS: the password goes RSA-encrypted with the server\'s public key, never in clear', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const { server, port, done } = await scriptedServer('caching_sha2_password', async (c) => {
    const hs = parseHandshakeResponse((await c.next()).payload);
    assert.ok(fastPathOk(hs.authResponse, NONCE));
    // Not in the server's cache: full authentication.
    c.send(Buffer.from([0x01, 0x04]), 2);
    const ask = await c.next();
    assert.deepEqual([...ask.payload], [0x02], 'the endpoint asks for the public key (no TLS here)');
    c.send(Buffer.concat([Buffer.from([0x01]), Buffer.from(pem)]), ask.lastSeq + 1);
    const enc = await c.next();
    assert.ok(!enc.payload.includes(Buffer.from(PASSWORD)), 'the password is not sent in clear');
    const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, enc.payload);
    assert.equal(xor(plain, NONCE).toString('utf8'), `${PASSWORD}\0`);
    c.send(okPacket(0, STATUS.AUTOCOMMIT).subarray(4), enc.lastSeq + 1);
    await answerInit(c);
  });
  try {
    const b = await open(port);
    b.quit();
    await done;
  } finally {
    server.close();
  }
});

test('an AuthSwitchRequest to caching_sha2_password gets the token for the new nonce; a refusal comes back as the server\'s error', async () => {
  const fresh = Buffer.from('ZYXWVUTSRQPONMLKJIHG');
  const { server, port, done } = await scriptedServer('mysql_native_password', async (c) => {
    await c.next();
    c.send(buildAuthSwitch('caching_sha2_password', fresh), 2);
    const reply = await c.next();
    assert.ok(fastPathOk(reply.payload, fresh), 'the token answers the nonce of the switch');
    c.send(Buffer.from([0x01, 0x03]), reply.lastSeq + 1);
    c.send(okPacket(0, STATUS.AUTOCOMMIT).subarray(4), reply.lastSeq + 2);
    await answerInit(c);
  });
  try {
    (await open(port)).quit();
    await done;
  } finally {
    server.close();
  }
  const refusing = await scriptedServer('caching_sha2_password', async (c) => {
    const hs = parseHandshakeResponse((await c.next()).payload);
    assert.ok(!fastPathOk(hs.authResponse, NONCE), 'a wrong password does not make a right token');
    c.raw.write(errPacket({ code: 1045, state: '28000' }, "Access denied for user 'app8'@'127.0.0.1' (using password: YES)", 2));
  });
  try {
    await assert.rejects(open(refusing.port, 'wrong'), (e: unknown) => e instanceof BackendRefused && e.err.code === 1045);
    await refusing.done;
  } finally {
    refusing.server.close();
  }
});
