import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { ensureChromium, launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { runCli, startSandbox, tempDir, type CliResult } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

/**
 * The API and dashboard over TLS (manager.api.tls), with certificates made here by openssl: curl
 * with the CA gets answers, without it (or with another CA, or in plain http) it does not; the CLI
 * acts through the TLS manager when it trusts the CA (config, --ca, REGENT_API_CA) and otherwise
 * stops with one line instead of acting alone; the dashboard loads and goes live in chromium, which
 * is told to trust the server's key by its SPKI hash (and refuses the page without that).
 */

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** ca.pem + server.pem/server.key for 127.0.0.1, and an unrelated other-ca.pem. */
function makeCertificates(dir: string): void {
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  for (const ca of ['ca', 'other-ca']) sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=regent-test-${ca}`], dir);
  sh('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  sh('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);
}

/** base64 SHA-256 of the certificate's SubjectPublicKeyInfo (what chromium's SPKI allow-list takes). */
function spkiHash(dir: string): string {
  const pub = spawnSync('openssl', ['x509', '-in', 'server.pem', '-pubkey', '-noout'], { cwd: dir });
  const der = spawnSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { cwd: dir, input: pub.stdout });
  const dgst = spawnSync('openssl', ['dgst', '-sha256', '-binary'], { input: der.stdout });
  return Buffer.from(dgst.stdout).toString('base64');
}

const out = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const shellEnv = { REGENT_LOG_LEVEL: '', REGENT_LOG_FORMAT: '', REGENT_API_CA: '' };

describe('API and dashboard over TLS', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  let certs: ReturnType<typeof tempDir>;
  let manager: ManagerProcess | undefined;
  let browser: TestBrowser | undefined;
  let url: string;
  const seen: string[] = [];

  /** The sandbox config with manager.api.tls set to `tls` (undefined: no tls key at all). */
  function config(name: string, tls: Record<string, string> | undefined): string {
    const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { manager: { api: Record<string, unknown> } };
    if (tls) doc.manager.api['tls'] = tls;
    const file = join(sb.dir, `${name}.yaml`);
    writeFileSync(file, toYaml(doc));
    return file;
  }
  const pem = (f: string) => join(certs.path, f);
  const curl = (args: string[]) => {
    const r = spawnSync('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' });
    seen.push(r.stdout);
    return r;
  };

  let serverConfig: string;
  before(async () => {
    ensureChromium();
    certs = tempDir('regent-api-tls-');
    makeCertificates(certs.path);
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    url = `https://127.0.0.1:${sb.node(1).port + PORT.api}`;
    serverConfig = config('regent-tls', { cert: pem('server.pem'), key: pem('server.key'), ca: pem('ca.pem') });
    manager = new ManagerProcess(serverConfig);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    assert.equal(manager.events.find((e) => e.event === 'manager_started')?.['api'], url);
    await manager.waitFor((e) => e.event === 'router_writer_changed', 5000, 'first analysis');
  }, { timeout: 300000 });

  after(async () => {
    await browser?.close();
    await manager?.stop();
    const secrets = readdirSync(join(sb.dir, 'secrets')).map((f) => readFileSync(join(sb.dir, 'secrets', f), 'utf8').trim());
    const key = readFileSync(pem('server.key'), 'utf8');
    const haystack = [...seen, ...(manager?.raw ?? [])].join('\n');
    await cleanup?.();
    certs?.remove();
    for (const s of secrets) assert.ok(!haystack.includes(s), 'a password or the API token appeared in an answer, the CLI output or the log');
    assert.ok(!haystack.includes('PRIVATE KEY') && !haystack.includes(key.split('\n')[1]!), 'the TLS private key appeared somewhere');
  });

  test('curl: with the CA it answers; without it, with another CA, or in plain http it does not', () => {
    const ok = curl(['--cacert', pem('ca.pem'), `${url}/api/v1/clusters`]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { clusters: { name: string }[] }).clusters[0]!.name, 'sandbox');
    const metrics = curl(['--cacert', pem('ca.pem'), `${url}/metrics`]);
    assert.match(metrics.stdout, /^regent_leader 1$/m);

    const noCa = curl([`${url}/api/v1/clusters`]);
    assert.equal(noCa.status, 60, `without the CA: exit ${noCa.status} ${noCa.stderr}`); // 60: peer certificate cannot be authenticated
    const otherCa = curl(['--cacert', pem('other-ca.pem'), `${url}/api/v1/clusters`]);
    assert.equal(otherCa.status, 60, `with another CA: exit ${otherCa.status} ${otherCa.stderr}`);
    const plain = curl([`http://127.0.0.1:${sb.node(1).port + PORT.api}/api/v1/clusters`]);
    assert.notEqual(plain.status, 0, 'plain http got an answer from the TLS listener');
    assert.doesNotMatch(plain.stdout, /"clusters"/);
    // Actions still need the token over TLS.
    const unauth = curl(['--cacert', pem('ca.pem'), '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `${url}/api/v1/clusters/sandbox/ack`]);
    assert.equal(unauth.stdout, '401');
  });

  test('the CLI talks to the TLS manager: status lists it, switchover goes through it', async () => {
    const st = await runCli(['status', '--config', serverConfig], { env: shellEnv });
    seen.push(st.stdout, st.stderr);
    assert.equal(st.code, 0, out(st));
    assert.match(st.stdout, new RegExp(`managers \\(local\\):\\n +★ leader .*api ${url.replace(/\./g, '\\.')}`));
    const sw = await runCli(['switchover', '--config', serverConfig], { env: shellEnv });
    seen.push(sw.stdout, sw.stderr);
    assert.equal(sw.code, 0, out(sw));
    assert.match(sw.stdout, /switchover done in \d+ ms/);
    assert.ok(manager!.events.some((e) => e.event === 'api_action' && String(e['path']).endsWith('/switchover') && e['status'] === 200), 'the switchover did not go through the API');
  });

  test('a CA that did not sign the certificate: one line, exit 2, and the CLI does not act alone; --ca and REGENT_API_CA fix it', async () => {
    const otherCa = config('cli-other-ca', { ca: pem('other-ca.pem') });
    const before = manager!.count((e) => e.event === 'api_action');
    const r = await runCli(['ack', '--config', otherCa], { env: shellEnv });
    seen.push(r.stdout, r.stderr);
    assert.equal(r.code, 2, out(r));
    assert.deepEqual(r.stderr.trim().split('\n').length, 1, out(r));
    assert.match(r.stderr, new RegExp(`^regent: the manager at ${url.replace(/\./g, '\\.')} presented a certificate that is not trusted \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)[^)]*\\); verified with manager\\.api\\.tls\\.ca: set manager\\.api\\.tls\\.ca, --ca FILE or REGENT_API_CA`));
    assert.equal(manager!.count((e) => e.event === 'api_action'), before);

    const withFlag = await runCli(['ack', '--config', otherCa, '--ca', pem('ca.pem')], { env: shellEnv });
    assert.equal(withFlag.code, 0, out(withFlag));
    assert.match(withFlag.stdout, /automatic failover is allowed/);
    const withEnv = await runCli(['ack', '--config', otherCa], { env: { ...shellEnv, REGENT_API_CA: pem('ca.pem') } });
    assert.equal(withEnv.code, 0, out(withEnv));
    assert.equal(manager!.count((e) => e.event === 'api_action'), before + 2);

    const missing = await runCli(['ack', '--config', otherCa, '--ca', pem('nope.pem')], { env: shellEnv });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^regent: --ca .*nope\.pem: cannot read .*nope\.pem \(ENOENT\)\n$/);
  });

  test('a config without manager.api.tls against the TLS manager: one line, exit 2, nothing done alone', async () => {
    const plain = config('cli-plain', undefined);
    const r = await runCli(['ack', '--config', plain], { env: shellEnv });
    assert.equal(r.code, 2, out(r));
    assert.match(r.stderr, /^regent: http:\/\/127\.0\.0\.1:\d+ closed the connection without an HTTP answer: if the manager serves https, set manager\.api\.tls\.ca \(or --ca FILE\) in this config\n$/);
    const st = await runCli(['status', '--config', plain], { env: shellEnv });
    assert.match(st.stdout, /managers \(local\): unknown \(http:\/\/.* closed the connection without an HTTP answer/);
  });

  test('bad TLS settings: one line each, exit 2, nothing started', async () => {
    const noKey = config('tls-no-key', { cert: pem('server.pem') });
    const a = await runCli(['status', '--config', noKey], { env: shellEnv });
    assert.equal(a.code, 2);
    assert.match(a.stderr, /manager\.api\.tls: set cert and key together/);
    const notPem = config('tls-not-pem', { cert: pem('server.ext'), key: pem('server.key') });
    const b = await runCli(['status', '--config', notPem], { env: shellEnv });
    assert.equal(b.code, 2);
    assert.match(b.stderr, /manager\.api\.tls\.cert: .*server\.ext is not a PEM file/);
    // ca alone is a CLI host's config: `regent run` with it refuses instead of serving plain http.
    const caOnly = config('tls-ca-only', { ca: pem('ca.pem') });
    const c = await runCli(['run', '--config', caOnly], { env: shellEnv, timeoutMs: 30000 });
    assert.equal(c.code, 2, out(c));
    assert.match(c.stderr, /regent: manager\.api\.tls has no cert and key, so the API cannot serve https/);
  });

  test('the dashboard over https in chromium: refused without trust, loads and goes live with it', { timeout: 90000 }, async () => {
    // Chromium keeps its own trust store; instead of installing the test CA there, it is told to
    // accept exactly this server key (an SPKI pin), so the refusal below still proves TLS is checked.
    browser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${spkiHash(certs.path)}`] });
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/`);
    await page.getByTestId('node-node1').waitFor({ timeout: 15000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="live"]')?.getAttribute('data-state') === 'live', null, { timeout: 15000 });
    assert.equal(await page.getByTestId('cluster-row-sandbox').getAttribute('data-health'), 'healthy');
    assert.deepEqual(errors, []);

    const untrusting = await launchBrowser();
    try {
      const p = await untrusting.context.newPage();
      await assert.rejects(p.goto(`${url}/`), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await untrusting.close();
    }
  });
});
