import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { loadConfigFile } from '../config/load.ts';
import { loadConfig } from './config.ts';
import { clusterAddCommand, clusterAddInstanceCommand, clusterListCommand, clusterRemoveCommand, reloadCommand } from './cluster.ts';
import { EXIT, isRegentError } from '../errors.ts';
import { statusCommand } from './status.ts';
import { doctorCommand } from './doctor.ts';
import { grantsCommand } from './grants.ts';
import { sandboxCommands } from './sandbox.ts';
import { bootstrapCommand } from './bootstrap.ts';
import { runCommand } from './run.ts';
import { dataPlaneCommand, dataPlaneStopCommand, dataPlaneUpgradeCommand } from './dataplane.ts';
import { demoCommand } from './demo.ts';
import { failoverCommand, ackCommand } from './recovery.ts';
import { haproxyConfigCommand } from './haproxy.ts';
import { switchoverCommand } from './switchover.ts';
import { cloneCommand, rejoinCommand, repairCommand } from './heal.ts';
import { setApiCa } from './api-client.ts';
import { EXIT_CODES_HELP, guardPipes } from './output.ts';
import { LOG_FORMATS, setLogFormat, type LogFormat } from '../util/log.ts';

/**
 * The `regent` command line: parses arguments and calls the modules that do the work. Exit codes
 * (EXIT_CODES_HELP): 0 success / healthy, 1 refused, failed or degraded, 2 unusable input.
 */
export function buildProgram(): Command {
  const program = new Command('regent')
    .description('High availability for MySQL and MariaDB replication')
    .version('0.1.0')
    .addOption(
      new Option('--log-format <format>', 'structured log on stderr: text (one human line per record), json (one JSON object per line), auto (text on a terminal, json otherwise)')
        .choices(LOG_FORMATS)
        .default('auto')
        .env('REGENT_LOG_FORMAT'),
    )
    .addOption(new Option('--ca <file>', "PEM CA to verify the manager's API certificate with (overrides manager.api.tls.ca)").env('REGENT_API_CA'))
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .hook('preAction', () => {
      const o = program.opts<{ logFormat: LogFormat; ca?: string }>();
      setLogFormat(o.logFormat);
      setApiCa(o.ca, program.getOptionValueSource('ca') === 'env' ? 'REGENT_API_CA' : '--ca');
    });

  const configOption = (cmd: Command) => cmd.requiredOption('-c, --config <file>', 'configuration file (YAML)');

  configOption(program.command('status').description('show every cluster as a tree with roles, lag, GTIDs and problems (no manager needed)'))
    .option('--json', 'machine-readable output')
    .option('--cluster <name>', 'only this cluster')
    .action(async (o: { config: string; json?: boolean; cluster?: string }) => {
      process.exitCode = await statusCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('doctor').description('check everything failover depends on, per cluster and instance, each with its fix (read-only; exit 0 ok, 1 warnings, 2 a failover would be unsafe)'))
    .option('--json', 'machine-readable output')
    .option('--cluster <name>', 'only this cluster')
    .action(async (o: { config: string; json?: boolean; cluster?: string }) => {
      process.exitCode = await doctorCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('grants').description('print the CREATE USER / GRANT statements for Regent\'s accounts, minimal and commented, passwords as placeholders'))
    .option('--cluster <name>', 'only this cluster')
    .option('--host <host>', "host part of the accounts ('%' when omitted)")
    .addOption(new Option('--flavor <flavor>', 'server family, when no instance is reachable to ask').choices(['mariadb', 'mysql']))
    .action(async (o: { config: string; cluster?: string; host?: string; flavor?: 'mariadb' | 'mysql' }) => {
      process.exitCode = await grantsCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('bootstrap').description('set up replication on running servers that do not replicate yet (idempotent)'))
    .option('--cluster <name>', 'only this cluster')
    .action(async (o: { config: string; cluster?: string }) => {
      process.exitCode = await bootstrapCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('run').description('the long-running manager: monitor, fail over, publish'))
    .action(async (o: { config: string }) => {
      process.exitCode = await runCommand(loadConfigFile(o.config)); // the manager merges the inventory itself
    });

  configOption(program.command('proxy').description('run only the router (writer/reader endpoints, health checks), following the primary a running manager decided'))
    .action(async (o: { config: string }) => {
      process.exitCode = await runCommand(await loadConfig(o.config), { observeOnly: true });
    });

  const dataplane = program.command('dataplane').description('the process that holds every endpoint (L4 writer/reader, SQL, HAProxy checks) and outlives the manager; `regent run` starts or adopts it');
  configOption(dataplane.command('run', { isDefault: true }).description('run the data plane (started by regent run; run it yourself to manage it apart, e.g. as its own systemd unit)'))
    .option('--socket <path>', 'control socket (default: <stateDir>/dataplane-<hash of the config path>.sock)')
    .option('--pid-file <path>', 'PID file (default: <stateDir>/dataplane-<hash of the config path>.pid)')
    .addOption(new Option('--takeover', 'replace the running data plane that started this one (internal: `dataplane upgrade`)').hideHelp())
    .action(async (o: { config: string; socket?: string; pidFile?: string; takeover?: boolean }) => {
      process.exitCode = await dataPlaneCommand(await loadConfig(o.config), o);
    });
  configOption(dataplane.command('upgrade').description('replace the running data plane with a process of the code on disk, keeping every open session (the old process serves them until they end)'))
    .addOption(new Option('--role <role>', 'whose data plane').choices(['run', 'proxy']).default('run'))
    .action(async (o: { config: string; role: 'run' | 'proxy' }) => {
      process.exitCode = await dataPlaneUpgradeCommand(await loadConfig(o.config), o);
    });
  configOption(dataplane.command('stop').description('stop the data plane of this configuration (its client sessions end)'))
    .addOption(new Option('--role <role>', 'whose data plane').choices(['run', 'proxy']).default('run'))
    .action(async (o: { config: string; role: 'run' | 'proxy' }) => {
      process.exitCode = await dataPlaneStopCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('haproxy-config').description('write a complete haproxy.cfg for a cluster, driven by Regent\'s health endpoints and admin socket'))
    .option('--cluster <name>', 'cluster (default: the only one)')
    .requiredOption('--writer-bind <addr>', 'address HAProxy listens on for writes, e.g. 127.0.0.1:3307')
    .option('--reader-bind <addr>', 'address HAProxy listens on for reads')
    .requiredOption('--socket <path>', 'HAProxy admin socket path (also set router.haproxySocket in the Regent config)')
    .option('--out <file>', 'write here instead of stdout')
    .action(async (o: { config: string; cluster?: string; writerBind: string; readerBind?: string; socket: string; out?: string }) => {
      process.exitCode = await haproxyConfigCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('failover').description('fail over a cluster now (a person decided), or show the plan with --dry-run').argument('[cluster]', 'cluster name (default: the only one)'))
    .option('--dry-run', 'print the plan with its reasons and change nothing')
    .option('--force', 'fail over even if the primary is reachable (it is fenced first)')
    .action(async (cluster: string | undefined, o: { config: string; dryRun?: boolean; force?: boolean }) => {
      process.exitCode = await failoverCommand(await loadConfig(o.config), cluster, o);
    });

  configOption(program.command('switchover').description('planned change of primary with pre-checks, a sub-second write pause and rollback on failure'))
    .option('--cluster <name>', 'cluster (default: the only one)')
    .option('--to <host:port>', 'the replica to promote (default: the best candidate)')
    .action(async (o: { config: string; cluster?: string; to?: string }) => {
      process.exitCode = await switchoverCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('rejoin').description('make a former primary (or any stray instance) a replica of the current primary; errant transactions are rewound or reported per rejoin.errant').argument('<node>', 'instance name or host:port'))
    .option('--cluster <name>', 'cluster (default: the only one)')
    .action(async (node: string, o: { config: string; cluster?: string }) => {
      process.exitCode = await rejoinCommand(await loadConfig(o.config), node, o);
    });

  configOption(program.command('repair').description('explicit repair of a replica whose replication stopped on an error').argument('<node>', 'instance name or host:port'))
    .option('--cluster <name>', 'cluster (default: the only one)')
    .option('--retry', 'start replication again (the error was transient)')
    .option('--reclone', "rebuild the replica's data from a healthy replica or the primary (its own data is discarded)")
    .action(async (node: string, o: { config: string; cluster?: string; retry?: boolean; reclone?: boolean }) => {
      process.exitCode = await repairCommand(await loadConfig(o.config), node, o);
    });

  configOption(program.command('clone').description('copy a live instance onto an empty server and make it a replica (mariadb-dump, consistent GTID position)'))
    .option('--cluster <name>', 'cluster (default: the only one)')
    .requiredOption('--from <node>', 'source instance (a replica is best)')
    .requiredOption('--to <host:port>', 'empty target server')
    .action(async (o: { config: string; cluster?: string; from: string; to: string }) => {
      process.exitCode = await cloneCommand(await loadConfig(o.config), o);
    });

  configOption(program.command('ack').description('acknowledge a recovery so the cluster may be failed over automatically again').argument('[cluster]', 'cluster name'))
    .action(async (cluster: string | undefined, o: { config: string }) => {
      process.exitCode = await ackCommand(await loadConfig(o.config), cluster);
    });

  const cluster = program.command('cluster').description('register, list and remove clusters while managers run (fleet mode)');
  configOption(
    cluster
      .command('add')
      .description('crawl a topology from one of its servers (its source, its replicas, theirs), show it with the doctor\'s findings, and register it: in the YAML (local backend, comments kept) or the etcd inventory')
      .argument('<name>', 'name of the new cluster'),
  )
    .requiredOption('--seed <host:port>', 'any server of the cluster (a replica is fine)')
    .option('--dry-run', 'show what was found and change nothing')
    .option('--accept-findings', 'register even when the doctor finds critical problems')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { config: string; seed: string; dryRun?: boolean; acceptFindings?: boolean; json?: boolean }) => {
      process.exitCode = await clusterAddCommand(o.config, name, o);
    });
  configOption(cluster.command('remove').description('stop managing a cluster everywhere (its servers keep running, untouched)').argument('<name>', 'cluster name'))
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { config: string; json?: boolean }) => {
      process.exitCode = await clusterRemoveCommand(o.config, name, o);
    });
  configOption(cluster.command('add-instance').description('add one server to a registered cluster (a replica attached after the cluster was registered)').argument('<name>', 'cluster name').argument('<host:port>', 'the server'))
    .option('--json', 'machine-readable output')
    .action(async (name: string, address: string, o: { config: string; json?: boolean }) => {
      process.exitCode = await clusterAddInstanceCommand(o.config, name, address, o);
    });
  configOption(cluster.command('list').description('every cluster, where it is registered (config file or inventory) and which manager leads it'))
    .option('--json', 'machine-readable output')
    .action(async (o: { config: string; json?: boolean }) => {
      process.exitCode = await clusterListCommand(o.config, o);
    });

  configOption(program.command('reload').description('make the running manager read its configuration again (added, removed and changed clusters; the others are not touched)'))
    .option('--json', 'machine-readable output')
    .action(async (o: { config: string; json?: boolean }) => {
      process.exitCode = await reloadCommand(o.config, o);
    });

  program.addCommand(sandboxCommands(parsePositiveInt));

  program
    .command('demo')
    .description('sandbox cluster + manager, printing where to look (Ctrl-C stops and cleans up)')
    .option('--dir <dir>', 'sandbox directory', './regent-demo')
    .option('--base-port <port>', 'first port', parsePositiveInt, 23306)
    .action(async (o: { dir: string; basePort: number }) => {
      process.exitCode = await demoCommand(o);
    });

  // Every command's --help ends with the exit codes too: scripts branch on them per command.
  for (const c of program.commands) if (c.name() !== 'sandbox') c.addHelpText('after', EXIT_CODES_HELP);
  return program;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}

export async function main(argv: string[]): Promise<void> {
  guardPipes();
  // An exported but empty variable means "not set", as for REGENT_LOG_LEVEL.
  for (const name of ['REGENT_LOG_FORMAT', 'REGENT_API_CA']) if (process.env[name] === '') delete process.env[name];
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed the message; help and version are not failures.
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 2;
      return;
    }
    // Regent's own errors are one clear line meant for the user; anything else is a bug, shown whole.
    if (isRegentError(e)) {
      process.stderr.write(`regent: ${e.message}\n`);
      process.exitCode = e.exitCode;
    } else {
      process.stderr.write(`regent: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = EXIT.unusableInput;
    }
  }
}

await main(process.argv);
