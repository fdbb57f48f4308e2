import { createSandbox } from '../sandbox/sandbox.ts';
import { createLogger } from '../util/log.ts';
import { createProgress } from '../util/progress.ts';
import { startManager, type RunningManager } from './run.ts';
import { describeSandbox } from './sandbox.ts';

/**
 * `npm run demo`: a 3-node sandbox and a manager watching it, with what to try printed. Ctrl-C
 * stops the manager and the servers and removes the sandbox directory.
 */
export async function demoCommand(opts: { dir: string; basePort: number }): Promise<number> {
  const sandbox = await createSandbox({ dir: opts.dir, nodes: 3, basePort: opts.basePort, progress: createProgress() });
  const config = sandbox.config();
  const log = createLogger(process.env.REGENT_LOG_LEVEL || 'info');
  let running: RunningManager | undefined;
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nstopping the manager and the sandbox...\n');
    await running?.stop();
    await sandbox.down();
  };
  try {
    running = await startManager(config, log);
    const cfg = sandbox.configFile;
    const dir = sandbox.dir;
    const cluster = config.clusters[0]!;
    const app = sandbox.appAccount();
    process.stdout.write(
      [
        '',
        describeSandbox(sandbox),
        '',
        `Dashboard:        ${running.api?.address ?? '(no API configured)'}/   (actions need the token in ${dir}/secrets/api-token.pw)`,
        `Writer endpoint:  ${cluster.router.writer}   mariadb -h127.0.0.1 -P${cluster.router.writer?.split(':')[1]} -u${app.user} -p"$(cat ${dir}/secrets/app.pw)" ${app.database}`,
        `Reader endpoint:  ${cluster.router.reader}`,
        ...(cluster.router.sql
          ? [`SQL endpoint:     ${cluster.router.sql.listen}   reads to replicas, writes to the primary: mariadb -h127.0.0.1 -P${cluster.router.sql.listen.split(':').pop()} -u${app.user} -p"$(cat ${dir}/secrets/app.pw)" ${app.database}`]
          : []),
        `Metrics:          ${running.api?.address ?? ''}/metrics`,
        '',
        'Regent is watching the cluster (structured log below, on stderr).',
        'In another terminal, try:',
        `  npx regent status --config ${cfg}`,
        `  npx regent failover --dry-run --config ${cfg}      # who would be promoted now, and why`,
        `  npx regent sandbox kill node1 --dir ${dir}        # crash the primary: watch the failover in the log`,
        `  npx regent sandbox start node1 --dir ${dir}       # the old primary comes back read_only and is rejoined`,
        `  npx regent switchover --config ${cfg}             # planned switchover through the running manager`,
        `  npx regent ack --config ${cfg}                    # allow the next automatic failover`,
        '',
        'Ctrl-C stops everything and removes the sandbox.',
        '',
      ].join('\n'),
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    await shutdown();
  }
  return 0;
}
