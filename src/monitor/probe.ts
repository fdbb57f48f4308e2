import type { DbConnection } from '../sql/connection.ts';
import { flavorForVersion } from '../sql/flavors.ts';
import type { Flavor, Row } from '../sql/flavor.ts';
import { foldVariables } from '../sql/row-values.ts';
import { serverVersion } from '../sql/queries.ts';
import type { InstanceObservation } from './observation.ts';

/** Asks the server which family it is; the answer decides every later statement. */
export async function detectFlavor(conn: DbConnection): Promise<Flavor> {
  return flavorForVersion(await serverVersion(conn));
}

/** The three probe statements as one multi-statement query, per flavor object. */
const batches = new WeakMap<Flavor, string>();

function probeBatch(flavor: Flavor): string {
  let sql = batches.get(flavor);
  if (sql === undefined) {
    sql = `${flavor.variablesQuery};${flavor.statusQuery};${flavor.replicaStatusQuery}`;
    batches.set(flavor, sql);
  }
  return sql;
}

/**
 * One full probe over an open connection: settings, GTID positions, semi-sync, replica status.
 * On a connection that allows several statements per query (the prober's) the three statements
 * go in one round trip: one write, one wake-up and one timeout instead of three (the socket
 * writes alone were 17 % of a manager's CPU at 1,000 instances; `npm run bench -- fleet`).
 */
export async function probeInstance(conn: DbConnection, flavor: Flavor, id: string): Promise<InstanceObservation> {
  const started = performance.now();
  let varRows: Row[], statusRows: Row[], replicaRows: Row[];
  if (conn.multipleStatements) [varRows, statusRows, replicaRows] = (await conn.queryBatch(probeBatch(flavor), 3)) as [Row[], Row[], Row[]];
  else {
    varRows = await conn.query(flavor.variablesQuery);
    statusRows = await conn.query(flavor.statusQuery);
    replicaRows = await conn.query(flavor.replicaStatusQuery);
  }
  const latencyMs = performance.now() - started;
  const vars = foldVariables(varRows);
  const status = foldVariables(statusRows);
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
