import type { DbConnection } from '../sql/connection.ts';
import { flavorForVersion } from '../sql/flavors.ts';
import type { Flavor } from '../sql/flavor.ts';
import { foldVariables } from '../sql/row-values.ts';
import { serverVersion } from '../sql/queries.ts';
import type { InstanceObservation } from './observation.ts';

/** Asks the server which family it is; the answer decides every later statement. */
export async function detectFlavor(conn: DbConnection): Promise<Flavor> {
  return flavorForVersion(await serverVersion(conn));
}

/** One full probe over an open connection: settings, GTID positions, semi-sync, replica status. */
export async function probeInstance(conn: DbConnection, flavor: Flavor, id: string): Promise<InstanceObservation> {
  const started = performance.now();
  const vars = foldVariables(await conn.query(flavor.variablesQuery));
  const status = foldVariables(await conn.query(flavor.statusQuery));
  const replicaRows = await conn.query(flavor.replicaStatusQuery);
  const latencyMs = performance.now() - started;
  return {
    id,
    at: Date.now(),
    reachable: true,
    latencyMs,
    flavor: flavor.name,
    settings: flavor.parseSettings(vars),
    gtids: flavor.parseGtids(vars),
    semiSync: flavor.parseSemiSync(status),
    replica: flavor.parseReplicaStatus(replicaRows),
  };
}
