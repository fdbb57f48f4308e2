import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { eventually, ROOT, runCli, startSandbox, type CliResult } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

/**
 * How the CLI behaves for an operator: a closed pipe is no crash, a refusal is one line with its exit
 * code (alone and through a manager), the log is human text when asked (or on a terminal) and JSON
 * otherwise, and `regent run` refuses to start blind on credentials every instance rejects, and
 * keeps running, loudly, when they start being rejected later.
 */

const out = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
/** The environment of a person at a shell: no log level forced by the test runner. */
const shellEnv = { REGENT_LOG_LEVEL: '', REGENT_LOG_FORMAT: '' };
const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('CLI behaviour', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  let manager: ManagerProcess | undefined;
  let managerPw: string;
  const id = (n: number) => `127.0.0.1:${sb.node(n).port}`;

  /** Runs `regent ARGS | READER` in bash; returns regent's exit code and its stderr. */
  const piped = (args: string[], reader: string) => {
    const errFile = join(sb.dir, 'piped.err');
    const quoted = args.map((a) => `'${a}'`).join(' ');
    const r = spawnSync('bash', ['-c', `'${process.execPath}' '${join(ROOT, 'bin/regent.js')}' ${quoted} 2>'${errFile}' | ${reader}; echo "regent-exit=\${PIPESTATUS[0]}"`], {
      encoding: 'utf8',
      env: { ...process.env, ...shellEnv },
      timeout: 60000,
    });
    return { code: Number(/regent-exit=(\d+)/.exec(r.stdout)?.[1]), stdout: r.stdout, stderr: readFileSync(errFile, 'utf8') };
  };

  /** A copy of the sandbox config with one secret file swapped for another holding `value`. */
  const configWith = (secret: string, value: string): string => {
    writeFileSync(join(sb.dir, 'secrets', `wrong-${secret}`), `${value}\n`);
    const f = join(sb.dir, `wrong-${secret}.yaml`);
    writeFileSync(f, readFileSync(sb.configFile, 'utf8').replace(`secrets/${secret}`, `secrets/wrong-${secret}`));
    return f;
  };

  const setManagerPassword = async (pw: string) => {
    for (const node of sb.nodes) {
      await sb.sql(node, ['SET SESSION sql_log_bin = 0', `ALTER USER 'regent'@'127.0.0.1' IDENTIFIED BY '${pw}'`]);
      // Open sessions stay logged in: end Regent's, so its probes log in again.
      const [rows] = (await sb.sql(node, ["SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = 'regent'"])) as [{ id: number }[]];
      for (const r of rows ?? []) await sb.sql(node, [`KILL ${r.id}`]).catch(() => undefined);
    }
  };

  before(async () => {
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    managerPw = readFileSync(join(sb.dir, 'secrets/manager.pw'), 'utf8').trim();
  });
  after(async () => {
    await manager?.stop();
    await cleanup?.();
  });

  test('a closed output pipe: no stack trace, the command keeps its own exit code', async () => {
    // head -1 closes after the first line, while status still writes the managers line.
    const head = piped(['status', '--config', sb.configFile], 'head -1');
    assert.match(head.stdout, /^cluster sandbox: HEALTHY/);
    assert.equal(head.code, 0, head.stderr);
    assert.equal(head.stderr, '');
    // `true` has exited before the first write: every write fails with EPIPE. stderr stays a
    // terminal in real life (only stdout is piped): --log-format text stands for that.
    for (const args of [['status', '--config', sb.configFile], ['doctor', '--config', sb.configFile], ['grants', '--config', sb.configFile], ['failover', '--dry-run', '--config', sb.configFile], ['--help']]) {
      const r = piped(['--log-format', 'text', ...args], 'true');
      assert.doesNotMatch(r.stderr, /EPIPE|at .*\.(ts|js):\d+|Unhandled/, `regent ${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, '', `regent ${args.join(' ')} wrote to stderr`);
      assert.ok([0, 1].includes(r.code), `regent ${args.join(' ')} exited ${r.code}`);
    }
  });

  test('--help of the program and of each command documents the exit codes', async () => {
    for (const args of [['--help'], ['switchover', '--help'], ['run', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, out(r));
      assert.match(r.stdout, /Exit codes \(every command\):\n  0 .*\n  1 +refused \(nothing changed\) or failed/, `regent ${args.join(' ')}`);
    }
    const bad = await runCli(['status', '--config', sb.configFile, '--log-format', 'xml'], { env: shellEnv });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /argument 'xml' is invalid\. Allowed choices are auto, json, text/);
  });

  test('a refused switchover without a manager: one line on stderr, exit 1, nothing else with the human log', async () => {
    const r = await runCli(['switchover', '--config', sb.configFile, '--to', 'node1', '--log-format', 'text'], { env: shellEnv });
    assert.equal(r.code, 1, out(r));
    assert.deepEqual(lines(r.stderr), [`regent: switchover refused: ${id(1)} is already the primary`], out(r));
    assert.equal(r.stdout, '');
    // A pipe without --log-format gets the JSON log, and the refusal is still its own last line.
    const json = await runCli(['switchover', '--config', sb.configFile, '--to', 'node1'], { env: shellEnv });
    assert.equal(json.code, 1, out(json));
    const l = lines(json.stderr);
    assert.equal(l.at(-1), `regent: switchover refused: ${id(1)} is already the primary`);
    for (const x of l.slice(0, -1)) assert.doesNotThrow(() => JSON.parse(x), `not a JSON log line: ${x}`);
    // A manual failover of a live primary: the same refusal and code as through a manager.
    const fo = await runCli(['failover', '--config', sb.configFile, '--log-format', 'text'], { env: shellEnv });
    assert.equal(fo.code, 1, out(fo));
    assert.deepEqual(lines(fo.stderr), [`regent: failover refused: primary ${id(1)} of sandbox is alive: use a switchover for a planned change, or force the failover (regent failover --force, or {"force": true} in the API) to fence it and fail over anyway`]);
  });

  test('regent run: every instance rejects the manager account at start: exit 2 with one line, nothing left running', async () => {
    const f = configWith('manager.pw', 'not-the-password');
    for (const format of ['json', 'text']) {
      const r = await runCli(['run', '--config', f, '--log-format', format], { env: shellEnv, timeoutMs: 30000 });
      assert.equal(r.code, 2, out(r));
      assert.deepEqual(lines(r.stderr).length, 1, out(r));
      assert.match(r.stderr, /^regent: cluster sandbox: every instance rejects the manager account 'regent' \(access denied: wrong password, or no such account for this host\); set the account's password in credentials\.manager \(read from file .*wrong-manager\.pw\), or create the account with the statements `regent grants` prints\. The manager did not start\.\n$/);
      assert.doesNotMatch(r.stderr, /not-the-password/);
    }
    // The API port is free again: nothing was left listening.
    const probe = await fetch(`http://127.0.0.1:${sb.node(1).port + PORT.api}/metrics`).then(() => 'answered', () => 'refused');
    assert.equal(probe, 'refused');
  });

  test('regent run --log-format text: human lines, no JSON', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/regent.js'), 'run', '--config', sb.configFile, '--log-format', 'text'], { env: { ...process.env, ...shellEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    let killer: NodeJS.Timeout | undefined;
    try {
      await eventually(async () => /ℹ regent manager started/.test(err), 15000, 'the text line of the start').catch((e: Error) => {
        throw new Error(`${e.message}; stderr so far:\n${err}`);
      });
    } finally {
      child.kill('SIGTERM');
      // A stop that hangs fails the test instead of hanging the suite.
      killer = setTimeout(() => child.kill('SIGKILL'), 15000);
    }
    assert.equal(await exited, 0, `regent run did not stop on SIGTERM:\n${err}`);
    clearTimeout(killer);
    // Its data plane outlives it by design; the next test starts from none.
    const stopped = await runCli(['dataplane', 'stop', '--config', sb.configFile]);
    assert.equal(stopped.code, 0, out(stopped));
    for (const l of lines(err)) assert.match(l, /^\d\d:\d\d:\d\d\.\d{3} [·ℹ⚠✖] \S/, `not a text log line: ${l}`);
    assert.match(err, new RegExp(`ℹ ${id(1).replace(/\./g, '\\.')} reachable`));
  });

  test('through a manager: a refusal is one line (exit 1), a wrong API token one line (exit 2)', async () => {
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    await manager.waitFor((e) => e.event === 'router_writer_changed', 5000, 'first analysis');
    const r = await runCli(['switchover', '--config', sb.configFile, '--to', 'node1'], { env: shellEnv });
    assert.equal(r.code, 1, out(r));
    assert.deepEqual(lines(r.stderr), [`regent: switchover refused: ${id(1)} is already the primary`]);
    const tokenConfig = configWith('api-token.pw', 'wrong-token-value');
    const t = await runCli(['switchover', '--config', tokenConfig], { env: shellEnv });
    assert.equal(t.code, 2, out(t));
    assert.deepEqual(lines(t.stderr), ['regent: switchover not sent: the manager refused the API token: this action needs the API token: send Authorization: Bearer <token> (manager.api.token)']);
    assert.equal(manager.count((e) => e.event === 'switchover_started'), 0);
  });

  test('credentials rejected after the start: the manager keeps running, logs an error and exports the gauge; accepted again when fixed', { timeout: 60000 }, async () => {
    const m = manager!;
    const gauge = async () => {
      const text = await (await fetch(`http://127.0.0.1:${sb.node(1).port + PORT.api}/metrics`)).text();
      return [...text.matchAll(/^regent_instance_credentials_rejected\{cluster="sandbox",instance="([^"]+)"\} (\S+)$/gm)].map((x) => `${x[1]}=${x[2]}`).sort();
    };
    assert.deepEqual(await gauge(), [1, 2, 3].map((n) => `${id(n)}=0`).sort());
    const since = m.events.length;
    await setManagerPassword('rotated-Pw-9f3e');
    try {
      const e = await m.waitFor((x) => x.event === 'credentials_rejected' && (x['instances'] as string[]).length === 3, 15000, 'credentials_rejected for every instance', since);
      assert.equal(e.level, 'error');
      assert.match(String(e.msg), /cluster sandbox: every instance \(3\) rejects the manager account 'regent'/);
      await eventually(async () => (await gauge()).every((g) => g.endsWith('=1')), 5000, 'regent_instance_credentials_rejected 1 everywhere');
      assert.ok(m.alive, 'the manager exited');
      assert.equal(m.count((x) => x.event === 'failover_started'), 0, 'a login refusal is no dead primary');
    } finally {
      await setManagerPassword(managerPw);
    }
    await m.waitFor((x) => x.event === 'credentials_accepted', 15000, 'credentials_accepted', since);
    await eventually(async () => (await gauge()).every((g) => g.endsWith('=0')), 5000, 'regent_instance_credentials_rejected back to 0');
    assert.ok(!m.raw.join('\n').includes('rotated-Pw-9f3e') && !m.raw.join('\n').includes(managerPw), 'a password appeared in the log');
  });
});
