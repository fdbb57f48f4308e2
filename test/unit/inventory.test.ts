import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InventoryEntry } from '../../src/coordination/coordinator.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { clusterFingerprint, configFingerprint, diffClusters, settingsNeedingRestart } from '../../src/inventory/diff.ts';
import { effectiveConfig } from '../../src/inventory/load.ts';
import { mergeInventory } from '../../src/inventory/merge.ts';
import { addClusterToFile, addInstanceToFile, removeClusterFromFile } from '../../src/inventory/yaml-file.ts';
import { fingerprint } from '../../src/util/fingerprint.ts';
import { Secret } from '../../src/util/secret.ts';
import { tempDir } from '../helpers/env.ts';

/** The inventory: clusters registered at run time, merged into the file; reload diffs; YAML edits that keep comments. */

const at = 1;
const added = (name: string, port: number): InventoryEntry => ({ name, cluster: { instances: [{ host: '127.0.0.1', port }] }, at, by: 't' });
const tombstone = (name: string): InventoryEntry => ({ name, removed: true, at, by: 't' });
const fileDoc = { manager: {}, clusters: [{ name: 'a', instances: [{ host: '127.0.0.1', port: 4001 }] }, { name: 'b', instances: [{ host: '127.0.0.1', port: 4002 }] }] };

const mergeCases: { name: string; entries: InventoryEntry[]; clusters: string[]; origins: Record<string, string> }[] = [
  { name: 'no inventory: the file', entries: [], clusters: ['a', 'b'], origins: { a: 'file', b: 'file' } },
  { name: 'a registered cluster joins, after the file\'s', entries: [added('c', 4003)], clusters: ['a', 'b', 'c'], origins: { a: 'file', b: 'file', c: 'inventory' } },
  { name: 'registered ones in name order', entries: [added('z', 4005), added('c', 4003)], clusters: ['a', 'b', 'c', 'z'], origins: { a: 'file', b: 'file', c: 'inventory', z: 'inventory' } },
  { name: 'an entry with a file cluster\'s name replaces it in place', entries: [added('a', 4009)], clusters: ['a', 'b'], origins: { a: 'inventory', b: 'file' } },
  { name: 'a tombstone takes a file cluster out', entries: [tombstone('a')], clusters: ['b'], origins: { b: 'file' } },
  { name: 'a tombstone for a name nobody has changes nothing', entries: [tombstone('x')], clusters: ['a', 'b'], origins: { a: 'file', b: 'file' } },
];
for (const c of mergeCases) {
  test(`mergeInventory: ${c.name}`, () => {
    const r = mergeInventory(fileDoc, c.entries);
    assert.deepEqual((r.doc['clusters'] as { name: string }[]).map((x) => x.name), c.clusters);
    assert.deepEqual(Object.fromEntries(r.origins), c.origins);
    // The file's document is never changed.
    assert.equal(fileDoc.clusters.length, 2);
  });
}

test('mergeInventory: a replacing entry carries its own settings, not the file\'s', () => {
  const r = mergeInventory(fileDoc, [added('a', 4009)]);
  assert.deepEqual((r.doc['clusters'] as { instances: { port: number }[] }[])[0]!.instances, [{ host: '127.0.0.1', port: 4009 }]);
});

function withFile(text: string, fn: (file: string) => void): void {
  const dir = tempDir('regent-inventory-');
  try {
    const file = join(dir.path, 'regent.yaml');
    writeFileSync(file, text);
    fn(file);
  } finally {
    dir.remove();
  }
}

const YAML = `# Regent for the payments team
manager:
  stateDir: state # journal lives here
clusters:
  # the first one
  - name: a
    instances:
      - host: 127.0.0.1
        port: 4001
`;

test('effectiveConfig: entries that do not fit the file are left out and named; the rest load', () => {
  withFile(YAML, (file) => {
    const clash = added('dup', 4001); // 127.0.0.1:4001 belongs to a
    const bad: InventoryEntry = { name: 'bad', cluster: { instances: [{ host: '127.0.0.1', port: 4004 }], monitor: { probeIntervalMs: 1 } }, at, by: 't' };
    const r = effectiveConfig(file, [added('c', 4003), clash, bad], {});
    assert.deepEqual(r.config.clusters.map((c) => c.name), ['a', 'c']);
    assert.deepEqual(r.skipped.map((s) => s.name), ['dup', 'bad']);
    assert.match(r.skipped[0]!.error, /127\.0\.0\.1:4001 is already listed/);
    assert.match(r.skipped[1]!.error, /probeIntervalMs: must be at least 50/);
  });
});

test('effectiveConfig: two entries that fit alone but clash together are both left out, the file stands', () => {
  withFile(YAML, (file) => {
    const r = effectiveConfig(file, [added('c', 4003), added('d', 4003)], {});
    assert.deepEqual(r.config.clusters.map((c) => c.name), ['a']);
    assert.deepEqual(r.skipped.map((s) => s.name).sort(), ['c', 'd']);
  });
});

test('effectiveConfig: a broken file is the error, whatever the inventory holds', () => {
  withFile('clusters: [', (file) => assert.throws(() => effectiveConfig(file, [added('c', 4003)], {}), /not valid YAML/));
});

test('addClusterToFile: appends the entry, keeps every comment, keeps the mode', () => {
  withFile(YAML, (file) => {
    chmodSync(file, 0o640);
    addClusterToFile(file, { name: 'c2', primary: '127.0.0.1:4010', instances: [{ host: '127.0.0.1', port: 4010 }, { host: '127.0.0.1', port: 4011 }] });
    const text = readFileSync(file, 'utf8');
    for (const comment of ['# Regent for the payments team', '# journal lives here', '# the first one']) assert.ok(text.includes(comment), `${comment} kept`);
    assert.deepEqual(parseConfigText(text, file, {}).clusters.map((c) => [c.name, c.instances.map((i) => i.id)]), [
      ['a', ['127.0.0.1:4001']],
      ['c2', ['127.0.0.1:4010', '127.0.0.1:4011']],
    ]);
    assert.equal(statSync(file).mode & 0o777, 0o640);
  });
});

test('addClusterToFile: a taken name, or an entry that makes the file invalid, changes nothing', () => {
  withFile(YAML, (file) => {
    assert.throws(() => addClusterToFile(file, { name: 'a', instances: [{ host: '127.0.0.1', port: 4020 }] }), /already has a cluster named "a"/);
    assert.throws(() => addClusterToFile(file, { name: 'x', instances: [{ host: '127.0.0.1', port: 4001 }] }), /already listed/);
    assert.throws(() => addClusterToFile(file, { name: 'y', instances: [{ host: '127.0.0.1', port: 4021 }], monitor: { probeIntervalMs: 'fast' } }), /probeIntervalMs/);
    assert.equal(readFileSync(file, 'utf8'), YAML);
  });
});

test('addClusterToFile: into an empty flow list, written as a block', () => {
  withFile('manager: {}\nclusters: []\n', (file) => {
    addClusterToFile(file, { name: 'first', instances: [{ host: '127.0.0.1', port: 4030 }] });
    const text = readFileSync(file, 'utf8');
    assert.match(text, /clusters:\n {2}- name: first\n/);
    assert.deepEqual(parseConfigText(text, file, {}).clusters.map((c) => c.name), ['first']);
  });
});

test('removeClusterFromFile and addInstanceToFile: the other clusters and the comments stay', () => {
  withFile(YAML, (file) => {
    addClusterToFile(file, { name: 'c2', instances: [{ host: '127.0.0.1', port: 4010 }] });
    addInstanceToFile(file, 'c2', { host: '127.0.0.1', port: 4012 });
    assert.deepEqual(parseConfigText(readFileSync(file, 'utf8'), file, {}).clusters.find((c) => c.name === 'c2')!.instances.map((i) => i.id), ['127.0.0.1:4010', '127.0.0.1:4012']);
    assert.throws(() => addInstanceToFile(file, 'a', { host: '127.0.0.1', port: 4012 }), /already listed/);
    removeClusterFromFile(file, 'c2');
    assert.equal(readFileSync(file, 'utf8'), YAML);
    assert.throws(() => removeClusterFromFile(file, 'c2'), /no cluster named "c2"/);
  });
});

const two = (body: string) => parseConfigText(`clusters:\n  - name: a\n    instances: [{host: 127.0.0.1, port: 4001}]\n${body}`, '/virtual/regent.yaml', { PW: 'one', PW2: 'two' });

test('diffClusters: added, removed, changed (settings, instances, a password), unchanged', () => {
  const before = two('  - name: b\n    instances: [{host: 127.0.0.1, port: 4002}]\n  - name: c\n    instances: [{host: 127.0.0.1, port: 4003}]\n    credentials: {manager: {user: r, password: {env: PW}}}\n  - name: d\n    instances: [{host: 127.0.0.1, port: 4004}]\n');
  const after = parseConfigText(
    'clusters:\n  - name: a\n    instances: [{host: 127.0.0.1, port: 4001}]\n  - name: b\n    instances: [{host: 127.0.0.1, port: 4002}]\n    monitor: {probeIntervalMs: 250}\n  - name: c\n    instances: [{host: 127.0.0.1, port: 4003}]\n    credentials: {manager: {user: r, password: {env: PW2}}}\n  - name: e\n    instances: [{host: 127.0.0.1, port: 4005}]\n',
    '/virtual/regent.yaml',
    { PW: 'one', PW2: 'two' },
  );
  assert.deepEqual(diffClusters(before.clusters, after.clusters), { added: ['e'], removed: ['d'], changed: ['b', 'c'], unchanged: ['a'] });
  assert.notEqual(configFingerprint(before), configFingerprint(after));
});

test('fingerprint: a secret counts by its value (not by the mask its toJSON prints), and never shows in the result', () => {
  const a = fingerprint({ p: new Secret('hunter2', 'x') });
  assert.notEqual(a, fingerprint({ p: new Secret('hunter3', 'x') }));
  assert.equal(a, fingerprint({ p: new Secret('hunter2', 'elsewhere') }));
  assert.ok(!a.includes('hunter2'));
  assert.notEqual(fingerprint({ pem: Buffer.from('a') }), fingerprint({ pem: Buffer.from('b') }));
  const c = two('').clusters[0]!;
  assert.equal(clusterFingerprint(c), clusterFingerprint(two('').clusters[0]!));
});

test('settingsNeedingRestart: the API, coordination, state directory and router processes; clusters and log level are not', () => {
  const base = 'manager:\n  stateDir: s1\n  logLevel: info\n  routerProcesses: 0\n  api: {listen: "127.0.0.1:9000"}\nclusters:\n  - name: a\n    instances: [{host: 127.0.0.1, port: 4001}]\n';
  const before = parseConfigText(base, '/virtual/r.yaml', {});
  const same = parseConfigText(base.replace('logLevel: info', 'logLevel: debug').replace('port: 4001', 'port: 4002'), '/virtual/r.yaml', {});
  assert.deepEqual(settingsNeedingRestart(before, same), []);
  const moved = parseConfigText(base.replace('s1', 's2').replace('9000', '9001').replace('routerProcesses: 0', 'routerProcesses: 2'), '/virtual/r.yaml', {});
  assert.deepEqual(settingsNeedingRestart(before, moved), ['manager.api', 'manager.stateDir', 'manager.routerProcesses']);
});
