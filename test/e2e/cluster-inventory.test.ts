import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { openSandbox, PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { eventually, runCli, startSandbox, type CliResult } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';

/**
 * Clusters come and go while `regent run` runs (local backend, the YAML is the inventory):
 * `regent cluster add` crawls a running three-node cluster from one replica's address and writes
 * it into the YAML with the comments kept; the manager takes it on (reload through the API) and
 * fails it over; a replica attached later is noticed and added (discovery.addReplicas); SIGHUP
 * with a broken file changes nothing and says so in one line; `cluster remove` stops it.
 */

const out = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describe('clusters added, changed and removed without a restart (local backend)', () => {
  let a: Sandbox;
  let b: Sandbox;
  const cleanups: (() => Promise<void>)[] = [];
  let manager: ManagerProcess;
  let cfg: string;
  let api: string;
  const clusters = async () => ((await (await fetch(`${api}/api/v1/clusters`)).json()) as { clusters: { name: string; primary?: string; health: string; origin: string; instances: { id: string; reachable: boolean }[] }[] }).clusters;
  const named = async (name: string) => (await clusters()).find((c) => c.name === name);

  before(async () => {
    const sa = await startSandbox({ nodes: 3 });
    cleanups.push(sa.cleanup);
    a = sa.sandbox;
    // The second cluster uses the same accounts, as a fleet does (one manager account everywhere).
    const sb = await startSandbox({ nodes: 3, cluster: 'other', secretsFrom: join(a.dir, 'secrets') });
    b = sb.sandbox;
    cleanups.push(async () => {
      // `sandbox add` recorded its node in the manifest: stop it too, by PID.
      for (const n of openSandbox(b.dir).nodes) if (!b.nodes.some((x) => x.name === n.name)) b.nodes.push(n);
      await sb.cleanup();
    });
    cfg = a.configFile;
    api = `http://127.0.0.1:${a.nodes[0]!.port + PORT.api}`;
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('clusters:\n', '# Cluster list below: keep this comment\nclusters:\n'));
    manager = new ManagerProcess(cfg);
    await manager.waitFor((e) => e.event === 'manager_started', 60000, 'manager start');
  });
  after(async () => {
    await manager?.stop();
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  test('cluster add --dry-run shows the crawl and the doctor, and writes nothing', async () => {
    const before = readFileSync(cfg, 'utf8');
    const r = await runCli(['cluster', 'add', 'c2', '--seed', `127.0.0.1:${b.nodes[1]!.port}`, '--dry-run', '--config', cfg]);
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, /found 3 instances/);
    assert.match(r.stdout, new RegExp(`127\\.0\\.0\\.1:${b.nodes[0]!.port} +primary`));
    assert.match(r.stdout, new RegExp(`127\\.0\\.0\\.1:${b.nodes[2]!.port} +replica of 127\\.0\\.0\\.1:${b.nodes[0]!.port}.*registered as a replica`));
    assert.match(r.stdout, /doctor: 0 critical/);
    assert.match(r.stdout, /dry run: nothing registered/);
    assert.equal(readFileSync(cfg, 'utf8'), before);
  });

  test('cluster add refuses a taken name and a server another cluster has, changing nothing', async () => {
    const before = readFileSync(cfg, 'utf8');
    const taken = await runCli(['cluster', 'add', 'sandbox', '--seed', `127.0.0.1:${b.nodes[1]!.port}`, '--config', cfg]);
    assert.equal(taken.code, 2, out(taken));
    assert.match(taken.stderr, /a cluster named "sandbox" is already registered/);
    const owned = await runCli(['cluster', 'add', 'again', '--seed', `127.0.0.1:${a.nodes[2]!.port}`, '--config', cfg]);
    assert.equal(owned.code, 2, out(owned));
    assert.match(owned.stderr, new RegExp(`127\\.0\\.0\\.1:${a.nodes[0]!.port} already belongs to cluster sandbox`));
    assert.equal(readFileSync(cfg, 'utf8'), before);
  });

  test('cluster add from a replica registers the running cluster in the YAML (comments kept) and the manager takes it on', async () => {
    const r = await runCli(['cluster', 'add', 'c2', '--seed', `127.0.0.1:${b.nodes[1]!.port}`, '--config', cfg]);
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, /registered cluster c2 in /);
    assert.match(r.stdout, /reloaded: added c2; removed none; changed none; 1 unchanged/);
    const text = readFileSync(cfg, 'utf8');
    assert.ok(text.includes('# Cluster list below: keep this comment'), 'comment kept');
    assert.ok(text.startsWith('# Written by'), 'header comment kept');
    await eventually(async () => (await named('c2'))?.health === 'healthy', 15000, 'c2 healthy in the API');
    const c2 = (await named('c2'))!;
    assert.equal(c2.primary, `127.0.0.1:${b.nodes[0]!.port}`);
    assert.deepEqual(c2.instances.map((i) => i.id).sort(), b.nodes.map((n) => `127.0.0.1:${n.port}`).sort());
    assert.equal((await named('sandbox'))?.health, 'healthy', 'the other cluster goes on');
    const list = await runCli(['cluster', 'list', '--config', cfg]);
    assert.equal(list.code, 0, out(list));
    assert.match(list.stdout, /^c2 +config file +3 instances +led by /m);
  });

  test('SIGHUP with a changed cluster restarts that cluster only; a replica attached later is noticed and added', async () => {
    const doc = parseDocument(readFileSync(cfg, 'utf8'));
    doc.setIn(['clusters', 1, 'discovery'], doc.createNode({ scanIntervalSeconds: 1, addReplicas: true }));
    writeFileSync(cfg, doc.toString());
    const since = manager.events.length;
    process.kill(manager.pid!, 'SIGHUP');
    const reloaded = await manager.waitFor((e) => e.event === 'config_reloaded', 15000, 'reload after SIGHUP', since);
    assert.deepEqual([reloaded['added'], reloaded['removed'], reloaded['changed'], reloaded['unchanged']], [[], [], ['c2'], 1]);

    // A fourth server, cloned from a replica of c2 and replicating from its primary: not in the YAML.
    const add = await runCli(['sandbox', 'add', '--dir', b.dir], { timeoutMs: 90000 });
    assert.equal(add.code, 0, out(add));
    const port = Number(/on 127\.0\.0\.1:(\d+)/.exec(add.stdout)![1]);
    const noticed = await manager.waitFor((e) => e.event === 'replica_added' && e['instance'] === `127.0.0.1:${port}`, 30000, 'the new replica added');
    assert.equal(noticed['cluster'], 'c2');
    await eventually(async () => (await named('c2'))?.instances.length === 4 && (await named('c2'))?.health === 'healthy', 20000, 'c2 with four healthy instances');
    assert.match(readFileSync(cfg, 'utf8'), new RegExp(`port: ${port}`));
  });

  test('kill -9 of the added cluster\'s primary fails it over', async (t) => {
    const old = `127.0.0.1:${b.nodes[0]!.port}`;
    const since = manager.events.length;
    await b.kill(b.nodes[0]!);
    const done = await manager.waitFor((e) => e.event === 'failover_succeeded' && e['oldPrimary'] === old, 30000, 'failover of c2', since);
    t.diagnostic(`c2: ${old} -> ${String(done['newPrimary'])} in ${String(done['durationMs'])} ms`);
    await eventually(async () => {
      const c2 = await named('c2');
      return c2?.primary === done['newPrimary'] && c2?.instances.filter((i) => i.reachable).length === 3;
    }, 30000, 'c2 on its new primary with the three live servers');
    assert.equal((await named('sandbox'))?.health, 'healthy');
  });

  test('SIGHUP with a broken YAML changes nothing and says so in one line', async () => {
    const good = readFileSync(cfg, 'utf8');
    appendFileSync(cfg, '\n  - name: [broken\n');
    const since = manager.events.length;
    process.kill(manager.pid!, 'SIGHUP');
    const failed = await manager.waitFor((e) => e.event === 'reload_failed', 15000, 'reload_failed', since);
    assert.match(String(failed['msg']), /configuration not reloaded, nothing changed: config .*not valid YAML at line \d+/);
    assert.equal(manager.events.slice(since).filter((e) => e.event === 'reload_failed').length, 1);
    assert.equal(manager.events.slice(since).filter((e) => e.event === 'config_reloaded').length, 0);
    assert.deepEqual((await clusters()).map((c) => c.name).sort(), ['c2', 'sandbox']);
    // `regent reload` says the same to the person who ran it, exit 2.
    const r = await runCli(['reload', '--config', cfg]);
    assert.notEqual(r.code, 0, out(r));
    writeFileSync(cfg, good);
  });

  test('cluster remove stops it: out of the YAML, out of the manager; the other cluster untouched', async () => {
    const r = await runCli(['cluster', 'remove', 'c2', '--config', cfg]);
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, /removed cluster c2 from .*\nthe manager at .* reloaded: added none; removed c2/);
    assert.deepEqual((await clusters()).map((c) => c.name), ['sandbox']);
    assert.ok(!readFileSync(cfg, 'utf8').includes('name: c2'));
    assert.ok(readFileSync(cfg, 'utf8').includes('# Cluster list below: keep this comment'));
    const again = await runCli(['cluster', 'remove', 'c2', '--config', cfg]);
    assert.equal(again.code, 2, out(again));
    assert.match(again.stderr, /no cluster named "c2"/);
  });
});
