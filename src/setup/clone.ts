import type { Account, ClusterConfig, InstanceConfig } from '../config/load.ts';
import { DbConnection } from '../sql/connection.ts';
import type { Flavor } from '../sql/flavor.ts';
import { detectFlavor } from '../monitor/probe.ts';
import { foldVariables } from '../sql/row-values.ts';
import { dropDatabase, listDatabases, withoutBinlog } from '../sql/queries.ts';
import { replicateFrom, waitForGtid } from '../recovery/steps.ts';
import type { Progress } from '../util/progress.ts';
import { CloneRefused, StepFailed } from '../errors.ts';


const SYSTEM_DATABASES = new Set(['information_schema', 'mysql', 'performance_schema', 'sys']);

export interface CloneOptions {
  source: InstanceConfig;
  target: InstanceConfig;
  /** The current primary the clone replicates from afterwards. */
  primary: InstanceConfig;
  /** Drop the target's application databases and GTID history first (repair --reclone). */
  discardTargetData?: boolean;
  progress?: Progress;
  catchUpTimeoutSeconds?: number;
}

export interface CloneResult {
  gtid: string;
  bytes: number;
  databases: string[];
  durationMs: number;
}

async function userDatabases(conn: DbConnection): Promise<string[]> {
  return (await listDatabases(conn)).filter((d) => !SYSTEM_DATABASES.has(d));
}

/**
 * Copies a live instance onto an empty server: a consistent mariadb-dump (--single-transaction,
 * the GTID position of the snapshot) piped straight into the target with binary logging off, then
 * the target starts replicating from the primary at that position and catches up. The source keeps
 * serving; nothing is written to it. Refuses a target that holds data unless told to discard it.
 */
export async function cloneInstance(cluster: ClusterConfig, opts: CloneOptions): Promise<CloneResult> {
  const started = Date.now();
  const progress = opts.progress;
  const timeouts = { connectTimeoutMs: cluster.monitor.connectTimeoutMs, queryTimeoutMs: 60000 };
  const { source, target, primary } = opts;
  if (target.id === source.id) throw new CloneRefused('source and target are the same instance');
  if (target.id === primary.id) throw new CloneRefused(`${target.id} is the primary; clone onto a replica or an empty server`);
  const loader: Account = cluster.accounts.clone;
  const tconn = await DbConnection.open(target.host, target.port, loader, timeouts);
  const sconn = await DbConnection.open(source.host, source.port, cluster.accounts.manager, timeouts);
  try {
    const flavor = await detectFlavor(tconn);
    const tool = flavor.family.clone;
    if (!tool) throw new CloneRefused(`clone has no tool for ${flavor.family.displayName} targets yet (MariaDB only: mariadb-dump); rebuild the server with your own backup tool`);
    progress?.step(`checking target ${target.id}`);
    const existing = await userDatabases(tconn);
    const targetGtids = flavor.parseGtids(foldVariables(await tconn.query(flavor.variablesQuery)));
    if (!opts.discardTargetData) {
      if (existing.length > 0) throw new CloneRefused(`target ${target.id} is not empty (databases: ${existing.join(', ')}); clone only onto an empty server, or use \`regent repair ${target.name} --reclone\` to discard its data`);
      if (!targetGtids.executed.isEmpty()) throw new CloneRefused(`target ${target.id} has a GTID history (${targetGtids.executed.toString()}); clone only onto a fresh server`);
    } else {
      await tconn.query(flavor.stopReplica());
      await tconn.query(flavor.resetReplica());
      for (const sql of flavor.setReadOnly(true)) await tconn.query(sql);
      await withoutBinlog(tconn);
      for (const db of existing) await dropDatabase(tconn, db);
    }
    progress?.succeed(opts.discardTargetData ? `target ${target.id} emptied (${existing.length} database(s) dropped)` : `target ${target.id} is empty`);

    const databases = await userDatabases(sconn);
    let gtid = '';
    let bytes = 0;
    if (databases.length > 0) {
      progress?.step(`copying ${databases.join(', ')} from ${source.id}`);
      try {
        ({ gtid, bytes } = await tool.copy(cluster, source, target, loader, databases, (b) => progress?.step(`copying ${databases.join(', ')} from ${source.id}: ${(b / 1048576).toFixed(1)} MiB`)));
      } catch (e) {
        // The dump or the load failed: one line for the person, not a stack.
        throw new StepFailed(`copying from ${source.id} to ${target.id} failed: ${(e as Error).message}`);
      }
      progress?.succeed(`copied ${(bytes / 1048576).toFixed(1)} MiB at GTID ${gtid || '(empty)'}`);
    } else {
      gtid = flavor.parseGtids(foldVariables(await sconn.query(flavor.variablesQuery))).executed.toString();
    }

    progress?.step(`starting replication from ${primary.id}`);
    const mconn = await DbConnection.open(target.host, target.port, cluster.accounts.manager, timeouts);
    try {
      for (const sql of flavor.setReadOnly(true)) await mconn.query(sql);
      await mconn.query(flavor.stopReplica());
      // The target's history is the snapshot's; anything its binary log held before is gone.
      for (const s of flavor.resetHistoryTo(flavor.parseGtid(gtid))) await mconn.query(s.sql, s.params);
      await replicateFrom(mconn, flavor, cluster, primary, 'replica-position');
      progress?.succeed();
      progress?.step('waiting for the clone to catch up');
      await waitCaughtUp(cluster, mconn, flavor, primary, opts.catchUpTimeoutSeconds ?? 300);
      progress?.succeed();
    } finally {
      await mconn.close();
    }
    return { gtid, bytes, databases, durationMs: Date.now() - started };
  } catch (e) {
    progress?.fail();
    throw e;
  } finally {
    await tconn.close();
    await sconn.close();
  }
}

async function waitCaughtUp(cluster: ClusterConfig, conn: DbConnection, flavor: Flavor, primary: InstanceConfig, timeoutSeconds: number): Promise<void> {
  const pconn = await DbConnection.open(primary.host, primary.port, cluster.accounts.manager, { connectTimeoutMs: cluster.monitor.connectTimeoutMs, queryTimeoutMs: 30000 });
  try {
    const pflavor = await detectFlavor(pconn);
    const target = pflavor.parseGtids(foldVariables(await pconn.query(pflavor.variablesQuery))).executed;
    if (!(await waitForGtid(conn, flavor, target, timeoutSeconds))) {
      const st = flavor.parseReplicaStatus(await conn.query(flavor.replicaStatusQuery));
      throw new Error(`the clone did not reach ${target.toString()} within ${timeoutSeconds} s${st?.lastSqlErrno ? ` (SQL error ${st.lastSqlErrno}: ${st.lastSqlError})` : st?.lastIoErrno ? ` (IO error ${st.lastIoErrno}: ${st.lastIoError})` : ''}`);
    }
  } finally {
    await pconn.close();
  }
}
