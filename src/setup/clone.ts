import { spawn } from 'node:child_process';
import { Transform } from 'node:stream';
import type { Account, ClusterConfig, InstanceConfig } from '../config/load.ts';
import { DbConnection } from '../sql/connection.ts';
import type { Flavor } from '../sql/flavor.ts';
import { detectFlavor } from '../monitor/probe.ts';
import { foldVariables, text } from '../sql/row-values.ts';
import { replicateFrom, waitForGtid } from '../recovery/steps.ts';
import { requireExecutable } from '../util/deps.ts';
import type { Progress } from '../util/progress.ts';
import { CloneRefused } from '../errors.ts';


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
  return (await conn.query('SHOW DATABASES')).map((r) => text(Object.values(r)[0])).filter((d) => !SYSTEM_DATABASES.has(d));
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
    if (flavor.name !== 'mariadb') throw new CloneRefused('clone uses mariadb-dump and supports MariaDB targets only');
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
      await tconn.query('SET SESSION sql_log_bin = 0');
      for (const db of existing) await tconn.query(`DROP DATABASE \`${db.replace(/`/g, '``')}\``);
      await tconn.query('RESET MASTER');
    }
    progress?.succeed(opts.discardTargetData ? `target ${target.id} emptied (${existing.length} database(s) dropped)` : `target ${target.id} is empty`);

    const databases = await userDatabases(sconn);
    let gtid = '';
    let bytes = 0;
    if (databases.length > 0) {
      progress?.step(`copying ${databases.join(', ')} from ${source.id}`);
      ({ gtid, bytes } = await dumpInto(cluster, source, target, loader, databases, (b) => progress?.step(`copying ${databases.join(', ')} from ${source.id}: ${(b / 1048576).toFixed(1)} MiB`)));
      progress?.succeed(`copied ${(bytes / 1048576).toFixed(1)} MiB at GTID ${gtid || '(empty)'}`);
    } else {
      gtid = flavor.parseGtids(foldVariables(await sconn.query(flavor.variablesQuery))).executed.toString();
    }

    progress?.step(`starting replication from ${primary.id}`);
    const mconn = await DbConnection.open(target.host, target.port, cluster.accounts.manager, timeouts);
    try {
      for (const sql of flavor.setReadOnly(true)) await mconn.query(sql);
      await mconn.query(flavor.stopReplica());
      for (const s of flavor.setGtidPosition(flavor.parseGtid(gtid))) await mconn.query(s.sql, s.params);
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

/** mariadb-dump | mariadb, passwords through MYSQL_PWD; returns the snapshot's GTID position. */
function dumpInto(cluster: ClusterConfig, source: InstanceConfig, target: InstanceConfig, loader: Account, databases: string[], onBytes: (n: number) => void): Promise<{ gtid: string; bytes: number }> {
  const dumpBin = requireExecutable('mariadb-dump', 'mariadb-client');
  const clientBin = requireExecutable('mariadb', 'mariadb-client');
  return new Promise((resolve, reject) => {
    const dump = spawn(
      dumpBin,
      [`--host=${source.host}`, `--port=${source.port}`, `--user=${cluster.accounts.manager.user}`, '--single-transaction', '--gtid', '--master-data=2', '--routines', '--events', '--triggers', '--hex-blob', '--databases', ...databases],
      { env: { ...process.env, MYSQL_PWD: cluster.accounts.manager.password?.reveal() ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const load = spawn(clientBin, [`--host=${target.host}`, `--port=${target.port}`, `--user=${loader.user}`, '--init-command=SET SESSION sql_log_bin=0', '--batch'], {
      env: { ...process.env, MYSQL_PWD: loader.password?.reveal() ?? '' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let gtid = '';
    let bytes = 0;
    let tail = '';
    let lastReport = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        // The deferred "-- SET GLOBAL gtid_slave_pos='...'" comes near the end of the dump.
        const textChunk = tail + chunk.toString('utf8');
        const m = /-- SET GLOBAL gtid_slave_pos='([^']*)'/.exec(textChunk);
        if (m) gtid = m[1] ?? '';
        tail = textChunk.slice(-200);
        if (Date.now() - lastReport > 250) {
          lastReport = Date.now();
          onBytes(bytes);
        }
        cb(null, chunk);
      },
    });
    let dumpErr = '';
    let loadErr = '';
    dump.stderr!.on('data', (b: Buffer) => (dumpErr += b.toString('utf8')));
    load.stderr!.on('data', (b: Buffer) => (loadErr += b.toString('utf8')));
    dump.stdout!.pipe(meter).pipe(load.stdin!);
    let dumpCode: number | null | undefined;
    let loadCode: number | null | undefined;
    const finish = () => {
      if (dumpCode === undefined || loadCode === undefined) return;
      if (dumpCode !== 0) reject(new Error(`mariadb-dump from ${source.id} failed (${dumpCode}): ${dumpErr.trim().split('\n').slice(-2).join(' ')}`));
      else if (loadCode !== 0) reject(new Error(`loading into ${target.id} failed (${loadCode}): ${loadErr.trim().split('\n').slice(-2).join(' ')}`));
      else if (!gtid && databases.length > 0) reject(new Error('the dump carried no GTID position (is the source binlogging with GTIDs?)'));
      else resolve({ gtid, bytes });
    };
    dump.on('close', (c) => {
      dumpCode = c;
      finish();
    });
    load.on('close', (c) => {
      loadCode = c;
      finish();
    });
    dump.on('error', reject);
    load.on('error', reject);
  });
}
