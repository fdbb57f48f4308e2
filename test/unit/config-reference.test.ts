import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseConfigText } from '../../src/config/load.ts';
import { configJsonSchema, REFERENCE_FILE, renderConfigReference, undocumentedKeys, walkKeys } from '../../scripts/gen-config-reference.ts';
import { ROOT, tempDir } from '../helpers/env.ts';

test('docs/config-reference.md is what the schema generates (regenerate: node --import tsx scripts/gen-config-reference.ts)', () => {
  const committed = readFileSync(REFERENCE_FILE, 'utf8');
  assert.equal(committed, renderConfigReference(), 'docs/config-reference.md drifted from src/config/schema.ts; run: node --import tsx scripts/gen-config-reference.ts');
});

test('every key of the configuration schema has a description', () => {
  assert.deepEqual(undocumentedKeys(configJsonSchema()), []);
});

test('the reference lists every key path, with type, default and description', () => {
  const text = renderConfigReference();
  const keys = walkKeys(configJsonSchema());
  assert.ok(keys.length > 80, `only ${keys.length} keys found`);
  for (const k of keys) assert.ok(text.includes(`| \`${k.path}\` |`), `${k.path} missing from the reference`);
  assert.match(text, /\| `clusters\[\]\.instances\[\]\.port` \| whole number, 1 to 65535 \| `3306` \| TCP port of the server\. \|/);
  assert.match(text, /\| `manager\.coordination\.endpoints` \| .* \| \*required\* \| \(only with backend: etcd\) etcd client URLs/);
  assert.match(text, /\| `clusters\[\]\.failover\.confirmReplicaSilenceMs` \| whole number, at least 0 \| `1200` \|/);
});

test('the walker catches a key without a description, at any depth, in lists and unions', () => {
  const schema = z
    .strictObject({
      documented: z.string().describe('Has one.'),
      bare: z.number(),
      nested: z.strictObject({ inner: z.boolean(), ok: z.string().describe('Fine.') }).describe('A nested mapping.'),
      list: z.array(z.strictObject({ item: z.string() })).describe('A list.'),
      choice: z
        .discriminatedUnion('kind', [z.strictObject({ kind: z.literal('a').describe('A.') }), z.strictObject({ kind: z.literal('b').describe('B.'), extra: z.number() })])
        .describe('A union.'),
    })
    .describe('Top.');
  assert.deepEqual(undocumentedKeys(configJsonSchema(schema)), ['bare', 'nested.inner', 'list[].item', 'choice.extra (only with kind: b)']);
  // And a fully described one passes.
  assert.deepEqual(undocumentedKeys(configJsonSchema(z.strictObject({ a: z.string().describe('A.') }))), []);
});

test('the example configs parse as they are', () => {
  const dir = tempDir();
  try {
    // Secrets as the examples expect them: files next to the config, variables in the environment.
    mkdirSync(join(dir.path, 'secrets'));
    for (const f of ['api-token', 'manager.pw', 'replication.pw']) writeFileSync(join(dir.path, 'secrets', f), 'x\n');
    const env = { REGENT_API_TOKEN: 't', REGENT_MANAGER_PASSWORD: 'm', REGENT_REPLICATION_PASSWORD: 'r', REGENT_CLONE_PASSWORD: 'c' };
    const read = (name: string) => readFileSync(join(ROOT, 'docs/examples', name), 'utf8');

    const three = parseConfigText(read('three-nodes.yaml'), join(dir.path, 'regent.yaml'), env);
    assert.equal(three.clusters.length, 1);
    assert.deepEqual(three.clusters[0]!.instances.map((i) => i.id), ['10.0.1.11:3306', '10.0.1.12:3306', '10.0.1.13:3306']);
    assert.equal(three.coordination.backend, 'local');
    assert.equal(three.clusters[0]!.accounts.replication.password?.reveal(), 'x');

    const two = parseConfigText(read('two-datacenters.yaml'), join(dir.path, 'regent.yaml'), env);
    assert.equal(two.coordination.backend, 'etcd');
    const c = two.clusters[0]!;
    assert.deepEqual([...new Set(c.instances.map((i) => i.dataCenter))], ['dc1', 'dc2']);
    assert.equal(c.instances.find((i) => i.promotion === 'never')?.name, 'dc2-db2');
    assert.equal(c.accounts.clone.user, 'regent_clone');
    // Heartbeats fit twice in the silence window, as regent doctor requires.
    for (const cfg of [three.clusters[0]!, c]) assert.ok(cfg.replication.heartbeatPeriodSeconds * 2000 <= cfg.failover.confirmReplicaSilenceMs);
  } finally {
    dir.remove();
  }
});
