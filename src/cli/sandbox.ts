import { Command } from 'commander';
import { addSandboxNode, createSandbox, openSandbox, type Sandbox } from '../sandbox/sandbox.ts';
import { createProgress } from '../util/progress.ts';

const DEFAULT_DIR = './regent-sandbox';

export function describeSandbox(sb: Sandbox): string {
  const lines = [`sandbox in ${sb.dir}: ${sb.nodes.length} node${sb.nodes.length === 1 ? '' : 's'}`];
  for (const n of sb.nodes) {
    const pid = sb.pid(n);
    lines.push(`  ${n.name}  127.0.0.1:${n.port}  server_id ${n.serverId}  ${pid ? `pid ${pid}` : 'NOT RUNNING'}  mariadb -S ${n.socket}`);
  }
  lines.push(`config: ${sb.configFile}`);
  lines.push(`try:    npx regent status --config ${sb.configFile}`);
  return lines.join('\n');
}

export function sandboxCommands(parsePositiveInt: (v: string) => number): Command {
  const cmd = new Command('sandbox').description('local MariaDB clusters for demos, drills and tests');

  cmd
    .command('up')
    .description('start N mariadbd on 127.0.0.1 with GTID + semi-sync replication (node1 primary) and write DIR/regent.yaml')
    .option('--nodes <n>', 'number of nodes', parsePositiveInt, 3)
    .option('--base-port <port>', 'port of node1; node i listens on base+i-1', parsePositiveInt, 23306)
    .option('--dir <dir>', 'sandbox directory (must be new or empty)', DEFAULT_DIR)
    .action(async (o: { nodes: number; basePort: number; dir: string }) => {
      const started = Date.now();
      const sb = await createSandbox({ dir: o.dir, nodes: o.nodes, basePort: o.basePort, progress: createProgress() });
      process.stdout.write(`${describeSandbox(sb)}\nready in ${Date.now() - started} ms\n`);
    });

  cmd
    .command('down')
    .description('stop every node of the sandbox (by PID) and remove its directory')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
    .action(async (o: { dir: string }) => {
      const sb = openSandbox(o.dir);
      await sb.down();
      process.stdout.write(`sandbox in ${sb.dir} stopped and removed\n`);
    });

  cmd
    .command('status')
    .description('which nodes run, with ports, PIDs and sockets')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
    .action((o: { dir: string }) => {
      const sb = openSandbox(o.dir);
      process.stdout.write(`${describeSandbox(sb)}\n`);
      process.exitCode = sb.nodes.every((n) => sb.isRunning(n)) ? 0 : 1;
    });

  cmd
    .command('add')
    .description('add a node: a fresh server filled by `regent clone` from a replica while the cluster keeps serving')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
    .action(async (o: { dir: string }) => {
      const sb = openSandbox(o.dir);
      const n = await addSandboxNode(sb, createProgress());
      process.stdout.write(`added ${n.name} on 127.0.0.1:${n.port} (server_id ${n.serverId}), replicating; mariadb -S ${n.socket}\n`);
    });

  const drill = (name: string, description: string, act: (sb: Sandbox, node: string) => Promise<void> | void) =>
    cmd
      .command(`${name} <node>`)
      .description(description)
      .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
      .action(async (node: string, o: { dir: string }) => {
        const sb = openSandbox(o.dir);
        await act(sb, node);
        process.stdout.write(`${name}: ${sb.node(node).name} done\n`);
      });

  drill('kill', 'SIGKILL a node, as a crash would', (sb, n) => sb.kill(sb.node(n)));
  drill('stop', 'shut a node down cleanly', (sb, n) => sb.stop(sb.node(n)));
  drill('start', 'start a stopped node again (it comes back read_only)', (sb, n) => sb.start(sb.node(n)));
  drill('pause', 'SIGSTOP a node: it keeps its sockets but answers nothing', (sb, n) => sb.pause(sb.node(n)));
  drill('resume', 'SIGCONT a paused node', (sb, n) => sb.resume(sb.node(n)));
  return cmd;
}
