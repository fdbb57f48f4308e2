import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, Socket, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfigFile } from '../../src/config/load.ts';
import { SimControlClient } from '../../src/sim/control-http.ts';
import { DbConnection } from '../../src/sql/connection.ts';
import type { DbError } from '../../src/errors.ts';
import { ROOT, tempDir } from '../helpers/env.ts';

/** Holds the event loop, as a GC pause or a starved CPU does. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

test('a query answered while the event loop was held up is not a timeout', async () => {
  const dir = tempDir('regent-stall-');
  // The server in a process of its own, so it answers while this one is stalled.
  const sim = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/sim/main.ts'), '--clusters', '1', '--size', '2', '--dir', dir.path], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const conns: DbConnection[] = [];
  try {
    const ready = await new Promise<{ config: string; control: string }>((resolve, reject) => {
      sim.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
      createInterface({ input: sim.stdout! }).once('line', (l) => resolve(JSON.parse(l) as { config: string; control: string }));
    });
    const cluster = loadConfigFile(ready.config).clusters[0]!;
    const replica = cluster.instances[1]!;
    const conn = await DbConnection.open(replica.host, replica.port, cluster.accounts.manager, { connectTimeoutMs: 2000, queryTimeoutMs: 200 });
    conns.push(conn);
    await conn.query('SHOW ALL SLAVES STATUS'); // warm: compiled parsers, buffers

    const pending = conn.query('SHOW ALL SLAVES STATUS');
    // The answer arrives during the stall; the 200 ms timer has expired by the time the loop runs.
    stall(600);
    const rows = await pending;
    assert.equal(rows.length, 1);
    assert.equal(conn.closed, false);

    // A server that really says nothing still times out.
    await new SimControlClient(ready.control).hang(`${replica.host}:${replica.port}`);
    await assert.rejects(conn.query('SHOW ALL SLAVES STATUS'), (e: DbError) => e.kind === 'timeout');
    assert.equal(conn.closed, true);
  } finally {
    for (const c of conns) c.destroy();
    sim.kill('SIGTERM');
    await new Promise((r) => (sim.exitCode !== null ? r(undefined) : sim.once('exit', r)));
    dir.remove();
  }
});

/** Sockets of this process connected to `port` (open handles: what keeps a CLI process alive). */
function socketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof Socket && h.remotePort === port && !h.destroyed).length;
}

test('a server frozen after accepting (SIGSTOP-like: no greeting, no FIN): the timed-out attempt leaves no socket open', async () => {
  // allowHalfOpen: the server side never closes, as a stopped process never does.
  const held: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => held.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const account = { user: 'regent', password: undefined };
    await assert.rejects(DbConnection.open('127.0.0.1', port, account, { connectTimeoutMs: 200, queryTimeoutMs: 200 }), (e: DbError) => e.kind === 'timeout');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(socketsTo(port), 0, 'a socket to the frozen server is still open');
  } finally {
    for (const s of held) s.destroy();
    await new Promise((r) => server.close(r));
  }
});
