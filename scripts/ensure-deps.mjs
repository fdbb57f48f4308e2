#!/usr/bin/env node
// Installs the Debian packages Regent's tests or demo need when they are missing: as root with
// apt-get, otherwise it says exactly what to run. Nothing is downloaded from anywhere else.
import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';

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
  },
  bench: { mariadbd: 'mariadb-server', 'mariadb-install-db': 'mariadb-server', mariadb: 'mariadb-client', 'mariadb-dump': 'mariadb-client', haproxy: 'haproxy', sysbench: 'sysbench' },
};

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

const needs = NEEDS[purpose] ?? NEEDS.test;
const missing = [...new Set(Object.entries(needs).filter(([bin]) => !found(bin)).map(([, pkg]) => pkg))];
if (missing.length === 0) process.exit(0);

if (process.getuid?.() !== 0) {
  console.error(`regent: missing Debian packages for ${purpose}: ${missing.join(' ')}\n  install them with: sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
console.error(`regent: installing ${missing.join(' ')} with apt-get ...`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const run = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env }).status === 0;
if (!run(['install', '-y', '-q', ...missing]) && !(run(['update', '-q']) && run(['install', '-y', '-q', ...missing]))) {
  console.error(`regent: apt-get could not install ${missing.join(' ')}`);
  process.exit(1);
}
