import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { eventually, freePorts, startSandbox, tempDir } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

/**
 * The SQL endpoint's TLS (to clients, required and optional; to servers, verified against a CA)
 * and logins of accounts whose plugin the endpoint cannot verify from a hash (MariaDB's ed25519):
 * with the password configured as a secret, and without it. Certificates are made here with openssl.
 */

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** A CA signing a certificate for the servers and one for the endpoint (both for 127.0.0.1), and an unrelated CA. */
function makeCertificates(dir: string): void {
  const ext = join(dir, 'san.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  for (const ca of ['ca', 'other-ca']) sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=regent-test-${ca}`], dir);
  for (const name of ['server', 'endpoint']) {
    sh('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1'], dir);
    sh('openssl', ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext], dir);
  }
}

type Row = Record<string, unknown>;
type Doc = { manager: Record<string, unknown>; clusters: { router: Record<string, unknown> }[] };

const ED_PASSWORD = 'ed-Secret-9f3c';

describe('SQL endpoint: TLS to clients and servers, ed25519 accounts', { timeout: 300_000 }, () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let certs: { path: string; remove: () => void };
  let manager: ManagerProcess;
  let port: number;
  let app: { user: string; password: string; database: string };
  const cert = (f: string) => join(certs.path, f);
  const cli = (args: string[]) => spawnSync('mariadb', ['-h', '127.0.0.1', '-P', String(port), ...args], { encoding: 'utf8', timeout: 20000, stdio: ['ignore', 'pipe', 'pipe'] });

  before(async () => {
    certs = tempDir('regent-sql-tls-');
    makeCertificates(certs.path);
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3, extraServerConfig: [`ssl_ca=${cert('ca.pem')}`, `ssl_cert=${cert('server.pem')}`, `ssl_key=${cert('server.key')}`] }));
    app = sb.appAccount();
    port = sb.nodes[0]!.port + PORT.sql;
    // ed25519 is a plugin in MariaDB 10.11: loaded on every server (not replicated), then accounts
    // created on the primary reach the replicas.
    for (const n of sb.nodes) await sb.sql(n, ['SET SESSION sql_log_bin = 0', "INSTALL SONAME 'auth_ed25519'"]);
    await sb.sql(sb.node(1), [
      'CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))',
      `CREATE USER 'ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('${ED_PASSWORD}')`,
      "GRANT SELECT, INSERT ON app.* TO 'ed'@'127.0.0.1'",
      "CREATE USER 'ed_nopw'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('not-configured')",
      "GRANT SELECT ON app.* TO 'ed_nopw'@'127.0.0.1'",
      // Refused by every server unless the connection is TLS: proves the endpoint's backend hop is.
      "CREATE USER 'tlsapp'@'127.0.0.1' IDENTIFIED BY 'tls-app-pw' REQUIRE SSL",
      "GRANT SELECT, INSERT ON app.* TO 'tlsapp'@'127.0.0.1'",
    ]);
    writeFileSync(join(sb.dir, 'secrets', 'ed.pw'), `${ED_PASSWORD}\n`, { mode: 0o600 });
    const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as Doc;
    const sql = doc.clusters[0]!.router['sql'] as Record<string, unknown>;
    sql['tls'] = { cert: cert('endpoint.pem'), key: cert('endpoint.key'), mode: 'required' };
    sql['backendTls'] = { ca: cert('ca.pem'), verify: true, required: true };
    sql['passwords'] = { ed: { file: 'secrets/ed.pw' } };
    writeFileSync(sb.configFile, toYaml(doc));
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'sql_endpoint_started', 30000, 'SQL endpoint start');
    await eventually(async () => {
      const m = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database, ssl: { ca: readFileSync(cert('ca.pem')) } });
      try {
        const [rows] = (await m.query('SELECT @@server_id AS s')) as unknown as [Row[]];
        return Number(rows[0]!['s']) !== 1;
      } finally {
        await m.end();
      }
    }, 30000, 'reads reaching a replica');
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
    certs?.remove();
  });

  test('TLS required: the mariadb client with --ssl and with --ssl-verify-server-cert against the test CA; another CA fails verification; a plain client is refused with 3159', async () => {
    const login = ['-u', app.user, `-p${app.password}`, app.database];
    const verified = cli([...login, '--ssl', '-e', 'status']);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stdout, /SSL:\s+Cipher in use is \S+/);
    // Repeated: the client's TLS hello often arrives in the same chunk as its SSL request (a
    // session that dropped those bytes hung about one login in three).
    for (let i = 0; i < 20; i++) {
      const again = cli([...login, '--ssl', `--ssl-ca=${cert('ca.pem')}`, '--ssl-verify-server-cert', '-N', '-e', 'SELECT 1']);
      assert.equal(again.status, 0, `login ${i + 1} over TLS: ${again.stderr}`);
    }
    const wrongCa = cli([...login, '--ssl', `--ssl-ca=${cert('other-ca.pem')}`, '--ssl-verify-server-cert', '-e', 'SELECT 1']);
    assert.notEqual(wrongCa.status, 0, 'a certificate from another CA is not accepted');
    assert.match(wrongCa.stderr, /certificate|SSL|TLS/i);
    const plain = cli([...login, '--skip-ssl', '-e', 'SELECT 1']);
    assert.notEqual(plain.status, 0);
    assert.match(plain.stderr, /ERROR 3159 .*insecure transport.*requires TLS \(router\.sql\.tls\.mode: required\)/);
    // mysql2 over TLS: a text and a prepared statement.
    const m = await mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: app.database, ssl: { ca: readFileSync(cert('ca.pem')) } });
    try {
      assert.equal((m as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted, true);
      const [r] = (await m.execute('SELECT ? + 1 AS two', [1])) as unknown as [Row[]];
      assert.equal(Number(r[0]!['two']), 2);
    } finally {
      await m.end();
    }
  });

  test('TLS to the servers: the endpoint logs in to the primary and replicas over TLS (an account that REQUIRE SSL works, Ssl_cipher is set on both)', async () => {
    const m = await mysql.createConnection({ host: '127.0.0.1', port, user: 'tlsapp', password: 'tls-app-pw', database: app.database, ssl: { ca: readFileSync(cert('ca.pem')) } });
    try {
      const [read] = (await m.query("SELECT @@server_id AS s, VARIABLE_VALUE AS cipher FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'")) as unknown as [Row[]];
      assert.notEqual(Number(read[0]!['s']), 1, 'the read ran on a replica');
      assert.match(String(read[0]!['cipher']), /\S/, 'the replica connection is TLS');
      await m.query("INSERT INTO items (v) VALUES ('over tls')");
      const [write] = (await m.query("/* regent:primary */ SELECT @@server_id AS s, VARIABLE_VALUE AS cipher FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'")) as unknown as [Row[]];
      assert.equal(Number(write[0]!['s']), 1);
      assert.match(String(write[0]!['cipher']), /\S/, 'the primary connection is TLS');
    } finally {
      await m.end();
    }
  });

  test('TLS optional and no backend TLS (a regent proxy beside the manager): plain and TLS clients both work; an account that REQUIRE SSL is refused by the servers', async () => {
    const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as Doc;
    const proxyPort = await freePorts(1);
    delete doc.manager['api'];
    doc.clusters[0]!.router = { sql: { listen: `127.0.0.1:${proxyPort}`, tls: { cert: cert('endpoint.pem'), key: cert('endpoint.key'), mode: 'optional' } } };
    const cfg = join(sb.dir, 'regent-optional-tls.yaml');
    writeFileSync(cfg, toYaml(doc));
    const proxy = new ManagerProcess(cfg, { command: 'proxy' });
    try {
      await proxy.waitFor((e) => e.event === 'sql_endpoint_started', 30000, 'the proxy SQL endpoint');
      const base = ['-h', '127.0.0.1', '-P', String(proxyPort), '-u', app.user, `-p${app.password}`, app.database, '-N', '-e'];
      await eventually(async () => spawnSync('mariadb', [...base, 'SELECT 1', '--skip-ssl'], { encoding: 'utf8' }).status === 0, 60000, 'the proxy routing');
      const plain = spawnSync('mariadb', [...base, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'", '--skip-ssl'], { encoding: 'utf8' });
      assert.equal(plain.status, 0, plain.stderr);
      assert.equal(plain.stdout.trim(), '', 'no TLS to the server here');
      const secure = spawnSync('mariadb', [...base, 'status', '--ssl', `--ssl-ca=${cert('ca.pem')}`, '--ssl-verify-server-cert'], { encoding: 'utf8' });
      assert.equal(secure.status, 0, secure.stderr);
      assert.match(secure.stdout, /SSL:\s+Cipher in use is \S+/);
      const tlsOnly = spawnSync('mariadb', ['-h', '127.0.0.1', '-P', String(proxyPort), '-u', 'tlsapp', '-ptls-app-pw', '--ssl', app.database, '-e', 'SELECT 1'], { encoding: 'utf8' });
      assert.notEqual(tlsOnly.status, 0, 'without backend TLS the servers refuse an account that requires it');
      assert.match(tlsOnly.stderr, /ERROR 1045/);
    } finally {
      await proxy.stop();
    }
  });

  test('ed25519 with its password configured as a secret: logins verified, reads on replicas and writes on the primary as that account; a wrong password gets 1045', async () => {
    const ca = readFileSync(cert('ca.pem'));
    const m = await mysql.createConnection({ host: '127.0.0.1', port, user: 'ed', password: ED_PASSWORD, database: app.database, ssl: { ca } });
    try {
      const [r] = (await m.query('SELECT CURRENT_USER() AS u, @@server_id AS s')) as unknown as [Row[]];
      assert.equal(r[0]!['u'], 'ed@127.0.0.1');
      assert.notEqual(Number(r[0]!['s']), 1);
      await m.execute('INSERT INTO items (v) VALUES (?)', ['by ed']);
    } finally {
      await m.end();
    }
    const rows = await sb.sql(sb.node(1), ["SELECT COUNT(*) AS n FROM app.items WHERE v = 'by ed'"]);
    assert.equal(Number(rows[0]![0]!['n']), 1);
    // The command-line client too (it answers the endpoint's mysql_native_password challenge).
    const viaCli = cli(['-u', 'ed', `-p${ED_PASSWORD}`, '--ssl', app.database, '-N', '-e', 'SELECT CURRENT_USER()']);
    assert.equal(viaCli.status, 0, viaCli.stderr);
    assert.equal(viaCli.stdout.trim(), 'ed@127.0.0.1');
    await assert.rejects(mysql.createConnection({ host: '127.0.0.1', port, user: 'ed', password: 'not-it', database: app.database, ssl: { ca } }), (e: { errno?: number }) => e.errno === 1045);
    // The secret never shows in the manager's log or metrics.
    const api = sb.nodes[0]!.port + PORT.api;
    const metrics = await (await fetch(`http://127.0.0.1:${api}/metrics`)).text();
    assert.ok(!manager.raw.join('\n').includes(ED_PASSWORD), 'the configured password is not in the log');
    assert.ok(!metrics.includes(ED_PASSWORD), 'nor in the metrics');
  });

  test('ed25519 without a configured password: refused at login with 1251, naming the plugin and the fix', async () => {
    const r = cli(['-u', 'ed_nopw', '-pnot-configured', '--ssl', app.database, '-e', 'SELECT 1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /ERROR 1251 .*'ed_nopw' authenticates with ed25519.*router\.sql\.passwords\.ed_nopw/);
    await assert.rejects(
      mysql.createConnection({ host: '127.0.0.1', port, user: 'ed_nopw', password: 'not-configured', ssl: { ca: readFileSync(cert('ca.pem')) } }),
      (e: { errno?: number; message: string }) => e.errno === 1251 && /ed25519/.test(e.message) && /router\.sql\.passwords\.ed_nopw/.test(e.message),
    );
    const api = sb.nodes[0]!.port + PORT.api;
    const metrics = await (await fetch(`http://127.0.0.1:${api}/metrics`)).text();
    assert.match(metrics, /regent_sql_auth_failures_total\{cluster="sandbox",reason="plugin_unsupported"\} [1-9]/);
  });
});
