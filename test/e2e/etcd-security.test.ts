import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { eventually, freePorts, runCli, startSandbox, tempDir } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

// etcd as a production deployment runs it: TLS with client certificates, and user authentication
// with a role limited to Regent's prefix. Certificates are made here with openssl.

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function makeCertificates(dir: string): void {
  const ext = join(dir, 'server.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=regent-test-ca'], dir);
  for (const name of ['server', 'client']) {
    sh('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name === 'server' ? '127.0.0.1' : 'regent-client'}`], dir);
    sh('openssl', ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext], dir);
  }
}

describe('etcd coordination over TLS with client certificates and user auth', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let dir: ReturnType<typeof tempDir>;
  let etcd: ChildProcess | undefined;
  let endpoint: string;
  const managers: ManagerProcess[] = [];
  const PASSWORD = 'etcd-S3cret-pw';
  const etcdctl = (...args: string[]) =>
    sh('etcdctl', [`--endpoints=${endpoint}`, `--cacert=${join(dir.path, 'ca.pem')}`, `--cert=${join(dir.path, 'client.pem')}`, `--key=${join(dir.path, 'client.key')}`, ...args], dir.path);

  /** The sandbox config pointed at the secured etcd, with the given password file contents. */
  function writeConfig(password: string): string {
    const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { manager: Record<string, unknown> };
    writeFileSync(join(sb.dir, 'secrets', 'etcd.pw'), `${password}\n`, { mode: 0o600 });
    doc.manager['coordination'] = {
      backend: 'etcd',
      endpoints: [endpoint],
      tls: { ca: join(dir.path, 'ca.pem'), cert: join(dir.path, 'client.pem'), key: join(dir.path, 'client.key') },
      auth: { user: 'regent', password: { file: 'secrets/etcd.pw' } },
    };
    const file = join(sb.dir, `regent-etcd-${managers.length}.yaml`);
    writeFileSync(file, toYaml(doc));
    return file;
  }

  before(async () => {
    dir = tempDir('regent-etcd-tls-');
    makeCertificates(dir.path);
    const client = await freePorts(2);
    const peer = `http://127.0.0.1:${client + 1}`;
    endpoint = `https://127.0.0.1:${client}`;
    etcd = spawn(
      'etcd',
      [
        '--name=s1',
        `--data-dir=${join(dir.path, 'data')}`,
        `--listen-client-urls=${endpoint}`,
        `--advertise-client-urls=${endpoint}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=s1=${peer}`,
        `--cert-file=${join(dir.path, 'server.pem')}`,
        `--key-file=${join(dir.path, 'server.key')}`,
        `--trusted-ca-file=${join(dir.path, 'ca.pem')}`,
        '--client-cert-auth',
        '--log-level=error',
      ],
      { stdio: 'ignore' },
    );
    await eventually(async () => spawnSync('etcdctl', [`--endpoints=${endpoint}`, `--cacert=${join(dir.path, 'ca.pem')}`, `--cert=${join(dir.path, 'client.pem')}`, `--key=${join(dir.path, 'client.key')}`, 'endpoint', 'health']).status === 0, 20000, 'etcd with TLS');
    etcdctl('user', 'add', 'root:root-pw');
    etcdctl('user', 'add', `regent:${PASSWORD}`);
    etcdctl('role', 'add', 'regent-role');
    etcdctl('role', 'grant-permission', 'regent-role', 'readwrite', '/regent', '--prefix=true');
    etcdctl('user', 'grant-role', 'regent', 'regent-role');
    etcdctl('auth', 'enable');
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 2 }));
  });
  after(async () => {
    for (const m of managers) await m.stop();
    if (etcd && etcd.exitCode === null) {
      const exited = new Promise((r) => etcd!.once('exit', r));
      etcd.kill('SIGKILL');
      await exited;
    }
    await cleanup?.();
    dir?.remove();
  });

  test('a manager with the right certificates and password leads and publishes discovery keys', async () => {
    const m = new ManagerProcess(writeConfig(PASSWORD));
    managers.push(m);
    await m.waitFor((e) => e.event === 'manager_started', 20000, 'manager start');
    await eventually(
      async () => {
        try {
          return etcdctl('--user=root:root-pw', 'get', '/regent/sandbox/primary', '--print-value-only').includes(`127.0.0.1:${sb.node(1).port}`);
        } catch {
          return false;
        }
      },
      20000,
      'discovery key written through TLS and auth',
    );
    // Without credentials etcd refuses reads now: the key really sits behind auth.
    assert.throws(() => etcdctl('get', '/regent/sandbox/primary'), /user name is empty|authentication|permission denied/i);
    assert.ok(!m.raw.join('\n').includes(PASSWORD), 'the etcd password appeared in the manager log');
    await m.stop();
  });

  test('a wrong password stops the manager at start with one clear line, and no secret in it', async () => {
    const config = writeConfig('not-the-password');
    const r = await runCli(['run', '--config', config], { timeoutMs: 20000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /etcd at https:\/\/127\.0\.0\.1:\d+ refused user "regent": .*authentication failed.*check manager\.coordination\.auth/);
    assert.ok(!r.stderr.includes('not-the-password') && !r.stderr.includes(PASSWORD));
  });

  test('config checks: https endpoints need tls.ca, tls needs https, unreadable PEM files are named', () => {
    const base = parseYaml(readFileSync(sb.configFile, 'utf8')) as { manager: Record<string, unknown> };
    const check = (coordination: Record<string, unknown>, expected: RegExp) => {
      const file = join(sb.dir, 'regent-bad.yaml');
      writeFileSync(file, toYaml({ ...base, manager: { ...base.manager, coordination } }));
      assert.throws(() => loadConfigFile(file), expected);
    };
    check({ backend: 'etcd', endpoints: [endpoint] }, /manager\.coordination\.tls: the endpoints are https:\/\/, so set tls\.ca/);
    check({ backend: 'etcd', endpoints: ['http://127.0.0.1:2379'], tls: { ca: join(dir.path, 'ca.pem') } }, /every endpoint must be https:\/\/ \(http:\/\/127\.0\.0\.1:2379 is not\)/);
    check({ backend: 'etcd', endpoints: [endpoint], tls: { ca: join(dir.path, 'missing.pem') } }, /manager\.coordination\.tls\.ca: cannot read .*missing\.pem \(ENOENT\)/);
    check({ backend: 'etcd', endpoints: [endpoint], tls: { ca: join(dir.path, 'ca.pem'), cert: join(dir.path, 'client.pem') } }, /set cert and key together/);
  });
});
