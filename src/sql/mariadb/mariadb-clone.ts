import { spawn } from 'node:child_process';
import { Transform } from 'node:stream';
import type { Account, ClusterConfig, InstanceConfig } from '../../config/load.ts';
import { requireExecutable } from '../../util/deps.ts';
import type { CloneTool } from '../flavor.ts';

/**
 * Clone for MariaDB: a consistent mariadb-dump (--single-transaction, the GTID position of the
 * snapshot) piped straight into the target with binary logging off.
 */
export const mariadbClone: CloneTool = { copy: dumpInto };

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
    // Undefined until the dump states it; '' is a real position (a source with no transactions yet).
    let gtid: string | undefined;
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
      else if (gtid === undefined && databases.length > 0) reject(new Error('the dump carried no GTID position (is the source binlogging with GTIDs?)'));
      else resolve({ gtid: gtid ?? '', bytes });
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
