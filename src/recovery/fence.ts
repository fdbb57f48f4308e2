import type { ClusterConfig } from '../config/load.ts';
import type { DbConnection } from '../sql/connection.ts';
import type { Flavor } from '../sql/flavor.ts';
import { killConnection, listClientSessions } from '../sql/queries.ts';

/**
 * Makes a server refuse writes: every client session killed, read_only on, and the sessions that
 * came in between killed too, so that no open transaction commits afterwards. Replication threads
 * and Regent's own sessions are spared. Returns how many sessions were killed.
 *
 * Killing comes first: setting read_only waits for the commits in progress, and on a former
 * primary whose replicas left, a commit waits for a semi-sync acknowledgement until the timeout
 * and then reports success to its client: a write acknowledged on a server that is no longer the
 * primary. A killed session's client gets an error instead.
 */
export async function fenceServer(conn: DbConnection, flavor: Flavor, cluster: ClusterConfig): Promise<number> {
  let killed = await killClientSessions(conn, cluster);
  for (const sql of flavor.setReadOnly(true)) await conn.query(sql);
  killed += await killClientSessions(conn, cluster);
  return killed;
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
