import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCoordinator } from '../../src/coordination/local.ts';
import { eventually, tempDir } from '../helpers/env.ts';

test('local coordinator: cluster state is cached, and a write by another process is seen', async () => {
  const dir = tempDir('regent-local-coord-');
  const mine = new LocalCoordinator(dir.path);
  const other = new LocalCoordinator(dir.path); // stands for a CLI command writing the same files
  try {
    assert.deepEqual(await mine.getClusterState('c1'), {});
    await mine.updateClusterState('c1', (s) => ({ ...s, primary: 'a:1' }));
    const first = await mine.getClusterState('c1');
    assert.equal(first.primary, 'a:1');
    assert.equal(await mine.getClusterState('c1'), first, 'a second read comes from the cache');
    assert.throws(() => ((first as { primary?: string }).primary = 'x'), TypeError, 'cached states are frozen');

    await other.updateClusterState('c1', (s) => ({ ...s, acknowledgedAt: 42 }));
    await eventually(async () => (await mine.getClusterState('c1')).acknowledgedAt === 42, 2000, 'the other write seen');
    // A change written by hand (no rename) is seen too.
    writeFileSync(join(dir.path, 'clusters', 'c1.json'), JSON.stringify({ primary: 'b:2' }));
    await eventually(async () => (await mine.getClusterState('c1')).primary === 'b:2', 2000, 'the hand edit seen');

    // Read-modify-write never works from a stale cache.
    writeFileSync(join(dir.path, 'clusters', 'c1.json'), JSON.stringify({ primary: 'b:2', maintenance: { 'x:1': 1 } }));
    const next = await mine.updateClusterState('c1', (s) => ({ ...s, acknowledgedAt: 7 }));
    assert.deepEqual(next, { primary: 'b:2', maintenance: { 'x:1': 1 }, acknowledgedAt: 7 });
  } finally {
    await mine.close();
    await other.close();
    dir.remove();
  }
});
