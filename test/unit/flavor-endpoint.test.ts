import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MariaGtidPosition, MysqlGtidSet } from '../../src/gtid/index.ts';
import { FAMILIES } from '../../src/sql/families.ts';
import { routerGrantStatements, routerPrivileges } from '../../src/sql/grants.ts';
import { killStatement, quoteIdentifier, setSessionVariables, sqlString, trackedValue, useSchema } from '../../src/sql/session-sql.ts';
import { accountRows } from '../../src/router/sql/accounts.ts';

/** The SQL endpoint's statements: the family-specific ones behind each family, the generic ones in src/sql/session-sql.ts. */

const { mariadb, mysql } = FAMILIES;

test('endpoint: session tracking reports variables and schema in both families; the GTID of a commit through last_gtid (MariaDB) or the GTID tracker (MySQL)', () => {
  assert.equal(mariadb.endpoint.sessionTracking, "SET SESSION session_track_system_variables='*', session_track_schema=ON");
  assert.equal(mysql.endpoint.sessionTracking, "SET SESSION session_track_system_variables='*', session_track_schema=ON, session_track_gtids='OWN_GTID'");
});

test('endpoint: the GTID wait as text, with each family\'s function and a fixed-point timeout', () => {
  const g = MariaGtidPosition.parse('0-1-15,1-2-7');
  assert.equal(mariadb.endpoint.waitForGtidText(g, 1.5), "SELECT MASTER_GTID_WAIT('0-1-15,1-2-7', 1.500)");
  const s = MysqlGtidSet.parse('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5');
  assert.equal(mysql.endpoint.waitForGtidText(s, 0.25), "SELECT WAIT_FOR_EXECUTED_GTID_SET('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', 0.250)");
  // A tiny or negative timeout never becomes exponent notation or a negative wait.
  assert.equal(mariadb.endpoint.waitForGtidText(g, 1e-7), "SELECT MASTER_GTID_WAIT('0-1-15,1-2-7', 0.000)");
  assert.equal(mariadb.endpoint.waitForGtidText(g, -3), "SELECT MASTER_GTID_WAIT('0-1-15,1-2-7', 0.000)");
});

test('endpoint: the account-hashes query of each family reads the table the router account is granted, with the columns accountRows reads', () => {
  assert.match(mariadb.endpoint.accountHashesQuery, /FROM mysql\.global_priv\b/);
  assert.match(mariadb.endpoint.accountHashesQuery, /is_role/, 'roles are not accounts');
  assert.match(mysql.endpoint.accountHashesQuery, /FROM mysql\.user\b/);
  for (const f of [mariadb, mysql]) {
    for (const col of ['user', 'host', 'plugin', 'auth', 'locked', 'auth_or']) assert.match(f.endpoint.accountHashesQuery, new RegExp(`\\b${col}\\b`), `${f.name}: column ${col}`);
    const table = /FROM (mysql\.\w+)/.exec(f.endpoint.accountHashesQuery)![1];
    assert.deepEqual(routerPrivileges(f.name).map((p) => `${p.privilege} ON ${p.on}`), [`SELECT ON ${table}`]);
  }
  assert.deepEqual(routerGrantStatements('mariadb', "'r'@'%'"), ["GRANT SELECT ON mysql.global_priv TO 'r'@'%'"]);
});

test('endpoint: rows of the account-hashes query (MariaDB alternatives, locks, missing plugin)', () => {
  const rows = accountRows([
    { user: 'app', host: '10.%', plugin: 'mysql_native_password', auth: '*ABC', locked: null, auth_or: null },
    { user: 'ed', host: '%', plugin: 'ed25519', auth: 'xyz', locked: 'true', auth_or: null },
    { user: 'both', host: '%', plugin: 'ed25519', auth: 'k', locked: 0, auth_or: '[{"plugin":"ed25519","authentication_string":"k"},{"plugin":"mysql_native_password","authentication_string":"*DEF"}]' },
    { user: 'old', host: 'localhost', plugin: null, auth: null, locked: '1', auth_or: null },
  ]);
  assert.deepEqual(rows, [
    { user: 'app', host: '10.%', plugin: 'mysql_native_password', auth: '*ABC', locked: false },
    { user: 'ed', host: '%', plugin: 'ed25519', auth: 'xyz', locked: true },
    { user: 'both', host: '%', plugin: 'mysql_native_password', auth: '*DEF', locked: false },
    { user: 'old', host: 'localhost', plugin: 'mysql_native_password', auth: '', locked: true },
  ]);
});

test('session SQL: string literals read the same with and without NO_BACKSLASH_ESCAPES', () => {
  assert.equal(sqlString("it's"), "'it''s'");
  assert.equal(sqlString('a\\b'), "CONCAT('a', CHAR(92), 'b')");
  assert.equal(sqlString("\\'"), "CONCAT('', CHAR(92), '''')");
  assert.equal(trackedValue('42'), '42');
  assert.equal(trackedValue('-1.5'), '-1.5');
  assert.equal(trackedValue('NULL'), 'NULL');
  assert.equal(trackedValue('+05:30'), "'+05:30'");
  assert.equal(trackedValue('1e3'), "'1e3'");
});

test('session SQL: SET SESSION keeps the order given and refuses what is not a variable name', () => {
  assert.equal(setSessionVariables([['character_set_client', 'latin1'], ['sql_mode', 'ANSI_QUOTES'], ['max_join_size', '1000']]), "SET SESSION character_set_client = 'latin1', sql_mode = 'ANSI_QUOTES', max_join_size = 1000");
  assert.throws(() => setSessionVariables([['x = 1; DROP TABLE t; SET y', '1']]), /not a system variable name/);
  assert.throws(() => setSessionVariables([]), /no variables/);
});

test('session SQL: USE and KILL', () => {
  assert.equal(useSchema('app'), 'USE `app`');
  assert.equal(useSchema('we`ird'), 'USE `we``ird`');
  assert.equal(quoteIdentifier('a b'), '`a b`');
  assert.equal(killStatement(17, false), 'KILL 17');
  assert.equal(killStatement(17, true), 'KILL QUERY 17');
  assert.throws(() => killStatement(Number.NaN, false), /not a thread id/);
  assert.throws(() => killStatement(-1, true), /not a thread id/);
});
