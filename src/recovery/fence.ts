import type { ClusterConfig } from '../config/load.ts';
import type { DbConnection } from '../sql/connection.ts';
import type { Flavor } from '../sql/flavor.ts';
import { killConnection, listClientSessions } from '../sql/queries.ts';

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
  let killed = 0;
  for (const id of await listClientSessions(conn, [cluster.accounts.manager.user, cluster.accounts.replication.user])) {
    try {
      await killConnection(conn, id);
      killed++;
    } catch {
      // the session ended by itself in between
    }
  }
  return killed;
}
