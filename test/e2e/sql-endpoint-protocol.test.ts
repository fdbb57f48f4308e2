import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { STATUS } from '../../src/router/sql/protocol.ts';
import { eventually, freePorts, startSandbox } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';
import { WireClient, WireError, type ResultSet } from '../helpers/mysql-wire.ts';

/**
 * The SQL endpoint's less common protocol paths, each with a real client against real servers:
 * COM_CHANGE_USER, COM_RESET_CONNECTION, LOAD DATA LOCAL INFILE, read-only cursors
 * (COM_STMT_FETCH), COM_STMT_SEND_LONG_DATA / COM_STMT_RESET, multi-result sets (CALL and
 * multi-statements), the compressed protocol, and read-your-writes in `global` mode.
 */

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
type Row = Record<string, unknown>;

interface Ctx {
  sb: Sandbox;
  manager: ManagerProcess;
  port: number;
  app: { user: string; password: string; database: string };
}

// A relay that loses track of a response leaves the client waiting: the timeout turns that into a failure.
describe('SQL endpoint: change user, reset, LOAD DATA LOCAL, cursors, long data, multi-results, compression, global read-your-writes', { timeout: 300_000 }, () => {
  const c = {} as Ctx;
  let cleanup: () => Promise<void>;
  const conn = (extra: mysql.ConnectionOptions = {}) =>
    mysql.createConnection({ host: '127.0.0.1', port: c.port, user: c.app.user, password: c.app.password, database: c.app.database, connectTimeout: 10000, ...extra });
  const wire = () => WireClient.login({ port: c.port, user: c.app.user, password: c.app.password, database: c.app.database });
  const onPrimary = async (sql: string): Promise<Row[]> => (await c.sb.sql(c.sb.node(1), [sql]))[0]!;
  const cli = (args: string[], input?: string) =>
    spawnSync('mariadb', ['-h', '127.0.0.1', '-P', String(c.port), '-u', c.app.user, `-p${c.app.password}`, ...args], { encoding: 'utf8', timeout: 60000, maxBuffer: 128 << 20, input });

  before(async () => {
    ({ sandbox: c.sb, cleanup } = await startSandbox({ nodes: 3, extraServerConfig: ['max_allowed_packet=64M', 'local_infile=ON'] }));
    c.manager = new ManagerProcess(c.sb.configFile);
    await c.manager.waitFor((e) => e.event === 'sql_endpoint_started', 30000, 'SQL endpoint start');
    c.port = c.sb.nodes[0]!.port + PORT.sql;
    c.app = c.sb.appAccount();
    await c.sb.sql(c.sb.node(1), [
      'USE app',
      'CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))',
      'CREATE TABLE app.seq (id INT PRIMARY KEY, v VARCHAR(32))',
      "INSERT INTO app.seq SELECT seq, CONCAT('row', seq) FROM seq_1_to_100",
      'CREATE TABLE app.loaded (id INT PRIMARY KEY, v VARCHAR(64), how VARCHAR(16))',
      'CREATE TABLE app.blobs (id INT PRIMARY KEY, b LONGBLOB)',
      "CREATE USER 'app2'@'127.0.0.1' IDENTIFIED BY 'second-app-pw'",
      "GRANT SELECT, INSERT ON app.* TO 'app2'@'127.0.0.1'",
      // Three result sets and the CALL's own OK; the second tells where it ran.
      'CREATE PROCEDURE app.three() BEGIN SELECT 1 AS a; SELECT @@server_id AS s; SELECT COUNT(*) AS n FROM app.seq; END',
    ]);
    // Routing needs the manager's first analysis (writer route, readers in the pool) and the replicas caught up.
    await eventually(async () => {
      const m = await conn();
      try {
        const [rows] = (await m.query('SELECT @@server_id AS s, (SELECT COUNT(*) FROM seq) AS n')) as unknown as [Row[]];
        return Number(rows[0]!['s']) !== 1 && Number(rows[0]!['n']) === 100;
      } finally {
        await m.end();
      }
    }, 30000, 'reads reaching a caught-up replica');
  });
  after(async () => {
    await c.manager?.stop();
    await cleanup?.();
  });

  test('COM_CHANGE_USER: the session continues as the other account on the primary and on replicas, with its state reset; a wrong password gets 1045', async () => {
    const m = await conn();
    try {
      await m.query("SET time_zone = '+03:00'");
      // A temporary table ties the session to the primary; the change of user drops it.
      await m.query('CREATE TEMPORARY TABLE scratch (x INT)');
      const [pinned] = (await m.query('SELECT @@server_id AS s')) as unknown as [Row[]];
      assert.equal(Number(pinned[0]!['s']), 1, 'a session with a temporary table reads on the primary');
      await m.changeUser({ user: 'app2', password: 'second-app-pw', database: 'app' });
      const [r] = (await m.query('SELECT CURRENT_USER() AS u, @@server_id AS s, @@time_zone AS tz')) as unknown as [Row[]];
      assert.equal(r[0]!['u'], 'app2@127.0.0.1');
      assert.notEqual(Number(r[0]!['s']), 1, 'reads go to a replica again: the temporary table went with the old user');
      assert.equal(r[0]!['tz'], 'SYSTEM', 'session variables are back to their defaults');
      await m.query('INSERT INTO items (v) VALUES (CURRENT_USER())');
      const [w] = (await m.query('/* regent:primary */ SELECT CURRENT_USER() AS u, @@server_id AS s')) as unknown as [Row[]];
      assert.deepEqual([w[0]!['u'], Number(w[0]!['s'])], ['app2@127.0.0.1', 1]);
      // app2 may not DELETE: the primary says so with the account's own name.
      await assert.rejects(m.query('DELETE FROM items'), (e: { errno?: number }) => e.errno === 1142);
      await m.changeUser({ user: c.app.user, password: c.app.password, database: 'app' });
      const [back] = (await m.query('SELECT CURRENT_USER() AS u')) as unknown as [Row[]];
      assert.equal(back[0]!['u'], 'app@127.0.0.1');
      await assert.rejects(m.changeUser({ user: 'app2', password: 'wrong', database: 'app' }), (e: { errno?: number }) => e.errno === 1045);
    } finally {
      m.destroy();
    }
    const rows = await onPrimary("SELECT v FROM app.items WHERE v LIKE 'app2@%'");
    assert.deepEqual(rows.map((x) => x['v']), ['app2@127.0.0.1']);
  });

  test('COM_RESET_CONNECTION: user variables, session variables, temporary tables and prepared statements are gone, and reads go to replicas again', async () => {
    const m = await conn();
    try {
      await m.query("SET @x = 5, sql_mode = 'ANSI_QUOTES'");
      await m.execute('SELECT ? AS one', [1]);
      const [before] = (await m.query('SELECT @x AS x, @@server_id AS s')) as unknown as [Row[]];
      assert.deepEqual([Number(before[0]!['x']), Number(before[0]!['s'])], [5, 1], 'a user variable keeps the session on the primary');
      await m.reset();
      // (A read of a user variable goes to the primary, so the variable is read on its own.)
      const [x] = (await m.query('SELECT @x AS x')) as unknown as [Row[]];
      assert.equal(x[0]!['x'], null);
      const [r] = (await m.query('SELECT @@sql_mode AS mode, @@server_id AS s, DATABASE() AS db')) as unknown as [Row[]];
      assert.doesNotMatch(String(r[0]!['mode']), /ANSI_QUOTES/);
      assert.notEqual(Number(r[0]!['s']), 1, 'no longer tied to the primary');
      assert.equal(r[0]!['db'], 'app', 'the schema stays, as on the server');
      // Prepared statements work again after the reset (mysql2 prepares anew).
      const [p] = (await m.execute('SELECT ? + 1 AS two', [1])) as unknown as [Row[]];
      assert.equal(Number(p[0]!['two']), 2);
    } finally {
      await m.end();
    }
  });

  test('LOAD DATA LOCAL INFILE from the mariadb client and mysql2 lands on the primary; a client that refuses to send the file gets an error and carries on', async () => {
    const file = join(c.sb.dir, 'load.tsv');
    const lines: string[] = [];
    for (let i = 1; i <= 60000; i++) lines.push(`${i}\tvalue-${i}-${'z'.repeat(40)}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = cli(['--local-infile=1', c.app.database, '-e', `LOAD DATA LOCAL INFILE '${file}' INTO TABLE loaded (id, v) SET how = 'cli'; SELECT ROW_COUNT()`]);
    assert.equal(r.status, 0, r.stderr);
    const m = await conn({ infileStreamFactory: () => Readable.from([Buffer.from('100001\tfrom-mysql2\n'), Buffer.from('100002\tsecond\n')]) });
    try {
      const [res] = (await m.query({ sql: "LOAD DATA LOCAL INFILE 'anything' INTO TABLE loaded (id, v) SET how = 'mysql2'" })) as unknown as [{ affectedRows: number }];
      assert.equal(res.affectedRows, 2);
      const [after] = (await m.query('SELECT 1 AS one')) as unknown as [Row[]];
      assert.equal(Number(after[0]!['one']), 1, 'the session goes on after the file');
    } finally {
      await m.end();
    }
    const refuses = await conn({ infileStreamFactory: () => createReadStream(join(c.sb.dir, 'does-not-exist')) });
    try {
      await assert.rejects(refuses.query("LOAD DATA LOCAL INFILE 'x' INTO TABLE loaded (id, v)"));
      const [after] = (await refuses.query('SELECT 2 AS two')) as unknown as [Row[]];
      assert.equal(Number(after[0]!['two']), 2, 'the session goes on after a refused file');
    } finally {
      await refuses.end();
    }
    const counts = await onPrimary('SELECT how, COUNT(*) AS n, SUM(id) AS s FROM app.loaded GROUP BY how ORDER BY how');
    assert.deepEqual(
      counts.map((x) => [x['how'], Number(x['n']), Number(x['s'])]),
      [
        ['cli', 60000, (60000 * 60001) / 2],
        ['mysql2', 2, 200003],
      ],
    );
  });

  test('cursors: a read-only cursor on a replica is fetched in batches, other statements in between', async () => {
    const w = await wire();
    try {
      const st = await w.prepare('SELECT id, v, @@server_id AS s FROM seq WHERE id <= ? ORDER BY id');
      const [rs] = (await w.execute(st.id, [25], { cursor: true })) as ResultSet[];
      assert.ok(rs!.status & STATUS.CURSOR_EXISTS, 'the server opened a cursor');
      assert.deepEqual(rs!.rows, []);
      const got: (string | null)[][] = [];
      let status = 0;
      for (let i = 0; i < 10 && !(status & STATUS.LAST_ROW_SENT); i++) {
        const batch = await w.fetch(st.id, 10, rs!.columns);
        assert.ok(batch.rows.length <= 10);
        got.push(...batch.rows);
        status = batch.status;
        // Another statement of the session between two fetches.
        assert.deepEqual(await w.rows(`SELECT ${i} AS i`), [[String(i)]]);
      }
      assert.ok(status & STATUS.LAST_ROW_SENT, 'the last fetch says the cursor is exhausted');
      assert.deepEqual(got.map((r) => Number(r[0])), Array.from({ length: 25 }, (_, i) => i + 1));
      assert.equal(got[24]![1], 'row25');
      assert.ok(got.every((r) => r[2] !== '1'), `the cursor ran on a replica (server ids ${[...new Set(got.map((r) => r[2]))]})`);
      // The same statement again, without a cursor: all rows at once.
      const [all] = (await w.execute(st.id, [3])) as ResultSet[];
      assert.deepEqual(all!.rows.map((r) => r[0]), ['1', '2', '3']);
      w.closeStatement(st.id);
      await assert.rejects(w.fetch(st.id, 1, rs!.columns), (e: WireError) => e.err.code === 1243);
      await w.ping();
    } finally {
      w.end();
    }
  });

  test('COM_STMT_SEND_LONG_DATA reaches whichever backend runs the statement; COM_STMT_RESET discards it', async () => {
    const w = await wire();
    try {
      const ins = await w.prepare('INSERT INTO blobs (id, b) VALUES (?, ?)');
      const a = Buffer.alloc(100000, 'a');
      const b = Buffer.alloc(50001, 'b');
      w.sendLongData(ins.id, 1, a);
      w.sendLongData(ins.id, 1, b);
      await w.execute(ins.id, [1, undefined]);
      w.sendLongData(ins.id, 1, Buffer.from('discarded'));
      await w.resetStatement(ins.id);
      await w.execute(ins.id, [2, 'bound after reset']);
    } finally {
      w.end();
    }
    // A read with long data goes to a replica, which gets the data under its own statement id. (A
    // new session: this one wrote, so its next read may have to wait for a replica or take the primary.)
    const r = await wire();
    try {
      // Two statements prepared (on the primary only) first, so the session's statement ids and
      // the replica connection's differ: the long data must be sent under the replica's own id.
      for (const sql of ['SELECT 1', 'SELECT 2']) await r.prepare(sql);
      const sel = await r.prepare('SELECT LENGTH(?) AS n, MD5(?) AS h, @@server_id AS s');
      const x = Buffer.alloc(70000, 'x');
      r.sendLongData(sel.id, 0, x);
      r.sendLongData(sel.id, 1, x);
      const [rs] = (await r.execute(sel.id, [undefined, undefined])) as ResultSet[];
      assert.deepEqual(rs!.rows[0]!.slice(0, 2), ['70000', md5(x)]);
      assert.notEqual(rs!.rows[0]![2], '1', 'the read ran on a replica');
      // Executed again without long data: the values are the bound ones, nothing left over.
      const [again] = (await r.execute(sel.id, ['abc', 'abc'])) as ResultSet[];
      assert.deepEqual(again!.rows[0]!.slice(0, 2), ['3', md5('abc')]);
      // Long data for a statement the session never prepared gets no answer (as from a server), and the session goes on.
      r.sendLongData(999, 0, Buffer.from('nobody'));
      await r.ping();
    } finally {
      r.end();
    }
    const rows = await onPrimary('SELECT id, LENGTH(b) AS n, MD5(b) AS h FROM app.blobs ORDER BY id');
    assert.deepEqual(
      rows.map((r) => [Number(r['id']), Number(r['n']), r['h']]),
      [
        [1, 150001, md5(Buffer.concat([Buffer.alloc(100000, 'a'), Buffer.alloc(50001, 'b')]))],
        [2, 17, md5('bound after reset')],
      ],
    );
  });

  test('multi-result sets: a procedure returning three result sets (text and prepared), multi-statements, the mariadb client', async () => {
    const m = await conn({ multipleStatements: true });
    try {
      const [text] = (await m.query('CALL three()')) as unknown as [unknown[]];
      assert.equal(text.length, 4, 'three result sets and the CALL status');
      assert.deepEqual((text[1] as Row[]).map((r) => Number(r['s'])), [1], 'CALL runs on the primary');
      assert.equal(Number((text[2] as Row[])[0]!['n']), 100);
      const [prepared] = (await m.execute('CALL three()')) as unknown as [unknown[]];
      assert.equal(Number((prepared[2] as Row[])[0]!['n']), 100);
      const [multi] = (await m.query("SELECT 1 AS a; INSERT INTO items (v) VALUES ('multi'); SELECT @@server_id AS s")) as unknown as [unknown[]];
      assert.equal(multi.length, 3);
      assert.equal(Number((multi[2] as Row[])[0]!['s']), 1, 'multi-statements run on the primary');
      // A failing statement in the middle ends the batch with its error; the session goes on.
      await assert.rejects(m.query('SELECT 1; SELECT * FROM no_such_table; SELECT 3'), (e: { errno?: number }) => e.errno === 1146);
      const [ok] = (await m.query('SELECT 4 AS four')) as unknown as [Row[]];
      assert.equal(Number(ok[0]!['four']), 4);
    } finally {
      await m.end();
    }
    // Session effects inside a multi-statement follow the session to a replica (a session that
    // has not written, so its read needs no replica to catch up).
    const fresh = await conn({ multipleStatements: true });
    try {
      await fresh.query("SET time_zone = '+02:00'; SELECT 1");
      const [r] = (await fresh.query('SELECT @@time_zone AS tz, @@server_id AS s')) as unknown as [Row[]];
      assert.deepEqual([r[0]!['tz'], Number(r[0]!['s']) !== 1], ['+02:00', true]);
    } finally {
      await fresh.end();
    }
    const r = cli(['-N', c.app.database, '-e', 'CALL three(); SELECT 5']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['1', '1', '100', '5']);
  });

  test('compression: the mariadb client with --compress and mysql2 with compress, large values both ways, LOAD DATA inside', async () => {
    const r = cli(['--compress', '--max-allowed-packet=64M', '-N', c.app.database, '-e', "SELECT MD5(REPEAT('q', 20000000)); SELECT REPEAT('q', 20000000); SELECT COUNT(*) FROM seq"]);
    assert.equal(r.status, 0, r.stderr);
    const [hash, big, count] = r.stdout.split('\n');
    assert.equal(hash, md5('q'.repeat(20000000)));
    assert.equal(big!.length, 20000000);
    assert.equal(count, '100');
    const file = join(c.sb.dir, 'load-compressed.tsv');
    writeFileSync(file, Array.from({ length: 5000 }, (_, i) => `${200001 + i}\tc${i}`).join('\n'));
    const load = cli(['--compress', '--local-infile=1', c.app.database, '-e', `LOAD DATA LOCAL INFILE '${file}' INTO TABLE loaded (id, v) SET how = 'compressed'`]);
    assert.equal(load.status, 0, load.stderr);
    const reader = await conn({ compress: true });
    try {
      for (let i = 0; i < 200; i++) {
        const [p] = (await reader.execute('SELECT v, @@server_id AS s FROM seq WHERE id = ?', [1 + (i % 100)])) as unknown as [Row[]];
        assert.equal(p[0]!['v'], `row${1 + (i % 100)}`);
        assert.notEqual(Number(p[0]!['s']), 1, 'reads go to replicas over a compressed session');
      }
    } finally {
      await reader.end();
    }
    const m = await conn({ compress: true });
    try {
      const value = Buffer.alloc(18 << 20);
      for (let i = 0; i < value.length; i++) value[i] = 97 + ((i * 7919) % 26);
      await m.execute('INSERT INTO blobs (id, b) VALUES (?, ?)', [10, value]).catch((e: Error) => {
        const seen = c.manager.events.filter((x) => /^sql_/.test(String(x.event))).slice(-5);
        throw new Error(`${e.message}; the endpoint logged: ${JSON.stringify(seen)}`);
      });
      await m.query('BEGIN');
      const [rows] = (await m.query('SELECT b, MD5(b) AS h, @@server_id AS s FROM blobs WHERE id = 10')) as unknown as [Row[]];
      await m.query('COMMIT');
      assert.equal(rows[0]!['h'], md5(value));
      assert.equal(md5(rows[0]!['b'] as Buffer), md5(value), 'the value came back whole');
    } finally {
      await m.end();
    }
    assert.equal(Number((await onPrimary("SELECT COUNT(*) AS n FROM app.loaded WHERE how = 'compressed'"))[0]!['n']), 5000);
  });

  test('read-your-writes in global mode: a session sees what another session wrote just before, with replicas a second behind; session mode misses', async () => {
    // The acting manager's endpoint stays in session mode; a `regent proxy` beside it runs one in
    // global mode, following the same decisions.
    type Doc = { manager: Record<string, unknown>; clusters: { router: Record<string, unknown> }[] };
    const doc = parseYaml(readFileSync(c.sb.configFile, 'utf8')) as Doc;
    const port = await freePorts(1);
    delete doc.manager['api'];
    doc.clusters[0]!.router = { sql: { listen: `127.0.0.1:${port}`, causalReads: 'global', causalWaitTimeoutMs: 300 } };
    const cfg = join(c.sb.dir, 'regent-global.yaml');
    writeFileSync(cfg, toYaml(doc));
    const proxy = new ManagerProcess(cfg, { command: 'proxy' });
    for (const n of [c.sb.node(2), c.sb.node(3)]) await c.sb.sql(n, ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 1', 'START SLAVE']);
    try {
      await proxy.waitFor((e) => e.event === 'sql_endpoint_started', 30000, 'the proxy SQL endpoint');
      const crossSession = async (p: number, n: number): Promise<{ misses: number; replicaReads: number }> => {
        const opts = { host: '127.0.0.1', port: p, user: c.app.user, password: c.app.password, database: c.app.database };
        const [writer, reader] = await Promise.all([mysql.createConnection(opts), mysql.createConnection(opts)]);
        let misses = 0;
        let replicaReads = 0;
        try {
          for (let i = 0; i < n; i++) {
            const [ins] = (await writer.query("INSERT INTO items (v) VALUES ('global')")) as unknown as [{ insertId: number }];
            const [rows] = (await reader.query(`SELECT @@server_id AS s, COUNT(*) AS n FROM items WHERE id = ${ins.insertId}`)) as unknown as [Row[]];
            if (Number(rows[0]!['n']) !== 1) misses++;
            if (Number(rows[0]!['s']) !== 1) replicaReads++;
          }
        } finally {
          await Promise.all([writer.end(), reader.end()]);
        }
        return { misses, replicaReads };
      };
      // The proxy routes once it has observed the cluster and read the decision.
      await eventually(async () => (await crossSession(port, 1), true), 60000, 'the global-mode endpoint');
      const global = await crossSession(port, 150);
      assert.equal(global.misses, 0, `${global.misses} of 150 reads missed a write acknowledged before them in global mode`);
      const session = await crossSession(c.port, 60);
      assert.ok(session.misses > 0, `session mode shows misses across sessions (got ${session.misses} of 60, ${session.replicaReads} on replicas)`);
    } finally {
      await proxy.stop();
      for (const n of [c.sb.node(2), c.sb.node(3)]) await c.sb.sql(n, ['STOP SLAVE', 'CHANGE MASTER TO MASTER_DELAY = 0', 'START SLAVE']);
    }
  });
});
