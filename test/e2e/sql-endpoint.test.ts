import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { nativeToken, sha1 } from '../../src/router/sql/auth.ts';
import { frame, PacketReader, type Packet } from '../../src/router/sql/packets.ts';
import { buildHandshakeResponse, CAP, parseGreeting } from '../../src/router/sql/protocol.ts';
import { eventually, freePorts, startSandbox } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bare protocol client: logs in with mysql_native_password, then sends whatever the test wants. */
class RawClient {
  #reader = new PacketReader(1 << 30);
  #waiters: ((p: Packet) => void)[] = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.#reader.push(c);
      for (let p = this.#reader.next(); p; p = this.#reader.next()) this.#waiters.shift()?.(p);
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w({ seq: -1, lastSeq: -1, payload: Buffer.alloc(0), raw: Buffer.alloc(0) });
    });
    socket.on('error', () => {});
  }
  next(): Promise<Packet> {
    return new Promise((r) => this.#waiters.push(r));
  }
  static async login(port: number, user: string, password: string, database: string): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    const c = new RawClient(socket);
    const g = parseGreeting((await c.next()).payload);
    const caps = CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.CONNECT_WITH_DB | CAP.TRANSACTIONS | CAP.MULTI_RESULTS;
    socket.write(frame(buildHandshakeResponse({ caps, charset: 45, user, authResponse: nativeToken(sha1(Buffer.from(password)), g.scramble), database, plugin: 'mysql_native_password' }), 1));
    const ok = await c.next();
    assert.equal(ok.payload[0], 0x00, `login failed: ${ok.payload.toString('utf8', 9)}`);
    return c;
  }
  /** Sends a command, returns the packets of a one-packet answer (OK/ERR). */
  async command(payload: Buffer): Promise<Packet> {
    this.socket.write(frame(payload, 0));
    return this.next();
  }
}

function errCode(p: Packet): number | undefined {
  return p.payload[0] === 0xff ? p.payload.readUInt16LE(1) : undefined;
}

interface Ctx {
  sb: Sandbox;
  manager: ManagerProcess;
  port: number;
  app: { user: string; password: string; database: string };
  ids: { primary: number; replicas: number[] };
}

async function conn(c: Ctx, extra: Record<string, unknown> = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port: c.port, user: c.app.user, password: c.app.password, database: c.app.database, connectTimeout: 10000, ...extra });
}

async function metric(c: Ctx, name: string, labels: Record<string, string>): Promise<number> {
  const api = c.sb.nodes[0]!.port + PORT.api;
  const text = await (await fetch(`http://127.0.0.1:${api}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && want.every((w) => line.includes(w))) sum += Number(line.split(' ').pop());
  return sum;
}

describe('SQL endpoint: real clients, routing, read-your-writes, bad input', () => {
  const c = {} as Ctx;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ sandbox: c.sb, cleanup } = await startSandbox({ nodes: 3, extraServerConfig: ['max_allowed_packet=64M', 'general_log=OFF'] }));
    c.manager = new ManagerProcess(c.sb.configFile);
    await c.manager.waitFor((e) => e.event === 'sql_endpoint_started', 30000, 'SQL endpoint start');
    c.port = c.sb.nodes[0]!.port + PORT.sql;
    c.app = c.sb.appAccount();
    c.ids = { primary: 1, replicas: [2, 3] };
    await c.sb.sql(c.sb.node(1), ['CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64), sid INT)']);
    // Routing needs the manager's first analysis (writer route, readers in the pool).
    await eventually(async () => {
      const m = await conn(c);
      try {
        const [rows] = (await m.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
        return rows[0]!.s !== 1;
      } finally {
        await m.end();
      }
    }, 30000, 'reads reaching a replica');
  });
  after(async () => {
    await c.manager?.stop();
    await cleanup?.();
  });

  test('mysql2 text and prepared statements, with a login verified from the hash; a wrong password gets 1045', async () => {
    const m = await conn(c);
    try {
      await m.query("INSERT INTO items (v, sid) VALUES ('a', @@server_id)");
      const [p] = (await m.execute('SELECT v FROM items WHERE v = ?', ['a'])) as unknown as [{ v: string }[]];
      assert.equal(p[0]!.v, 'a');
      const [t] = (await m.query("SELECT v FROM items WHERE v = 'a'")) as unknown as [{ v: string }[]];
      assert.equal(t.length, 1);
    } finally {
      await m.end();
    }
    await assert.rejects(conn(c, { password: 'not-the-password' }), (e: { errno?: number }) => e.errno === 1045);
    assert.ok((await metric(c, 'regent_sql_auth_failures_total', { reason: 'bad_password' })) >= 1);
  });

  test('the mariadb client, mariadb-dump and sysbench (prepared statements) work through it', async () => {
    const base = ['-h', '127.0.0.1', '-P', String(c.port), '-u', c.app.user, `-p${c.app.password}`];
    const cli = spawnSync('mariadb', [...base, c.app.database, '-N', '-e', "INSERT INTO items (v, sid) VALUES ('cli', @@server_id); SELECT COUNT(*) FROM items WHERE v = 'cli'; SHOW WARNINGS"], { encoding: 'utf8', timeout: 30000 });
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(cli.stdout.trim(), '1');
    const dump = spawnSync('mariadb-dump', [...base, '--single-transaction', c.app.database], { encoding: 'utf8', timeout: 60000, maxBuffer: 64 << 20 });
    assert.equal(dump.status, 0, dump.stderr);
    assert.match(dump.stdout, /CREATE TABLE `items`/);
    assert.match(dump.stdout, /INSERT INTO `items` VALUES[\s\S]*'cli'/);
    assert.match(dump.stdout, /-- Dump completed/);
    const sb = ['--mysql-host=127.0.0.1', `--mysql-port=${c.port}`, `--mysql-user=${c.app.user}`, `--mysql-password=${c.app.password}`, `--mysql-db=${c.app.database}`, '--tables=1', '--table-size=200'];
    const prep = spawnSync('sysbench', ['oltp_read_write', ...sb, 'prepare'], { encoding: 'utf8', timeout: 120000 });
    assert.equal(prep.status, 0, prep.stderr || prep.stdout);
    for (const workload of ['oltp_point_select', 'oltp_read_write']) {
      const run = spawnSync('sysbench', [workload, ...sb, '--threads=2', '--events=200', '--time=0', 'run'], { encoding: 'utf8', timeout: 120000 });
      assert.equal(run.status, 0, run.stderr || run.stdout);
      assert.match(run.stdout, /queries:\s+\d+/);
    }
  });

  test('routing: writes and transactions on the primary, autocommit reads on replicas, hints', async () => {
    const m = await conn(c);
    const seen = { write: new Set<number>(), trx: new Set<number>(), read: new Set<number>(), hinted: new Set<number>() };
    try {
      for (let i = 0; i < 60; i++) {
        await m.query("INSERT INTO items (v, sid) VALUES ('mix', @@server_id)");
        await m.query('BEGIN');
        const [t] = (await m.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
        seen.trx.add(Number(t[0]!.s));
        await m.query("UPDATE items SET sid = @@server_id WHERE v = 'mix' AND id = LAST_INSERT_ID()");
        await m.query('COMMIT');
        const [r] = (await m.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
        seen.read.add(Number(r[0]!.s));
        const [h] = (await m.query('/* regent:primary */ SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
        seen.hinted.add(Number(h[0]!.s));
      }
    } finally {
      await m.end();
    }
    const [rows] = (await c.sb.sql(c.sb.node(1), ["SELECT DISTINCT sid FROM app.items WHERE v = 'mix'"])) as [{ sid: number }[]];
    assert.deepEqual(rows.map((r) => Number(r.sid)), [1], 'every write ran on the primary');
    assert.deepEqual([...seen.trx], [1], 'statements inside transactions ran on the primary');
    assert.deepEqual([...seen.hinted], [1], 'the primary hint was honoured');
    assert.ok([...seen.read].every((s) => s !== 1), `autocommit reads ran on replicas (saw ${[...seen.read]})`);
    // A fresh session per read spreads over both replicas.
    const spread = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const s = await conn(c);
      const [r] = (await s.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
      spread.add(Number(r[0]!.s));
      await s.end();
    }
    assert.deepEqual([...spread].sort(), [2, 3]);
  });

  test('session state follows the session to the replica', async () => {
    const m = await conn(c, { database: undefined });
    try {
      await m.query("SET sql_mode = 'ANSI_QUOTES,NO_ZERO_DATE', time_zone = '+05:30'");
      await m.query('SET NAMES latin1');
      await m.query(`USE ${c.app.database}`);
      const [r] = (await m.query('SELECT @@server_id AS s, @@sql_mode AS m, @@time_zone AS tz, @@character_set_client AS cs, DATABASE() AS db')) as unknown as [Record<string, unknown>[]];
      assert.notEqual(Number(r[0]!['s']), 1, 'read ran on a replica');
      assert.equal(r[0]!['m'], 'ANSI_QUOTES,NO_ZERO_DATE');
      assert.equal(r[0]!['tz'], '+05:30');
      assert.equal(r[0]!['cs'], 'latin1');
      assert.equal(r[0]!['db'], c.app.database);
    } finally {
      await m.end();
    }
  });

  test('bad input: malformed packet, unknown command, 64 MiB packet, a client gone mid-result: the endpoint carries on, nothing is written', async () => {
    const before = (await c.sb.sql(c.sb.node(1), ['SELECT COUNT(*) AS n FROM app.items']))[0]![0]!['n'];
    const raw = await RawClient.login(c.port, c.app.user, c.app.password, c.app.database);
    // Unknown command: an error, and the session goes on.
    assert.equal(errCode(await raw.command(Buffer.from([0x99]))), 1047);
    // Malformed: an execute too short to hold a statement id.
    assert.equal(errCode(await raw.command(Buffer.from([0x17, 1]))), 1835);
    const ping = await raw.command(Buffer.from([0x0e]));
    assert.equal(ping.payload[0], 0x00, 'the session still answers');
    // 64 MiB: refused with 1153 before it is buffered, and the session closed.
    const big = await RawClient.login(c.port, c.app.user, c.app.password, c.app.database);
    // An INSERT of 64 MiB in proper frames of 16 MiB - 1 bytes.
    const answer = big.next();
    const payload = Buffer.alloc(64 << 20, 0x61);
    Buffer.from("\x03INSERT INTO items (v) VALUES ('").copy(payload);
    payload.write("')", payload.length - 2);
    big.socket.write(frame(payload, 0));
    assert.equal(errCode(await answer), 1153);
    await eventually(async () => big.closed, 10000, 'the oversized session to be closed');
    // A client that disconnects in the middle of a large result.
    const m = await conn(c);
    const stream = (m as unknown as { connection: { stream: Socket } }).connection.stream;
    const q = m.query('SELECT a.id, REPEAT(\'x\', 1000) FROM items a, items b, items c LIMIT 200000').catch(() => undefined);
    await sleep(50);
    stream.destroy();
    await q;
    // Everyone else carries on.
    assert.equal((await raw.command(Buffer.from([0x0e]))).payload[0], 0x00);
    const other = await conn(c);
    const [r] = (await other.query('SELECT 1 AS one')) as unknown as [{ one: number }[]];
    assert.equal(r[0]!.one, 1);
    await other.end();
    raw.socket.destroy();
    const afterCount = (await c.sb.sql(c.sb.node(1), ['SELECT COUNT(*) AS n FROM app.items']))[0]![0]!['n'];
    assert.equal(afterCount, before, 'nothing was written');
    assert.ok((await metric(c, 'regent_sql_protocol_errors_total', { kind: 'too_large' })) >= 1);
  });

  test('packets over 16 MiB go through both ways', async () => {
    const m = await conn(c);
    try {
      const value = 'y'.repeat(20 << 20);
      await m.query('CREATE TABLE IF NOT EXISTS big (id INT PRIMARY KEY, b LONGTEXT)');
      await m.execute('INSERT INTO big VALUES (1, ?)', [value]);
      await m.query('BEGIN');
      const [r] = (await m.query('SELECT LENGTH(b) AS n, b FROM big WHERE id = 1')) as unknown as [{ n: number; b: string }[]];
      await m.query('COMMIT');
      assert.equal(Number(r[0]!.n), value.length);
      assert.equal(r[0]!.b.length, value.length);
      await m.query('DROP TABLE big');
    } finally {
      await m.end();
    }
  });

  test('read-your-writes with a replica a second behind: 0 misses in session mode; misses in none mode', async () => {
    // Both replicas apply a second late (MASTER_DELAY), a real lag.
    for (const n of [c.sb.node(2), c.sb.node(3)]) await c.sb.sql(n, ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 1', 'START SLAVE']);
    // A second endpoint in `none` mode, from a second manager on the same cluster (as bench/proxy.ts runs two).
    const doc = parseYaml(readFileSync(c.sb.configFile, 'utf8')) as { manager: Record<string, unknown>; clusters: { router: Record<string, unknown> }[] };
    const free = await freePorts(2);
    doc.manager['api'] = { listen: `127.0.0.1:${free + 1}` };
    doc.manager['stateDir'] = 'state-none';
    doc.clusters[0]!.router = { sql: { listen: `127.0.0.1:${free}`, causalReads: 'none' } };
    const cfg = join(c.sb.dir, 'regent-none.yaml');
    writeFileSync(cfg, toYaml(doc));
    const proxy = new ManagerProcess(cfg);
    try {
      const misses = async (port: number, n: number): Promise<{ misses: number; replicaReads: number }> => {
        const m = await mysql.createConnection({ host: '127.0.0.1', port, user: c.app.user, password: c.app.password, database: c.app.database });
        let miss = 0;
        let replicaReads = 0;
        try {
          for (let i = 0; i < n; i++) {
            const [ins] = (await m.query("INSERT INTO items (v) VALUES ('ryw')")) as unknown as [{ insertId: number }];
            const [rows] = (await m.query(`SELECT @@server_id AS s, COUNT(*) AS n FROM items WHERE id = ${ins.insertId}`)) as unknown as [{ s: number; n: number }[]];
            if (Number(rows[0]!.n) !== 1) miss++;
            if (Number(rows[0]!.s) !== 1) replicaReads++;
          }
        } finally {
          await m.end();
        }
        return { misses: miss, replicaReads };
      };
      await eventually(async () => (await misses(c.port, 1)).misses === 0, 30000, 'the session endpoint');
      const session = await misses(c.port, 1000).catch((e) => {
        const seen = c.manager.events.filter((e) => /router_writer|problem_started|sql_/.test(String(e.event))).slice(-10);
        throw new Error(`${(e as Error).message}; manager saw: ${JSON.stringify(seen)}`);
      });
      assert.equal(session.misses, 0, `${session.misses} of 1000 reads missed their own write in session mode`);
      // The proxy routes once it has observed the cluster (it decides nothing itself).
      await eventually(async () => (await misses(free, 1), true), 60000, 'the none-mode endpoint');
      const none = await misses(free, 200);
      assert.ok(none.misses > 0, `none mode shows misses (got ${none.misses} of 200 with replicas reads ${none.replicaReads})`);
      assert.ok((await metric(c, 'regent_sql_statements_total', { route: 'primary', reason: 'causal_wait' })) > 0);
    } finally {
      await proxy.stop();
      for (const n of [c.sb.node(2), c.sb.node(3)]) await c.sb.sql(n, ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 0', 'START SLAVE']);
    }
  });

  test('a stopped replica gets no reads', async () => {
    await c.sb.stop(c.sb.node(3));
    try {
      await eventually(async () => {
        for (let i = 0; i < 6; i++) {
          const m = await conn(c);
          const [r] = (await m.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
          await m.end();
          if (Number(r[0]!.s) === 3) return false;
        }
        return true;
      }, 30000, 'node3 out of the reader pool');
      const ids: number[] = [];
      for (let i = 0; i < 20; i++) {
        const m = await conn(c);
        const [r] = (await m.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
        ids.push(Number(r[0]!.s));
        await m.end();
      }
      assert.ok(!ids.includes(3), `the stopped replica got reads: ${ids}`);
      assert.ok(ids.includes(2), `reads still reach the running replica: ${ids}`);
    } finally {
      await c.sb.start(c.sb.node(3));
    }
  });
});
