import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { autoRouterProcesses } from '../../src/config/load.ts';
import { isAlive, readPidFile } from '../../src/util/processes.ts';
import { dataPlanePaths } from '../../src/router/dataplane.ts';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { eventually, freePorts, runCli, startSandbox } from '../helpers/env.ts';
import { ManagerProcess, Writer, type LogEvent } from '../helpers/manager.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const failoverDone = (e: LogEvent) => e.event === 'failover_succeeded';

function routerPorts(sb: Sandbox): { writer: number; reader: number } {
  const base = sb.node(1).port;
  return { writer: base + PORT.writer, reader: base + PORT.reader };
}

function editConfig(sb: Sandbox, edit: (cluster: Record<string, unknown>) => void): void {
  const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { clusters: Record<string, unknown>[] };
  edit(doc.clusters[0]!);
  writeFileSync(sb.configFile, toYaml(doc));
}

async function serverIdVia(port: number, sb: Sandbox): Promise<number> {
  const app = sb.appAccount();
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database, connectTimeout: 3000 });
  try {
    const [rows] = (await c.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
    return Number(rows[0]!.s);
  } finally {
    await c.end();
  }
}

async function readerSpread(port: number, sb: Sandbox, n = 12): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const s = await serverIdVia(port, sb);
    seen.set(s, (seen.get(s) ?? 0) + 1);
  }
  return seen;
}


/** Every acknowledged write exists on the new primary, and each landed on the node that was primary then. */
async function checkWrites(sb: Sandbox, writer: Writer, newPrimaryPort: number, fenceAt: number, oldServerId: number, newServerId: number): Promise<void> {
  const c = sb.nodes.find((n) => n.port === newPrimaryPort)!;
  const [rows] = (await sb.sql(c, ['SELECT id, server_id, at FROM app.writes'])) as [{ id: number; server_id: number; at: number }[]];
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  const lost = writer.acked.filter((a) => !byId.has(a.id));
  assert.deepEqual(lost, [], `${lost.length} of ${writer.acked.length} acknowledged writes are missing`);
  for (const r of rows) {
    const sid = Number(r.server_id);
    assert.ok(sid === oldServerId || sid === newServerId, `write ${r.id} landed on server ${sid}`);
    // Sent after the fence: it can only have gone to the new primary.
    if (Number(r.at) > fenceAt + 5) assert.equal(sid, newServerId, `write ${r.id} sent ${Number(r.at) - fenceAt} ms after the fence landed on the old primary`);
  }
  assert.ok(rows.some((r) => Number(r.server_id) === newServerId), 'no write reached the new primary');
}

/** PIDs of the router pipe processes a process runs (its children running pipe-process.mjs). */
function pipeProcesses(parentPid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=,args=', '--ppid', String(parentPid)], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((l) => l.includes('pipe-process'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

// On this 2-core machine `routerProcesses: auto` pipes on the manager's event loop; the same
// scenario runs again with two pipe processes, the default on bigger machines.
for (const routerProcesses of ['auto', 2] as const) describe(`built-in router (routerProcesses: ${routerProcesses}): writer endpoint across a kill -9 failover`, () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, managerOverrides: { routerProcesses } }));
    await Writer.prepare(sb);
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await manager.waitFor((e) => e.event === 'router_writer_changed', 5000, 'writer routing');
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('new connections are held and then succeed on the new primary; no write lands on a non-primary', async () => {
    const { writer: writerPort } = routerPorts(sb);
    assert.equal(await serverIdVia(writerPort, sb), 1);
    const writer = new Writer(sb, () => ({ host: '127.0.0.1', port: writerPort }));
    await sleep(1000);
    const before = writer.acked.length;
    await sb.kill(sb.node(1));
    const started = await manager.waitFor((e) => e.event === 'failover_started', 10000, 'failover start');
    const done = await manager.waitFor(failoverDone, 10000, 'failover');
    await sleep(1000);
    await writer.stop();
    assert.ok(writer.acked.length > before + 10, 'writes did not resume through the writer port');
    // The connection open at the crash fails; the reconnect is held, then served.
    assert.ok(writer.failures.length <= 5, `too many failures: ${JSON.stringify(writer.failures.slice(0, 5))}`);
    const newPort = Number(String(done['newPrimary']).split(':')[1]);
    const newNode = sb.nodes.find((n) => n.port === newPort)!;
    await checkWrites(sb, writer, newPort, Date.parse(started.time), 1, newNode.serverId);
    assert.equal(await serverIdVia(writerPort, sb), newNode.serverId);
    const fenced = manager.events.find((e) => e.event === 'router_fenced');
    assert.ok(fenced, 'router was not fenced');
  });

  test('the data plane runs the configured pipe processes; they outlive the manager and end with the data plane', async () => {
    const dp = readPidFile(dataPlanePaths(sb.config()).pidFile);
    assert.ok(dp !== undefined && isAlive(dp), 'no data plane running');
    assert.deepEqual(pipeProcesses(manager.pid!), [], 'the manager pipes nothing itself');
    const pids = pipeProcesses(dp);
    assert.equal(pids.length, routerProcesses === 'auto' ? autoRouterProcesses() : routerProcesses);
    await manager.stop();
    assert.ok(isAlive(dp), 'the data plane ended with the manager');
    assert.deepEqual(pids.filter((p) => !isAlive(p)), [], 'pipe processes ended with the manager');
    const stopped = await runCli(['dataplane', 'stop', '--config', sb.configFile]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual([dp, ...pids].filter(isAlive), [], 'the data plane or its pipe processes outlived `regent dataplane stop`');
  });
});

describe('built-in router: reader endpoint follows replica health and lag', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    editConfig(sb, (c) => {
      (c['router'] as Record<string, unknown>)['maxReplicaLagSeconds'] = 1;
    });
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await manager.waitFor((e) => e.event === 'router_readers_changed', 5000, 'reader pool');
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('spreads connections over the replicas', async () => {
    const seen = await readerSpread(routerPorts(sb).reader, sb);
    assert.deepEqual([...seen.keys()].sort(), [2, 3]);
    assert.ok(seen.get(2)! >= 4 && seen.get(3)! >= 4, `uneven spread ${JSON.stringify([...seen])}`);
  });

  test('drops a replica whose replication stopped and brings it back', async () => {
    await sb.sql(sb.node(2), ['STOP SLAVE']);
    await eventually(async () => !(await readerSpread(routerPorts(sb).reader, sb, 6)).has(2), 5000, 'node2 out of the pool');
    await sb.sql(sb.node(2), ['START SLAVE']);
    await eventually(async () => (await readerSpread(routerPorts(sb).reader, sb, 6)).has(2), 5000, 'node2 back in the pool');
  });

  test('drops a replica lagging past the threshold and brings it back', async () => {
    await sb.sql(sb.node(3), ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 4', 'START SLAVE']);
    await sb.sql(sb.node(1), ['CREATE TABLE app.lag (id INT PRIMARY KEY)', 'INSERT INTO app.lag VALUES (1)']);
    await sleep(1200);
    await sb.sql(sb.node(1), ['INSERT INTO app.lag VALUES (2)']);
    await eventually(async () => !(await readerSpread(routerPorts(sb).reader, sb, 6)).has(3), 8000, 'lagging node3 out of the pool');
    await sb.sql(sb.node(3), ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 0', 'START SLAVE']);
    await eventually(async () => (await readerSpread(routerPorts(sb).reader, sb, 6)).has(3), 10000, 'node3 back in the pool');
  });

  test('falls back to the primary when no replica qualifies', async () => {
    await sb.sql(sb.node(2), ['STOP SLAVE']);
    await sb.sql(sb.node(3), ['STOP SLAVE']);
    try {
      await eventually(async () => {
        const seen = await readerSpread(routerPorts(sb).reader, sb, 4);
        return seen.size === 1 && seen.has(1);
      }, 5000, 'reads on the primary');
    } finally {
      await sb.sql(sb.node(2), ['START SLAVE']);
      await sb.sql(sb.node(3), ['START SLAVE']);
    }
  });
});

describe('HAProxy with Regent\'s generated config, health endpoints and admin socket', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let manager: ManagerProcess;
  let haproxy: ChildProcess | undefined;
  let hp: { writer: number; reader: number };
  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    await Writer.prepare(sb);
    const base = await freePorts(2);
    hp = { writer: base, reader: base + 1 };
    const socket = join(sb.dir, 'haproxy.sock');
    const cfg = join(sb.dir, 'haproxy.cfg');
    editConfig(sb, (c) => {
      (c['router'] as Record<string, unknown>)['haproxySocket'] = socket;
    });
    const gen = await runCli(['haproxy-config', '--config', sb.configFile, '--writer-bind', `127.0.0.1:${hp.writer}`, '--reader-bind', `127.0.0.1:${hp.reader}`, '--socket', socket, '--out', cfg]);
    assert.equal(gen.code, 0, gen.stderr);
    const text = readFileSync(cfg, 'utf8');
    assert.match(text, /on-marked-down shutdown-sessions/);
    assert.match(text, /server node2 127\.0\.0\.1:\d+ check port \d+ addr 127\.0\.0\.1 disabled/);
    const check = spawnSync('haproxy', ['-c', '-f', cfg], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr + check.stdout);
    haproxy = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let haproxyErr = '';
    haproxy.stderr!.on('data', (b) => (haproxyErr += b));
    haproxy.once('exit', (code) => {
      if (code) process.stderr.write(`haproxy exited with ${code}: ${haproxyErr}\n`);
    });
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await eventually(async () => (await serverIdVia(hp.writer, sb)) === 1, 10000, 'haproxy writer up');
  });
  after(async () => {
    await manager?.stop();
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGTERM');
      await exited;
    }
    await cleanup?.();
  });

  test('health endpoints answer per instance', async () => {
    const healthBase = sb.node(1).port + PORT.health;
    const get = async (port: number, path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    assert.equal(await get(healthBase, '/primary'), 200);
    assert.equal(await get(healthBase + 1, '/primary'), 503);
    assert.equal(await get(healthBase + 1, '/replica'), 200);
    assert.equal(await get(healthBase, '/replica'), 503);
  });

  test('reads through HAProxy go to replicas', async () => {
    await eventually(async () => {
      const seen = await readerSpread(hp.reader, sb, 6);
      return !seen.has(1) && seen.size === 2;
    }, 10000, 'haproxy reader spread');
  });

  test('writes through HAProxy across a kill -9 failover land on the primary of the moment', async () => {
    const writer = new Writer(sb, () => ({ host: '127.0.0.1', port: hp.writer }));
    await sleep(1000);
    const before = writer.acked.length;
    await sb.kill(sb.node(1));
    const started = await manager.waitFor((e) => e.event === 'failover_started', 10000, 'failover start');
    const done = await manager.waitFor(failoverDone, 10000, 'failover');
    await sleep(1500);
    await writer.stop();
    assert.ok(writer.acked.length > before + 5, 'writes did not resume through HAProxy');
    const newPort = Number(String(done['newPrimary']).split(':')[1]);
    const newNode = sb.nodes.find((n) => n.port === newPort)!;
    await checkWrites(sb, writer, newPort, Date.parse(started.time), 1, newNode.serverId);
  });
});
