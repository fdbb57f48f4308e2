#!/usr/bin/env node
// Makes a fresh clone runnable before `npm test`, `npm run demo` or `npm run bench` (their pre-scripts):
// 1. node_modules from the lock file (`npm ci`) when it is missing or does not match package-lock.json,
//    because the scripts themselves need tsx from node_modules;
// 2. the Debian packages the purpose needs, as root with apt-get, otherwise it says exactly what to run.
// Plain node, no dependencies: it runs before anything is installed. Nothing is downloaded from
// anywhere but the npm registry (through npm) and Debian's archive (through apt-get).
import { accessSync, constants, existsSync, lstatSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv[2] ?? 'test';

// program -> Debian package
const NEEDS = {
  demo: { mariadbd: 'mariadb-server', 'mariadb-install-db': 'mariadb-server', mariadb: 'mariadb-client', 'mariadb-binlog': 'mariadb-client', 'mariadb-dump': 'mariadb-client' },
  test: {
    mariadbd: 'mariadb-server',
    // the SQL endpoint's end-to-end test runs sysbench's prepared statements through it
    sysbench: 'sysbench',
    'mariadb-install-db': 'mariadb-server',
    mariadb: 'mariadb-client',
    'mariadb-binlog': 'mariadb-client',
    'mariadb-dump': 'mariadb-client',
    iptables: 'iptables',
    etcd: 'etcd-server',
    etcdctl: 'etcd-client',
    haproxy: 'haproxy',
    chromium: 'chromium',
    openssl: 'openssl',
    curl: 'curl',
    // `promtool check rules` / `promtool test rules` on deploy/prometheus/ (the Prometheus server
    // itself is never started: Debian's policy-rc.d or the absence of an init keeps it down).
    promtool: 'prometheus',
  },
  bench: { mariadbd: 'mariadb-server', 'mariadb-install-db': 'mariadb-server', mariadb: 'mariadb-client', 'mariadb-dump': 'mariadb-client', haproxy: 'haproxy', sysbench: 'sysbench' },
};
// Installed without their recommended packages: prometheus recommends a node exporter nobody here needs.
const NO_RECOMMENDS = new Set(['prometheus']);

/**
 * Why node_modules cannot be used as it is, or undefined when it matches the lock file. npm writes
 * node_modules/.package-lock.json (the "hidden lockfile") after every install: each package the lock
 * file requires must be there with the same version. Optional packages are skipped, since npm leaves
 * out the ones for other platforms (esbuild's binaries).
 */
function nodeModulesProblem() {
  const lockFile = join(ROOT, 'package-lock.json');
  if (!existsSync(join(ROOT, 'node_modules'))) return 'node_modules is missing';
  const hidden = join(ROOT, 'node_modules', '.package-lock.json');
  if (!existsSync(hidden)) return 'node_modules was not installed by npm from the lock file';
  let lock, installed;
  try {
    lock = JSON.parse(readFileSync(lockFile, 'utf8')).packages ?? {};
    installed = JSON.parse(readFileSync(hidden, 'utf8')).packages ?? {};
  } catch (e) {
    return `cannot read the lock files (${e.message})`;
  }
  for (const [path, entry] of Object.entries(lock)) {
    if (path === '' || entry.optional || entry.link) continue;
    const have = installed[path];
    if (!have) return `${path.replace(/^node_modules\//, '')} is not installed`;
    if (have.version !== entry.version) return `${path.replace(/^node_modules\//, '')} is ${have.version}, the lock file says ${entry.version}`;
  }
  return undefined;
}

function ensureNodeModules() {
  const problem = nodeModulesProblem();
  if (!problem) return;
  // A node_modules that is a link belongs to another checkout (a git worktree sharing it):
  // `npm ci` would empty it under that checkout's feet, so only say what is wrong.
  let linked = false;
  try {
    linked = lstatSync(join(ROOT, 'node_modules')).isSymbolicLink();
  } catch {}
  if (linked) {
    console.error(`regent: ${problem}, and node_modules is a link to another checkout: run npm ci there (or remove the link and run npm ci here)`);
    process.exit(1);
  }
  console.error(`regent: ${problem}: installing the packages of package-lock.json with npm ci ...`);
  const npm = process.env.npm_execpath
    ? spawnSync(process.execPath, [process.env.npm_execpath, 'ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' })
    : spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' });
  if (npm.status !== 0) {
    console.error('regent: npm ci failed (see above); fix that, then run the command again');
    process.exit(1);
  }
}

function found(name) {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin']) {
    if (!dir) continue;
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

function ensureDebianPackages() {
  const needs = NEEDS[purpose] ?? NEEDS.test;
  const missing = [...new Set(Object.entries(needs).filter(([bin]) => !found(bin)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.error(`regent: missing Debian packages for ${purpose}: ${missing.join(' ')}\n  install them with: sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
  console.error(`regent: installing ${missing.join(' ')} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env }).status === 0;
  const install = () => {
    const plain = missing.filter((p) => !NO_RECOMMENDS.has(p));
    const lean = missing.filter((p) => NO_RECOMMENDS.has(p));
    return (plain.length === 0 || run(['install', '-y', '-q', ...plain])) && (lean.length === 0 || run(['install', '-y', '-q', '--no-install-recommends', ...lean]));
  };
  if (!install() && !(run(['update', '-q']) && install())) {
    console.error(`regent: apt-get could not install ${missing.join(' ')}`);
    process.exit(1);
  }
}

ensureNodeModules();
ensureDebianPackages();
