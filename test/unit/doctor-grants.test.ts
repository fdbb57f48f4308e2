import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { normalizeVersion, readServerVersion } from '../../src/doctor/server-version.ts';
import { flavorForVersion } from '../../src/sql/flavors.ts';
import { clonePrivileges, managerPrivileges, neededForFailover, parseGlobalGrants, renderAccountScript, sqlAccount, type AccountToGrant } from '../../src/sql/grants.ts';

/** `regent grants` output and the server-greeting flavor detection, without a server. */

const accounts: AccountToGrant[] = [
  { role: 'manager', user: 'regent', host: '10.0.0.%', passwordPlaceholder: '<MANAGER_PASSWORD>', passwordSource: 'file /etc/regent/secrets/manager.pw' },
  { role: 'replication', user: 'repl', host: '10.0.0.%', passwordPlaceholder: '<REPLICATION_PASSWORD>' },
  { role: 'clone', user: 'loader', host: '10.0.0.%', passwordPlaceholder: '<CLONE_PASSWORD>' },
];

/** The GRANT statements of a script, comments removed, as SHOW GRANTS would list them. */
function grantsOf(script: string): Map<string, string[]> {
  const statements = script
    .split('\n')
    .map((l) => l.replace(/--.*$/, '').trim())
    .filter(Boolean)
    .join(' ')
    .split(';')
    .map((s) => s.trim().replace(/\s+/g, ' '));
  const out = new Map<string, string[]>();
  for (const s of statements) {
    const m = /^GRANT (.+) ON \*\.\* TO ('[^']+'@'[^']+')$/.exec(s);
    if (m) out.set(m[2]!, [...parseGlobalGrants([`GRANT ${m[1]} ON *.* TO x`])]);
  }
  return out;
}

for (const flavor of ['mariadb', 'mysql'] as const) {
  test(`${flavor}: every account, exactly the needed privileges, a comment each, placeholders only`, () => {
    const script = renderAccountScript(flavor, accounts, ['header line']);
    assert.match(script, /^-- header line\n/);
    assert.match(script, /^SET SESSION sql_log_bin = 0;$/m);
    assert.match(script, /^CREATE USER 'regent'@'10\.0\.0\.%' IDENTIFIED BY '<MANAGER_PASSWORD>';$/m);
    assert.match(script, /^CREATE USER 'repl'@'10\.0\.0\.%' IDENTIFIED BY '<REPLICATION_PASSWORD>';$/m);
    assert.match(script, /Replace <MANAGER_PASSWORD> with its password \(Regent reads it from file \/etc\/regent\/secrets\/manager\.pw\)/);
    const grants = grantsOf(script);
    assert.deepEqual(grants.get("'regent'@'10.0.0.%'")?.sort(), managerPrivileges(flavor).map((p) => p.privilege).sort());
    assert.deepEqual(grants.get("'repl'@'10.0.0.%'"), ['REPLICATION SLAVE']);
    if (flavor === 'mariadb') assert.deepEqual(grants.get("'loader'@'10.0.0.%'")?.sort(), clonePrivileges('mariadb').map((p) => p.privilege).sort());
    else {
      assert.equal(grants.get("'loader'@'10.0.0.%'"), undefined);
      assert.match(script, /regent clone supports MariaDB only: no clone account is needed on mysql/);
    }
    // One comment per privilege line, saying what needs it; failover ones are marked.
    for (const p of managerPrivileges(flavor)) {
      const line = script.split('\n').find((l) => new RegExp(`^(GRANT )? *${p.privilege}[ ,]`).test(l.replace(/^GRANT /, '')) && l.includes(p.why.replace(/;/g, ',')));
      assert.ok(line, `no commented line for ${p.privilege}`);
      assert.equal(line.includes('-- failover: '), neededForFailover(flavor, p.privilege), line);
    }
    // No statement ends inside a comment (tools split scripts on ';').
    for (const l of script.split('\n')) if (l.includes('--')) assert.ok(!l.slice(l.indexOf('--')).includes(';'), l);
  });
}

test('every privilege a failover needs is one the manager account is granted', () => {
  for (const flavor of ['mariadb', 'mysql'] as const) {
    const names = new Set(managerPrivileges(flavor).map((p) => p.privilege));
    for (const p of ['PROCESS', 'CONNECTION ADMIN', 'CONNECTION_ADMIN', 'READ_ONLY ADMIN', 'SLAVE MONITOR', 'REPLICATION SLAVE ADMIN', 'REPLICATION_SLAVE_ADMIN', 'SYSTEM_VARIABLES_ADMIN'])
      if (neededForFailover(flavor, p)) assert.ok(names.has(p), `${flavor}: ${p}`);
    assert.ok(managerPrivileges(flavor).some((p) => neededForFailover(flavor, p.privilege)));
  }
  assert.equal(neededForFailover('mariadb', 'EVENT'), false);
});

test('account names are quoted as SQL strings', () => {
  assert.equal(sqlAccount("o'brien", '%'), "'o''brien'@'%'");
  assert.equal(sqlAccount('a\\b', '10.%'), "'a\\\\b'@'10.%'");
});

test('the server family from the greeting, before any login', async () => {
  assert.equal(normalizeVersion('5.5.5-10.11.19-MariaDB-0+deb12u1'), '10.11.19-MariaDB-0+deb12u1');
  assert.equal(flavorForVersion(normalizeVersion('5.5.5-10.11.19-MariaDB-0+deb12u1')).name, 'mariadb');
  assert.equal(normalizeVersion('8.4.3'), '8.4.3');
  // A fake server that sends a protocol-10 greeting and nothing else.
  const version = '5.5.5-10.11.19-MariaDB-log';
  const payload = Buffer.concat([Buffer.from([10]), Buffer.from(version), Buffer.from([0]), Buffer.alloc(20)]);
  const header = Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, (payload.length >> 16) & 0xff, 0]);
  const srv = createServer((s) => s.end(Buffer.concat([header, payload])));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (srv.address() as { port: number }).port;
    assert.equal(await readServerVersion('127.0.0.1', port, 1000), '10.11.19-MariaDB-log');
  } finally {
    await new Promise((r) => srv.close(r));
  }
  // Nothing listening: a clear error, not a hang.
  await assert.rejects(readServerVersion('127.0.0.1', 1, 1000), /connection refused/);
});
