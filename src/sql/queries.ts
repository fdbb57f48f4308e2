import type { DbConnection } from './connection.ts';
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
