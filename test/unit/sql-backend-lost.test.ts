import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { BackendConnection, BackendFailed } from '../../src/router/sql/backend.ts';
import { frame, PacketReader } from '../../src/router/sql/packets.ts';
import { buildGreeting, CAP, ENDPOINT_CAPS, okPacket, queryPayload, STATUS } from '../../src/router/sql/protocol.ts';
import { ResponseRelay } from '../../src/router/sql/response.ts';

/**
 * A primary connection lost with a COMMIT outstanding: whether the server can have read it decides
 * between sending the COMMIT again (never read) and "in doubt" (an error for that statement).
 * A server process that dies closes its sockets the way `destroy()` does here: a FIN when it had
 * read everything, and a reset for any data that reaches the closed socket afterwards. The hard
 * case is a COMMIT written after the FIN arrived but before the event loop saw it: the busy waits
 * below make that moment happen on purpose.
 */

const busy = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};

/** A server that logs the endpoint in and answers its init statement, then hands over the socket. */
async function server(): Promise<{ port: number; socket: Promise<Socket>; close: () => void }> {
  let give!: (s: Socket) => void;
  const socket = new Promise<Socket>((r) => (give = r));
  const srv = createServer((sock) => {
    sock.on('error', () => {});
    const reader = new PacketReader(1 << 20);
    let answered = 0;
    sock.write(frame(buildGreeting({ version: '10.11.6-MariaDB', connectionId: 9, scramble: Buffer.from('0123456789abcdefghij'), caps: ENDPOINT_CAPS, charset: 45, status: STATUS.AUTOCOMMIT, plugin: 'mysql_native_password' }), 0));
    const onData = (d: Buffer) => {
      reader.push(d);
      for (let p = reader.next(); p; p = reader.next()) {
        // The handshake response, then the init statement: OK to both.
        sock.write(okPacket(p.lastSeq + 1, STATUS.AUTOCOMMIT));
        if (++answered === 2) {
          sock.off('data', onData);
          give(sock);
        }
      }
    };
    sock.on('data', onData);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as { port: number }).port, socket, close: () => srv.close() };
}

async function login(port: number): Promise<BackendConnection> {
  return BackendConnection.open({
    id: `127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    user: 'app',
    credential: { kind: 'password', password: 'x' },
    charset: 45,
    caps: (ENDPOINT_CAPS & ~CAP.COMPRESS) | CAP.SESSION_TRACK,
    connectTimeoutMs: 5000,
    maxPacket: 1 << 24,
    init: ["SET SESSION session_track_system_variables='*'"],
  });
}

/** Sends COMMIT through the connection; resolves with how it failed. */
function commit(b: BackendConnection): Promise<BackendFailed> {
  return new Promise((resolve, reject) =>
    b.relay(frame(queryPayload('COMMIT'), 0), new ResponseRelay('result', { clientSessionTrack: true }), () => {}, () => reject(new Error('COMMIT answered')), (e) => resolve(e as BackendFailed)),
  );
}

test('lost connection: a COMMIT written after the server closed (FIN seen late) was never read', async () => {
  const s = await server();
  try {
    const b = await login(s.port);
    const sock = await s.socket;
    sock.destroy(); // the server process dies with nothing of ours unread: a FIN
    busy(50); // the FIN is in our socket; this event loop has not seen it
    const failed = commit(b); // written to a socket whose peer is gone: the peer's kernel resets it
    busy(50);
    const e = await failed;
    assert.ok(e instanceof BackendFailed);
    assert.equal(e.detail.sent, true);
    assert.equal(e.detail.unread, true, `a reset proves the COMMIT unread: ${e.message}`);
  } finally {
    s.close();
  }
});

test('lost connection: a COMMIT the server read before it died is in doubt', async () => {
  const s = await server();
  try {
    const b = await login(s.port);
    const sock = await s.socket;
    const read = new Promise<void>((r) => sock.once('data', () => r()));
    const failed = commit(b);
    await read; // the server has the COMMIT, and then dies
    sock.destroy();
    const e = await failed;
    assert.equal(e.detail.sent, true);
    assert.equal(e.detail.unread, false, `read by the server: it may have committed: ${e.message}`);
  } finally {
    s.close();
  }
});
