import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Account, InstanceConfig } from '../../config/load.ts';
import type { DbConnection } from '../connection.ts';
import { text } from '../row-values.ts';
import { findExecutable } from '../../util/deps.ts';

/**
 * mariadb-binlog and the mariadb client, run as child processes. The password goes through the
 * MYSQL_PWD environment variable, never the command line (which `ps` shows to everyone).
 */

function run(cmd: string, args: string[], account: Account, opts: { stdoutFile?: string; stdin?: NodeJS.ReadableStream; timeoutMs?: number } = {}): Promise<{ code: number | null; stderr: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, MYSQL_PWD: account.password?.reveal() ?? '' }, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let bytes = 0;
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const out = opts.stdoutFile ? createWriteStream(opts.stdoutFile, { mode: 0o600 }) : undefined;
    child.stdout!.on('data', (b: Buffer) => (bytes += b.length));
    if (out) child.stdout!.pipe(out);
    else child.stdout!.resume();
    if (opts.stdin && child.stdin) opts.stdin.pipe(child.stdin);
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      const done = () => resolve({ code, stderr: stderr.trim(), bytes });
      if (out) out.end(done);
      else done();
    });
  });
}

async function binlogFiles(conn: DbConnection): Promise<string[]> {
  return (await conn.query('SHOW BINARY LOGS')).map((r) => text(r['Log_name']));
}

/** Writes the node's own binlog events after `fromGtid` to `file`: as SQL to replay (flashback=false) or reversed (true). */
export async function dumpBinlogAfter(node: InstanceConfig, conn: DbConnection, account: Account, fromGtid: string, file: string, flashback: boolean): Promise<number> {
  const logs = await binlogFiles(conn);
  if (logs.length === 0) throw new Error(`${node.id} has no binary logs`);
  const args = [
    '--read-from-remote-server',
    `--host=${node.host}`,
    `--port=${node.port}`,
    `--user=${account.user}`,
    `--start-position=${fromGtid}`,
    ...(flashback ? ['--flashback'] : []),
    '--to-last-log',
    logs[0]!,
  ];
  const r = await run(requireTool('mariadb-binlog'), args, account, { stdoutFile: file, timeoutMs: 120000 });
  if (r.code !== 0) throw new Error(`mariadb-binlog failed (${r.code}): ${r.stderr.split('\n').slice(-2).join(' ')}`);
  return r.bytes;
}

/** Applies an SQL file (mariadb-binlog output) to a server with binary logging off for the session. */
export async function applySqlFile(node: InstanceConfig, account: Account, file: string): Promise<void> {
  const args = [`--host=${node.host}`, `--port=${node.port}`, `--user=${account.user}`, '--init-command=SET SESSION sql_log_bin=0', '--batch'];
  const r = await run(requireTool('mariadb'), args, account, { stdin: createReadStream(file), timeoutMs: 300000 });
  if (r.code !== 0) throw new Error(`applying ${file} failed (${r.code}): ${r.stderr.split('\n').slice(-2).join(' ')}`);
}

function requireTool(name: string): string {
  const p = findExecutable(name);
  if (!p) throw new Error(`${name} is not installed (apt-get install -y mariadb-client)`);
  return p;
}
