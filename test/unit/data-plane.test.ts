import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { DataPlane } from '../../src/router/data-plane.ts';
import { isAlive } from '../../src/util/processes.ts';
import { silentLogger } from '../../src/util/log.ts';
import { eventually } from '../helpers/env.ts';

// The router's data plane with real processes and sockets, against a TCP echo server (no database
// needed: the bytes are opaque to it).

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** An echo backend and a front listener that hands every accepted socket to the data plane. */
async function rig(plane: DataPlane) {
  const echo = createServer((s) => s.pipe(s));
  const backend = { host: '127.0.0.1', port: await listen(echo) };
  const ids: number[] = [];
  const closes: { id: number; from: number; to: number }[] = [];
  const front = createServer({ pauseOnConnect: true }, (c) => {
    const id = plane.pipe(c, backend, (from, to) => closes.push({ id: id!, from, to }));
    if (id === undefined) c.destroy();
    else ids.push(id);
  });
  const port = await listen(front);
  const client = async (): Promise<Socket> => {
    const s = connect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    return s;
  };
  const roundTrip = async (s: Socket, text: string): Promise<string> => {
    s.write(text);
    const [data] = (await once(s, 'data')) as [Buffer];
    return data.toString();
  };
  const stop = async () => {
    front.close();
    echo.close();
  };
  return { ids, closes, client, roundTrip, stop };
}

describe('data plane with pipe processes', () => {
  let plane: DataPlane;
  let r: Awaited<ReturnType<typeof rig>>;
  before(async () => {
    plane = new DataPlane(2, silentLogger);
    await plane.start();
    r = await rig(plane);
  });
  after(async () => {
    await plane.stop();
    await r.stop();
  });

  test('starts the processes and pipes bytes both ways, spreading connections', async () => {
    assert.equal(plane.pids.length, 2);
    const a = await r.client();
    const b = await r.client();
    assert.equal(await r.roundTrip(a, 'hello'), 'hello');
    assert.equal(await r.roundTrip(b, 'world'), 'world');
    const closedA = once(a, 'close');
    assert.equal(await plane.close([r.ids.at(-2)!]), 1);
    await closedA;
    assert.equal(await r.roundTrip(b, 'still'), 'still');
    b.destroy();
    await eventually(async () => r.closes.length === 2, 3000, 'both closes reported');
    const bytes = r.closes.find((c) => c.id === r.ids.at(-1))!;
    assert.deepEqual([bytes.from, bytes.to], [10, 10]);
  });

  test('a killed pipe process takes its connections and is replaced', async () => {
    const s = await r.client();
    assert.equal(await r.roundTrip(s, 'x'), 'x');
    const before = plane.pids;
    assert.equal(before.length, 2, 'two pipe processes to kill');
    const closed = once(s, 'close');
    const reported = r.closes.length;
    // Kill both: whichever carried the connection, it ends.
    for (const pid of before) process.kill(pid, 'SIGKILL');
    await closed;
    await eventually(async () => r.closes.length === reported + 1, 3000, 'close reported for the lost connection');
    await eventually(async () => plane.available && plane.pids.length === 2 && plane.pids.every((p) => !before.includes(p)), 10000, 'two new pipe processes');
    const t = await r.client();
    assert.equal(await r.roundTrip(t, 'back'), 'back');
    t.destroy();
  });

  test('a pipe process that does not answer a close is killed: the fence does not wait forever', async () => {
    const s = await r.client();
    assert.equal(await r.roundTrip(s, 'y'), 'y');
    const id = r.ids.at(-1)!;
    const pids = plane.pids;
    assert.equal(pids.length, 2, 'two pipe processes to stop');
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      const started = Date.now();
      assert.equal(await plane.close([id]), 1);
      assert.ok(Date.now() - started < 5000);
      await once(s, 'close');
    } finally {
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
    }
    await eventually(async () => plane.pids.length === 2, 10000, 'replacement process');
  });

  test('stop ends every pipe process', async () => {
    const pids = plane.pids;
    // Without this, an empty list would pass the loop below without checking anything.
    assert.equal(pids.length, 2, 'two pipe processes running before stop');
    await plane.stop();
    for (const pid of pids) assert.equal(isAlive(pid), false, `pipe process ${pid} still running`);
  });
});

describe('data plane on the manager event loop (routerProcesses: 0)', () => {
  test('pipes and closes in process', async () => {
    const plane = new DataPlane(0, silentLogger);
    await plane.start();
    const r = await rig(plane);
    try {
      assert.deepEqual(plane.pids, []);
      const s = await r.client();
      assert.equal(await r.roundTrip(s, 'inline'), 'inline');
      const closed = once(s, 'close');
      assert.equal(await plane.close([r.ids[0]!]), 1);
      await closed;
      assert.equal(r.closes.length, 1);
    } finally {
      await plane.stop();
      await r.stop();
    }
  });
});
