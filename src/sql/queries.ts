import type { DbConnection } from './connection.ts';
import type { Row } from './flavor.ts';
import { parseInnodbTransactionList } from './innodb-status.ts';
import { int, text } from './row-values.ts';

/**
 * Statements that are the same on MariaDB and MySQL 8 (so they need no flavor).
 */

/** Open InnoDB transactions that changed rows (would be lost or must finish), with their age in seconds. */
export async function listWriteTransactions(conn: DbConnection): Promise<{ id: string; seconds: number; rowsModified: number }[]> {
  const rows = await conn.query(
    'SELECT trx_id AS id, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS secs, trx_rows_modified AS rows_modified FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0',
  );
  return rows.map((r) => ({ id: text(r['id']), seconds: int(r['secs']), rowsModified: int(r['rows_modified']) }));
}

/**
 * Open write transactions right now, from the live list of SHOW ENGINE INNODB STATUS (INNODB_TRX
 * may show rows up to 100 ms old: src/sql/innodb-status.ts). `undefined` when the server cut the
 * list short (over 1 MB of status text): the caller then falls back to INNODB_TRX.
 */
export async function countLiveWriteTransactions(conn: DbConnection): Promise<number | undefined> {
  const row = await conn.queryOne('SHOW ENGINE INNODB STATUS');
  return parseInnodbTransactionList(text(row?.['Status']))?.writeTransactions.length;
}

/** Ends a server session (a client's, or a replication IO thread's connection). */
export async function killConnection(conn: DbConnection, id: number): Promise<void> {
  await conn.query(`KILL CONNECTION ${Math.trunc(id)}`);
}

/**
 * Client sessions: everything but replication threads, system threads and the given accounts
 * (Regent's own and the replication account).
 */
export async function listClientSessions(conn: DbConnection, exceptUsers: string[]): Promise<number[]> {
  const rows = await conn.query(
    `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler'${exceptUsers.map(() => ', ?').join('')}) AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon')`,
    exceptUsers,
  );
  return rows.map((r) => int(r['id']));
}

/**
 * Ends `SET GLOBAL ... read_only` statements of `user` still waiting on the server (for a lock a
 * session holds): one that timed out on our side would otherwise take effect later.
 */
export async function killPendingReadOnlyChanges(conn: DbConnection, user: string): Promise<void> {
  const pending = await conn.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER = ? AND INFO LIKE 'SET GLOBAL %read_only%'", [user]);
  for (const r of pending) await conn.query(`KILL QUERY ${int(r['id'])}`).catch(() => undefined);
}

/** What this session writes stays out of the binary log (account changes, clone loads, rewinds). */
export async function withoutBinlog(conn: DbConnection): Promise<void> {
  await conn.query('SET SESSION sql_log_bin = 0');
}

export async function listDatabases(conn: DbConnection): Promise<string[]> {
  return (await conn.query('SHOW DATABASES')).map((r) => text(Object.values(r)[0]));
}

export async function dropDatabase(conn: DbConnection, name: string): Promise<void> {
  await conn.query(`DROP DATABASE \`${name.replace(/`/g, '``')}\``);
}

/** SELECT @@version and @@version_comment: what tells the server family. */
export async function serverVersion(conn: DbConnection): Promise<string> {
  const row = await conn.queryOne('SELECT @@version AS version, @@version_comment AS comment');
  return `${text(row?.['version'])} ${text(row?.['comment'])}`;
}

/** The session's account as the server matched it, this client's host as the server sees it, and the version. */
export async function whoAmI(conn: DbConnection): Promise<{ account: string; client: string; version: string } | undefined> {
  const row = await conn.queryOne('SELECT CURRENT_USER() AS u, USER() AS client, @@version AS version');
  return row ? { account: text(row['u']), client: text(row['client']), version: text(row['version']) } : undefined;
}

/** SHOW GRANTS FOR CURRENT_USER(), one line per grant. */
export async function ownGrants(conn: DbConnection): Promise<string[]> {
  return (await conn.query('SHOW GRANTS FOR CURRENT_USER()')).map((r) => text(Object.values(r)[0]));
}

/** The given global variables (names the server does not have are simply absent). */
export async function globalVariables(conn: DbConnection, names: string[]): Promise<Row[]> {
  return conn.query(`SHOW GLOBAL VARIABLES WHERE Variable_name IN (${names.map((n) => `'${n.replace(/'/g, '')}'`).join(',')})`);
}

/** The server's clock (seconds since the epoch, with microseconds). */
export async function serverClockSeconds(conn: DbConnection): Promise<number> {
  return Number(text((await conn.queryOne('SELECT UNIX_TIMESTAMP(NOW(6)) AS t'))?.['t']));
}

/** Host parts of the accounts with this user name (mysql.user). */
export async function accountHosts(conn: DbConnection, user: string): Promise<string[]> {
  return (await conn.query('SELECT Host AS h FROM mysql.user WHERE User = ?', [user])).map((r) => text(r['h']));
}

/** CREATE USER with a password sent as a parameter; the account gets the given global privileges. */
export async function createAccount(conn: DbConnection, user: string, host: string, password: string, globalPrivileges: string[], extra: { database?: string; allOnDatabase?: boolean; grantOption?: boolean } = {}): Promise<void> {
  await conn.query('CREATE USER ?@? IDENTIFIED BY ?', [user, host, password]);
  if (globalPrivileges.length > 0) await conn.query(`GRANT ${globalPrivileges.join(', ')} ON *.* TO ?@?${extra.grantOption ? ' WITH GRANT OPTION' : ''}`, [user, host]);
  if (extra.database && extra.allOnDatabase) await conn.query(`GRANT ALL ON \`${extra.database.replace(/`/g, '``')}\`.* TO ?@?`, [user, host]);
}

export async function createDatabase(conn: DbConnection, name: string): Promise<void> {
  await conn.query(`CREATE DATABASE \`${name.replace(/`/g, '``')}\``);
}

/**
 * Clients reading this server's binary log (binlog dump threads): the replicas attached to it,
 * registered or not. `host` is the client address as the server saw it (host:port of the socket).
 */
export async function binlogDumpClients(conn: DbConnection): Promise<{ host: string }[]> {
  const rows = await conn.query("SELECT HOST AS host FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID')");
  return rows.map((r) => ({ host: text(r['host']).replace(/:\d+$/, '') }));
}
