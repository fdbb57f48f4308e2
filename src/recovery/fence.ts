import type { ClusterConfig } from '../config/load.ts';
import type { DbConnection } from '../sql/connection.ts';
import type { Flavor } from '../sql/flavor.ts';
import { text } from '../sql/row-values.ts';

/**
 * Makes a server refuse writes: read_only on, then every client session killed so that no open
 * transaction commits afterwards. Replication threads and Regent's own sessions are spared.
 * Returns how many sessions were killed.
 */
export async function fenceServer(conn: DbConnection, flavor: Flavor, cluster: ClusterConfig): Promise<number> {
  for (const sql of flavor.setReadOnly(true)) await conn.query(sql);
  return killClientSessions(conn, cluster);
}

export async function killClientSessions(conn: DbConnection, cluster: ClusterConfig): Promise<number> {
  const rows = await conn.query(
    "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler', ?, ?) AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon')",
    [cluster.accounts.manager.user, cluster.accounts.replication.user],
  );
  let killed = 0;
  for (const r of rows) {
    try {
      await conn.query(`KILL CONNECTION ${Number(text(r['id']))}`);
      killed++;
    } catch {
      // the session ended by itself in between
    }
  }
  return killed;
}
