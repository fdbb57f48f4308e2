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
