import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { fenceServer } from '../../src/recovery/fence.ts';
import type { Sandbox } from '../../src/sandbox/sandbox.ts';
import { AdminPool } from '../../src/sql/admin-pool.ts';
import { flavorForVersion } from '../../src/sql/flavors.ts';
import { eventually, startSandbox } from '../helpers/env.ts';

/**
 * Fencing a former primary whose replicas left: a commit there waits for a semi-sync
 * acknowledgement that never comes, and setting read_only waits for that commit, which then
 * reports success to its client once the semi-sync timeout passes. The fence kills client
 * sessions first: the waiting client gets an error, never an OK for a write the next primary does
 * not have. (Found by the multi-manager chaos run: three acknowledged writes lost per frozen
 * primary when the workload's endpoint was not the leader's.)
 */
describe('fencing a primary with a commit waiting for a semi-sync acknowledgement', () => {
  let sb: Sandbox;
  let cleanup: () => Promise<void>;
  let admin: AdminPool | undefined;
  before(async () => ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 })));
  after(async () => {
    await admin?.closeAll();
    await cleanup?.();
  });

  test('the waiting client gets an error, not OK; the server ends read_only', async () => {
    const primary = sb.node(1);
    await sb.sql(primary, ['CREATE TABLE app.fenced (id INT PRIMARY KEY)']);
    // The replicas leave (as a failover's stop-io-threads makes them): no acknowledgement comes.
    for (const r of [sb.node(2), sb.node(3)]) await sb.sql(r, ['STOP SLAVE IO_THREAD']);
    const app = sb.appAccount();
    const client = await mysql.createConnection({ host: '127.0.0.1', port: primary.port, user: app.user, password: app.password, database: app.database });
    const outcome = client.query('INSERT INTO fenced VALUES (1)').then(
      () => 'acknowledged',
      (e: Error) => `error: ${e.message}`,
    );
    await eventually(async () => {
      const [rows] = (await sb.sql(primary, ["SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for semi-sync ACK%'"])) as [{ n: unknown }[]];
      return Number(rows[0]!.n) === 1;
    }, 10000, 'the commit waiting for a semi-sync acknowledgement');

    const cluster = sb.config().clusters[0]!;
    admin = new AdminPool(cluster);
    const conn = await admin.get(`127.0.0.1:${primary.port}`);
    const [[v]] = (await sb.sql(primary, ['SELECT VERSION() AS v'])) as [[{ v: string }]];
    const killed = await fenceServer(conn, flavorForVersion(v.v), cluster);

    assert.match(await outcome, /^error: /);
    assert.ok(killed >= 1, `${killed} session(s) killed`);
    const [[ro]] = (await sb.sql(primary, ['SELECT @@read_only AS ro'])) as [[{ ro: unknown }]];
    assert.equal(Number(ro.ro), 1);
    client.destroy();
  });
});
