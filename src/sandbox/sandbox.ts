import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { cloneInstance } from '../setup/clone.ts';
import { analyzeCluster } from '../analysis/analyze.ts';
import { inspectCluster } from '../monitor/inspect.ts';
import { loadConfigFile, type Config } from '../config/load.ts';
import { DbConnection } from '../sql/connection.ts';
import { managerPrivileges, REPLICATION_PRIVILEGES, routerGrantStatements } from '../sql/grants.ts';
import { createAccount, createDatabase, dropDatabase, withoutBinlog } from '../sql/queries.ts';
import { requireExecutable } from '../util/deps.ts';
import { createProgress, type Progress } from '../util/progress.ts';
import { bootstrapCluster } from '../setup/bootstrap.ts';
import { isAlive, isOurProcess, readPidFile, sleep, terminate, waitUntil } from '../util/processes.ts';
import { SandboxError } from '../errors.ts';

/**
 * Local clusters of real mariadbd processes for demos, drills and tests: one datadir, port, socket
 * and server_id per node, all on 127.0.0.1. Everything about a sandbox lives under its directory,
 * described by sandbox.json, so any later command (or another process) can find and stop it.
 */

export interface SandboxNode {
  name: string;
  serverId: number;
  port: number;
  dir: string;
  dataDir: string;
  socket: string;
  pidFile: string;
  configFile: string;
  errorLog: string;
}

export interface SandboxManifest {
  version: 1;
  dir: string;
  cluster: string;
  nodes: SandboxNode[];
  configFile: string;
  app: { user: string; passwordFile: string; database: string };
}

export interface SandboxOptions {
  dir: string;
  nodes?: number;
  basePort?: number;
  cluster?: string;
  /** Extra lines for every node's [mariadbd] section (tests use it to break things on purpose). */
  extraServerConfig?: string[];
  /** Extra lines for one node's [mariadbd] section, by node number (1-based). */
  nodeServerConfig?: Record<number, string[]>;
  /** Skip replication setup: servers with users only (bootstrap tests start here). */
  noReplication?: boolean;
  /** Extra YAML merged into the cluster entry of regent.yaml (failover policy, labels...). */
  clusterOverrides?: Record<string, unknown>;
  /** Extra YAML merged into the manager section of regent.yaml (routerProcesses...). */
  managerOverrides?: Record<string, unknown>;
  progress?: Progress;
  /**
   * The secrets directory of another sandbox whose passwords this one reuses (a fleet of
   * sandboxes with one set of accounts, as a real fleet has); new passwords when absent.
   */
  secretsFrom?: string;
}


const MANIFEST = 'sandbox.json';

/**
 * Port layout from the base port: node i at base+i-1 (up to 20 nodes, plus ones added later),
 * the router's writer and reader at base+50 and base+51, the manager's API at base+52, the SQL
 * endpoint at base+53, and the per-instance health endpoints from base+60.
 */
export const PORT = { writer: 50, reader: 51, api: 52, sql: 53, health: 60, maxNodes: 40 } as const;

function sandboxPorts(base: number, count: number): number[] {
  const nodes = Array.from({ length: count }, (_, i) => base + i);
  const health = Array.from({ length: count }, (_, i) => base + PORT.health + i);
  return [...nodes, base + PORT.writer, base + PORT.reader, base + PORT.api, base + PORT.sql, ...health];
}

function describePorts(base: number): string {
  return `${base}+ for nodes, ${base + PORT.writer}-${base + PORT.sql} for the router and API, ${base + PORT.health}+ for health checks`;
}
const ROOT = { user: 'root' };
const ROOT_TIMEOUTS = { connectTimeoutMs: 2000, queryTimeoutMs: 30000 };

export function sandboxExists(dir: string): boolean {
  return existsSync(join(resolve(dir), MANIFEST));
}

export async function createSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const dir = resolve(opts.dir);
  const count = opts.nodes ?? 3;
  const basePort = opts.basePort ?? 23306;
  const progress = opts.progress ?? createProgress();
  if (count < 1 || count > 20) throw new SandboxError(`--nodes must be between 1 and 20, got ${count}`);
  if (basePort < 1024 || basePort + PORT.health + PORT.maxNodes > 65535) throw new SandboxError(`--base-port ${basePort} leaves no room for ${count} nodes below 65535`);
  if (sandboxExists(dir)) throw new SandboxError(`a sandbox already exists in ${dir}; stop it with \`regent sandbox down --dir ${dir}\` or choose another --dir`);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new SandboxError(`${dir} is not empty; refusing to mix a sandbox with other files (choose an empty or new --dir)`);
  const mariadbd = requireExecutable('mariadbd', 'mariadb-server');
  const installDb = requireExecutable('mariadb-install-db', 'mariadb-server');
  for (const port of sandboxPorts(basePort, count)) {
    if (!(await portIsFree(port))) throw new SandboxError(`port ${port} on 127.0.0.1 is in use (a sandbox uses ${describePorts(basePort)}); choose another --base-port`);
  }

  mkdirSync(dir, { recursive: true });
  const cluster = opts.cluster ?? 'sandbox';
  const nodes: SandboxNode[] = Array.from({ length: count }, (_, i) => nodeLayout(dir, i, basePort + i));
  const secretsDir = join(dir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const reuse = (name: string) => (opts.secretsFrom ? readFileSync(join(opts.secretsFrom, `${name}.pw`), 'utf8').trim() : newPassword());
  const passwords = { manager: reuse('manager'), replication: reuse('replication'), app: reuse('app'), admin: reuse('admin'), router: reuse('router'), 'api-token': reuse('api-token') };
  for (const [k, v] of Object.entries(passwords)) writeFileSync(join(secretsDir, `${k}.pw`), `${v}\n`, { mode: 0o600 });

  const manifest: SandboxManifest = {
    version: 1,
    dir,
    cluster,
    nodes,
    configFile: join(dir, 'regent.yaml'),
    app: { user: 'app', passwordFile: join(secretsDir, 'app.pw'), database: 'app' },
  };
  // The manifest goes first, so `sandbox down` can clean up whatever a failed `up` left behind.
  writeFileSync(join(dir, MANIFEST), JSON.stringify(manifest, null, 2));
  const sandbox = new Sandbox(manifest);
  try {
    progress.step(`initialising ${count} datadir${count > 1 ? 's' : ''}`);
    const template = initDatadir(dir, installDb);
    for (const n of nodes) {
      mkdirSync(join(n.dir, 'tmp'), { recursive: true });
      cpSync(template, n.dataDir, { recursive: true });
      writeFileSync(n.configFile, serverConfig(n, [...(opts.extraServerConfig ?? []), ...(opts.nodeServerConfig?.[n.serverId] ?? [])]));
    }
    rmSync(template, { recursive: true, force: true });
    progress.succeed();

    progress.step(`starting ${count} mariadbd on 127.0.0.1:${basePort}-${basePort + count - 1}`);
    const pids = nodes.map((n) => sandbox.spawnServer(n, mariadbd));
    await Promise.all(nodes.map((n, i) => sandbox.waitReady(n, 30000, pids[i])));
    progress.succeed();

    progress.step('creating users (manager with minimal privileges, replication, application)');
    await Promise.all(nodes.map((n) => createUsers(sandbox, n, passwords)));
    progress.succeed();

    writeFileSync(manifest.configFile, regentYaml(manifest, opts.clusterOverrides ?? {}, opts.managerOverrides ?? {}));
    if (!opts.noReplication) {
      progress.step('bootstrapping replication (node1 primary, GTID, semi-sync)');
      const config = loadConfigFile(manifest.configFile);
      const cfgCluster = config.clusters[0];
      if (!cfgCluster) throw new SandboxError('generated config has no cluster');
      await bootstrapCluster(cfgCluster, { progress: { ...progress, step: () => {}, succeed: () => {} }, quiet: true });
      progress.succeed();
    }
    return sandbox;
  } catch (e) {
    progress.fail();
    await sandbox.down({ keepDir: true }).catch(() => {});
    throw e;
  }
}

export function openSandbox(dir: string): Sandbox {
  const path = join(resolve(dir), MANIFEST);
  if (!existsSync(path)) throw new SandboxError(`no sandbox in ${resolve(dir)} (no ${MANIFEST}); create one with \`regent sandbox up --dir ${dir}\``);
  return new Sandbox(JSON.parse(readFileSync(path, 'utf8')) as SandboxManifest);
}

export class Sandbox {
  constructor(readonly manifest: SandboxManifest) {}

  get dir(): string {
    return this.manifest.dir;
  }
  get nodes(): SandboxNode[] {
    return this.manifest.nodes;
  }
  get configFile(): string {
    return this.manifest.configFile;
  }

  config(): Config {
    return loadConfigFile(this.manifest.configFile);
  }

  appAccount(): { user: string; password: string; database: string } {
    return { user: this.manifest.app.user, password: readFileSync(this.manifest.app.passwordFile, 'utf8').trim(), database: this.manifest.app.database };
  }

  /** A node by name ("node2"), number ("2") or port ("23307"). */
  node(ref: string | number): SandboxNode {
    const s = String(ref);
    const n = this.nodes.find((x) => x.name === s || String(x.port) === s || x.name === `node${s}`);
    if (!n) throw new SandboxError(`no node "${s}" in this sandbox; nodes: ${this.nodes.map((x) => `${x.name} (port ${x.port})`).join(', ')}`);
    return n;
  }

  pid(n: SandboxNode): number | undefined {
    const pid = readPidFile(n.pidFile);
    return pid !== undefined && isOurProcess(pid, n.configFile) ? pid : undefined;
  }

  isRunning(n: SandboxNode): boolean {
    return this.pid(n) !== undefined;
  }

  spawnServer(n: SandboxNode, mariadbd = requireExecutable('mariadbd', 'mariadb-server')): number {
    if (this.isRunning(n)) throw new SandboxError(`${n.name} is already running (pid ${this.pid(n)})`);
    rmSync(n.pidFile, { force: true });
    const out = openSync(join(n.dir, 'stdout.log'), 'a');
    const args = [`--defaults-file=${n.configFile}`, ...(process.getuid?.() === 0 ? ['--user=root'] : [])];
    const child = spawn(mariadbd, args, { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child.unref();
    if (!child.pid) throw new SandboxError(`could not start mariadbd for ${n.name}`);
    // mariadbd writes its pid file only once it is up; write it ourselves so kill works at once.
    writeFileSync(n.pidFile, `${child.pid}\n`);
    return child.pid;
  }

  /** Waits until the node accepts connections; `pid` is the process just spawned (its pid file is
   *  rewritten by mariadbd during start-up, so it cannot be trusted at every instant). */
  async waitReady(n: SandboxNode, timeoutMs: number, pid = readPidFile(n.pidFile)): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pid === undefined || !isAlive(pid)) throw new SandboxError(`${n.name} exited while starting: ${tail(n.errorLog, 3)}`);
      if (existsSync(n.socket)) {
        try {
          const c = await DbConnection.openSocket(n.socket, ROOT, ROOT_TIMEOUTS);
          await c.close();
          return;
        } catch {
          // not ready yet
        }
      }
      if (Date.now() > deadline) throw new SandboxError(`${n.name} did not become ready within ${timeoutMs} ms: ${tail(n.errorLog, 3)}`);
      await sleep(25);
    }
  }

  /** A root connection over the node's unix socket (unix_socket authentication, no password). */
  root(n: SandboxNode, queryTimeoutMs = 30000): Promise<DbConnection> {
    return DbConnection.openSocket(n.socket, ROOT, { connectTimeoutMs: 2000, queryTimeoutMs });
  }

  /** Runs statements as root on a node and closes the connection. */
  async sql(n: SandboxNode, statements: string[]): Promise<Record<string, unknown>[][]> {
    const c = await this.root(n);
    try {
      const out = [];
      for (const s of statements) out.push(await c.query(s));
      return out;
    } finally {
      await c.close();
    }
  }

  /** SIGKILL, as a crash would. */
  async kill(n: SandboxNode): Promise<void> {
    const pid = this.pid(n);
    if (pid === undefined) throw new SandboxError(`${n.name} is not running`);
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => !isAlive(pid), 5000, 5);
  }

  /** Clean shutdown (SIGTERM). */
  async stop(n: SandboxNode): Promise<void> {
    const pid = this.pid(n);
    if (pid === undefined) throw new SandboxError(`${n.name} is not running`);
    await terminate(pid, 30000);
  }

  async start(n: SandboxNode, timeoutMs = 30000): Promise<void> {
    const pid = this.spawnServer(n);
    await this.waitReady(n, timeoutMs, pid);
  }

  /** SIGSTOP: the server keeps its sockets but answers nothing, like a hung host. */
  pause(n: SandboxNode): void {
    const pid = this.pid(n);
    if (pid === undefined) throw new SandboxError(`${n.name} is not running`);
    process.kill(pid, 'SIGSTOP');
  }

  resume(n: SandboxNode): void {
    const pid = this.pid(n);
    if (pid === undefined) throw new SandboxError(`${n.name} is not running`);
    process.kill(pid, 'SIGCONT');
  }

  /**
   * Stops every node (by PID), the data planes that serve this sandbox's endpoints (they outlive
   * the managers on purpose; the sandbox does not), and removes the directory.
   */
  async down(opts: { keepDir?: boolean } = {}): Promise<void> {
    await Promise.all(dataPlanePidFiles(this.dir).map(async (f) => {
      const pid = readPidFile(f);
      if (pid !== undefined && isOurProcess(pid, 'dataplane')) await terminate(pid, 5000);
    }));
    await Promise.all(
      this.nodes.map(async (n) => {
        const pid = this.pid(n);
        if (pid !== undefined) await terminate(pid, 15000);
      }),
    );
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** PID files of data planes anywhere under the sandbox directory (every config's state directory). */
function dataPlanePidFiles(dir: string, depth = 3): string[] {
  if (depth < 0 || !existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && !e.name.startsWith('node')) out.push(...dataPlanePidFiles(p, depth - 1));
    else if (e.isFile() && /dataplane(-[0-9a-f]+)?\.pid$/.test(e.name)) out.push(p);
  }
  return out;
}

/** One fresh datadir (mariadb-install-db, root by unix socket only), to be copied per node. */
function initDatadir(dir: string, installDb: string): string {
  const template = join(dir, '.template');
  rmSync(template, { recursive: true, force: true });
  // A private tmpdir per sandbox: mariadbd deletes every #sql* file in its tmpdir at start-up,
  // which would break another sandbox (or test) starting at the same moment in a shared /tmp.
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const init = spawnSync(
    installDb,
    [
      '--no-defaults',
      `--datadir=${template}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      `--tmpdir=${tmp}`,
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      '--innodb-log-file-size=8M',
      '--innodb-buffer-pool-size=32M',
    ],
    { encoding: 'utf8' },
  );
  if (init.status !== 0) throw new SandboxError(`mariadb-install-db failed: ${(init.stderr || init.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  return template;
}

/**
 * `regent sandbox add`: a new, empty server with the sandbox's users, filled by `regent clone`
 * from a replica while the cluster keeps serving, then listed in sandbox.json and regent.yaml.
 */
export async function addSandboxNode(sandbox: Sandbox, progress: Progress = createProgress()): Promise<SandboxNode> {
  const m = sandbox.manifest;
  const index = m.nodes.length;
  if (index >= PORT.writer) throw new SandboxError(`a sandbox holds at most ${PORT.writer} nodes`);
  const base = m.nodes[0]!.port;
  const n = nodeLayout(m.dir, index, base + index);
  n.serverId = Math.max(...m.nodes.map((x) => x.serverId)) + 1;
  if (!(await portIsFree(n.port))) throw new SandboxError(`port ${n.port} is in use`);
  progress.step(`initialising ${n.name}`);
  const template = initDatadir(m.dir, requireExecutable('mariadb-install-db', 'mariadb-server'));
  mkdirSync(join(n.dir, 'tmp'), { recursive: true });
  cpSync(template, n.dataDir, { recursive: true });
  rmSync(template, { recursive: true, force: true });
  writeFileSync(n.configFile, serverConfig(n, []));
  progress.succeed();
  progress.step(`starting ${n.name} on 127.0.0.1:${n.port}`);
  await sandbox.start(n);
  const secret = (name: string) => readFileSync(join(m.dir, 'secrets', `${name}.pw`), 'utf8').trim();
  await createUsers(sandbox, n, { manager: secret('manager'), replication: secret('replication'), app: secret('app'), admin: secret('admin'), router: existsSync(join(m.dir, 'secrets', 'router.pw')) ? secret('router') : undefined });
  // The application database comes with the clone.
  const c = await sandbox.root(n);
  try {
    await withoutBinlog(c);
    await dropDatabase(c, 'app');
  } finally {
    await c.close();
  }
  progress.succeed();

  m.nodes.push(n);
  writeFileSync(join(m.dir, MANIFEST), JSON.stringify(m, null, 2));
  const doc = parseYaml(readFileSync(m.configFile, 'utf8')) as { clusters: { instances: Record<string, unknown>[] }[] };
  doc.clusters[0]!.instances.push({ host: '127.0.0.1', port: n.port, name: n.name, socket: n.socket });
  writeFileSync(m.configFile, `# Written by \`regent sandbox up\` (and add). Passwords are in secrets/ (mode 0600).\n${toYaml(doc)}`);

  const cluster = loadConfigFile(m.configFile).clusters[0]!;
  const inspected = await inspectCluster(cluster);
  const observations = new Map(inspected.map((i) => [i.instance.id, i.obs]));
  const topology = analyzeCluster({ cluster, observations, now: Date.now() }).topology;
  const primaryId = topology.primary;
  if (!primaryId) throw new SandboxError('the sandbox has no primary to replicate from');
  const sourceId = [...topology.sources.entries()].find(([id, src]) => src === primaryId && id !== `127.0.0.1:${n.port}` && observations.get(id)?.replica?.sqlThread)?.[0] ?? primaryId;
  const byId = (id: string) => cluster.instances.find((i) => i.id === id)!;
  await cloneInstance(cluster, { source: byId(sourceId), target: byId(`127.0.0.1:${n.port}`), primary: byId(primaryId), progress });
  return n;
}

function nodeLayout(dir: string, i: number, port: number): SandboxNode {
  const name = `node${i + 1}`;
  const nodeDir = join(dir, name);
  return {
    name,
    serverId: i + 1,
    port,
    dir: nodeDir,
    dataDir: join(nodeDir, 'data'),
    socket: join(nodeDir, 'mysqld.sock'),
    pidFile: join(nodeDir, 'mysqld.pid'),
    configFile: join(nodeDir, 'my.cnf'),
    errorLog: join(nodeDir, 'error.log'),
  };
}

/**
 * Every node starts read_only and with --init-rpl-role=SLAVE: a server that restarts (a crashed
 * primary coming back) must never accept writes by itself, and as a semi-sync "slave" at startup
 * MariaDB rolls back transactions that were prepared but never acknowledged by a replica.
 */
function serverConfig(n: SandboxNode, extra: string[]): string {
  return [
    '[mariadbd]',
    `datadir=${n.dataDir}`,
    `socket=${n.socket}`,
    `pid-file=${n.pidFile}`,
    `log-error=${n.errorLog}`,
    `tmpdir=${join(n.dir, 'tmp')}`,
    `port=${n.port}`,
    'bind-address=127.0.0.1',
    `server_id=${n.serverId}`,
    // What the node registers with its source (SHOW SLAVE HOSTS): how a crawl from one server finds it.
    'report_host=127.0.0.1',
    `report_port=${n.port}`,
    'log_bin=mariadb-bin',
    'log_slave_updates=ON',
    'binlog_format=ROW',
    'relay_log=relay-bin',
    'relay_log_recovery=ON',
    'gtid_strict_mode=ON',
    'gtid_domain_id=0',
    'read_only=ON',
    'init-rpl-role=SLAVE',
    'rpl_semi_sync_master_enabled=OFF',
    'rpl_semi_sync_slave_enabled=ON',
    'rpl_semi_sync_master_wait_point=AFTER_SYNC',
    'rpl_semi_sync_master_timeout=5000',
    // Long enough that a replica of a frozen primary is still "connected" when Regent acts (Regent
    // judges silence by heartbeats itself); a replica that is reconnecting to a frozen server cannot
    // be stopped quickly.
    'slave_net_timeout=10',
    'skip-name-resolve',
    'innodb_buffer_pool_size=32M',
    'innodb_log_file_size=8M',
    'innodb_flush_log_at_trx_commit=2',
    'sync_binlog=0',
    'performance_schema=OFF',
    'max_connections=300',
    'open_files_limit=4096',
    ...extra,
    '',
  ].join('\n');
}

async function createUsers(sandbox: Sandbox, n: SandboxNode, pw: { manager: string; replication: string; app: string; admin: string; router?: string }): Promise<void> {
  const c = await sandbox.root(n);
  try {
    // Created on every node without binlogging: each server starts with an empty GTID history,
    // and any node can become primary with the same accounts.
    await withoutBinlog(c);
    await createAccount(c, 'regent', '127.0.0.1', pw.manager, managerPrivileges('mariadb').map((p) => p.privilege));
    await createAccount(c, 'repl', '127.0.0.1', pw.replication, REPLICATION_PRIVILEGES);
    await createDatabase(c, 'app');
    await createAccount(c, 'app', '127.0.0.1', pw.app, [], { database: 'app', allOnDatabase: true });
    // For loading clones (regent clone / sandbox add); Regent itself never acts with it otherwise.
    await createAccount(c, 'admin', '127.0.0.1', pw.admin, ['ALL PRIVILEGES'], { grantOption: true });
    // The SQL endpoint's service account: reads account hashes, nothing else.
    if (pw.router) {
      await createAccount(c, 'regent_router', '127.0.0.1', pw.router, []);
      for (const g of routerGrantStatements('mariadb', "'regent_router'@'127.0.0.1'")) await c.query(g);
    }
  } finally {
    await c.close();
  }
}

function regentYaml(m: SandboxManifest, overrides: Record<string, unknown>, managerOverrides: Record<string, unknown>): string {
  const base = m.nodes[0]?.port ?? 0;
  const doc = {
    manager: { stateDir: 'state', api: { listen: `127.0.0.1:${base + PORT.api}`, token: { file: 'secrets/api-token.pw' } }, ...managerOverrides },
    credentials: {
      manager: { user: 'regent', password: { file: 'secrets/manager.pw' } },
      replication: { user: 'repl', password: { file: 'secrets/replication.pw' } },
      clone: { user: 'admin', password: { file: 'secrets/admin.pw' } },
      router: { user: 'regent_router', password: { file: 'secrets/router.pw' } },
    },
    clusters: [
      {
        name: m.cluster,
        primary: `127.0.0.1:${m.nodes[0]?.port}`,
        instances: m.nodes.map((n) => ({ host: '127.0.0.1', port: n.port, name: n.name, socket: n.socket })),
        router: {
          writer: `127.0.0.1:${base + PORT.writer}`,
          reader: `127.0.0.1:${base + PORT.reader}`,
          healthCheckBasePort: base + PORT.health,
          sql: { listen: `127.0.0.1:${base + PORT.sql}` },
        },
        ...overrides,
      },
    ],
  };
  return `# Written by \`regent sandbox up\`. Passwords are in secrets/ (mode 0600).\n${toYaml(doc)}`;
}

function newPassword(): string {
  return randomBytes(12).toString('base64url');
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once('error', () => resolvePort(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolvePort(true)));
  });
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no error log)';
  }
}
