import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load.ts';
import { detectFlavor, probeInstance } from '../../src/monitor/probe.ts';
import { FleetSimulator } from '../../src/sim/fleet.ts';
import { ReplicationModel, SimInstance, formatGtid, type Channel } from '../../src/sim/replication-model.ts';
import { nativePasswordHash, newScramble, verifyNativePassword } from '../../src/sim/wire.ts';
import { DbConnection } from '../../src/sql/connection.ts';
import type { DbError } from '../../src/errors.ts';
import { Secret } from '../../src/util/secret.ts';

/** A three-node cluster on a clock the test moves. */
function cluster(opts: { writeRate?: number; slaveNetTimeoutSec?: number } = {}) {
  let now = 1_000_000;
  const model = new ReplicationModel(() => now, { writeRate: opts.writeRate ?? 10, slaveNetTimeoutSec: opts.slaveNetTimeoutSec ?? 10 });
  const channel = (): Channel => ({ host: '127.9.0.1', port: 3306, user: 'repl', heartbeatPeriodSec: 0.5, connectRetrySec: 1, useGtid: 'Slave_Pos', ioRunning: true, sqlRunning: true });
  const p = new SimInstance('127.9.0.1:3306', '127.9.0.1', 3306, 1, 'c', 'n1', now, { readOnly: false, own: { server: 1, seq: 100 } });
  const r1 = new SimInstance('127.9.0.2:3306', '127.9.0.2', 3306, 2, 'c', 'n2', now, { readOnly: true, own: { server: 1, seq: 100 }, channel: channel() });
  const r2 = new SimInstance('127.9.0.3:3306', '127.9.0.3', 3306, 3, 'c', 'n3', now, { readOnly: true, own: { server: 1, seq: 100 }, channel: channel() });
  for (const i of [p, r1, r2]) model.add(i);
  return { model, p, r1, r2, advance: (ms: number) => (now += ms), at: () => now };
}

test('sim model: a writable primary advances its GTID and its replicas follow, with heartbeats', () => {
  const { model, p, r1, advance } = cluster();
  advance(2000);
  assert.equal(formatGtid(model.own(p)), '0-1-120');
  assert.equal(formatGtid(model.received(r1)), '0-1-120');
  assert.equal(formatGtid(model.applied(r1)), '0-1-120');
  assert.equal(model.heartbeats(r1), 4);
  assert.equal(model.link(r1)?.io, 'yes');
  assert.equal(model.semiSyncClients(p), 2);
});

test('sim model: a crashed primary: replicas reconnect ("Connecting", errno 2003) and keep what they had', () => {
  const { model, p, r1, advance } = cluster();
  advance(1000);
  model.crash(p);
  assert.equal(model.link(r1)?.io, 'yes', 'the crash is not noticed in the same instant');
  advance(10);
  const l = model.link(r1)!;
  assert.equal(l.io, 'connecting');
  assert.equal(l.ioErrno, 2003);
  advance(5000);
  assert.equal(formatGtid(model.applied(r1)), '0-1-110', 'nothing arrives after the crash');
  assert.equal(model.heartbeats(r1), 2);
  assert.equal(model.secondsBehind(r1), null);
  model.recover(p);
  assert.equal(p.readOnly, true, 'a restarted server comes back read_only');
  assert.equal(model.link(r1)?.io, 'yes');
});

test('sim model: a hung primary: IO thread stays "Yes" but silent until slave_net_timeout', () => {
  const { model, p, r1, advance } = cluster({ slaveNetTimeoutSec: 3 });
  advance(1000);
  const hb = model.heartbeats(r1);
  model.hang(p);
  advance(2000);
  assert.equal(model.link(r1)?.io, 'yes');
  assert.equal(model.heartbeats(r1), hb, 'no heartbeats from a frozen source');
  assert.equal(formatGtid(model.own(p)), '0-1-110', 'a frozen primary writes nothing');
  advance(1500);
  assert.equal(model.link(r1)?.io, 'connecting');
  assert.equal(model.link(r1)?.ioErrno, 2013);
  model.recover(p);
  assert.equal(p.readOnly, false, 'SIGCONT changes nothing');
  advance(1000);
  assert.equal(formatGtid(model.applied(r1)), '0-1-120');
});

test('sim model: promotion and re-pointing continue the history under the new server id', () => {
  const { model, p, r1, r2, advance } = cluster();
  advance(1000);
  model.crash(p);
  advance(100);
  model.change(r1, () => (r1.channel = undefined));
  model.change(r1, () => (r1.readOnly = false));
  model.change(r2, () => (r2.channel = { ...r2.channel!, host: '127.9.0.2', port: 3306 }));
  advance(1000);
  assert.equal(formatGtid(model.own(r1)), '0-2-120');
  assert.equal(formatGtid(model.applied(r2)), '0-2-120');
  assert.equal(formatGtid(model.applied(r1)), '0-1-110', 'gtid_slave_pos survives RESET SLAVE ALL');
});

test('sim model: scripted lag holds the SQL thread behind while events flow', () => {
  const { model, r1, advance } = cluster();
  model.change(r1, () => (r1.lagSeconds = 3));
  advance(5000);
  assert.equal(model.secondsBehind(r1), 3);
  assert.equal(formatGtid(model.received(r1)), '0-1-150');
  assert.equal(formatGtid(model.applied(r1)), '0-1-120');
});

test('sim wire: mysql_native_password verification accepts the right password only', () => {
  // The client's answer, computed as the protocol defines it: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
  const sha1 = (...b: Buffer[]) => b.reduce((h, x) => h.update(x), createHash('sha1')).digest();
  const scramble = newScramble(Buffer.from('0123456789abcdefghij'));
  const stage1 = sha1(Buffer.from('s3cret'));
  const mask = sha1(scramble, sha1(stage1));
  const token = Buffer.from(stage1.map((b, i) => b ^ mask[i]!));
  assert.equal(verifyNativePassword(nativePasswordHash('s3cret'), scramble, token), true);
  assert.equal(verifyNativePassword(nativePasswordHash('other'), scramble, token), false);
  assert.equal(verifyNativePassword(undefined, scramble, Buffer.alloc(0)), true);
  assert.equal(verifyNativePassword(undefined, scramble, token), false);
});

test('sim over the wire: Regent probes it like MariaDB; crash closes the connection and refuses; hang times out', async () => {
  const fleet = await FleetSimulator.start({ clusters: 2, size: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'regent-sim-'));
  const conns: DbConnection[] = [];
  try {
    const config = loadConfigFile(fleet.writeRegentConfig({ dir }));
    assert.equal(config.clusters.length, 2);
    assert.deepEqual(
      config.clusters[1]!.instances.map((i) => i.id),
      fleet.clusters[1]!.instances.map((i) => `${i.host}:${i.port}`),
    );
    const account = config.clusters[0]!.accounts.manager;
    const timeouts = { connectTimeoutMs: 500, queryTimeoutMs: 300 };
    const [primary, replica] = fleet.clusters[0]!.instances.map((i) => `${i.host}:${i.port}`) as [string, string];
    const open = async (id: string) => {
      const [h, p] = id.split(':');
      const c = await DbConnection.open(h!, Number(p), account, timeouts);
      conns.push(c);
      return c;
    };

    const pc = await open(primary);
    const rc = await open(replica);
    const flavor = await detectFlavor(rc);
    assert.equal(flavor.name, 'mariadb');
    const obs = await probeInstance(rc, flavor, replica);
    assert.equal(obs.settings?.readOnly, true);
    assert.equal(obs.settings?.serverId, 2);
    assert.equal(obs.replica?.sourceHost, primary.split(':')[0]);
    assert.equal(obs.replica?.ioThread, 'yes');
    assert.equal(obs.replica?.sqlThread, true);
    assert.equal(obs.replica?.heartbeatPeriod, 0.5);
    assert.ok(obs.gtids?.executed.toString().startsWith('0-1-'));
    const pObs = await probeInstance(pc, flavor, primary);
    assert.equal(pObs.replica, undefined);
    assert.equal(pObs.settings?.readOnly, false);
    assert.equal(pObs.semiSync?.primaryClients, 2);

    // Wrong password: refused like a server would.
    await assert.rejects(
      DbConnection.open(primary.split(':')[0]!, fleet.port, { user: account.user, password: new Secret('wrong', 'test') }, timeouts),
      (e: DbError) => e.kind === 'auth',
    );

    // Crash: the open connection reports its death, a new one is refused, replicas reconnect.
    const closed = new Promise<DbError>((resolve) => pc.onClose(resolve));
    fleet.crash(primary);
    assert.equal((await closed).kind, 'lost');
    await assert.rejects(open(primary), (e: DbError) => e.kind === 'refused');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await probeInstance(rc, flavor, replica)).replica?.ioThread, 'connecting');
    await fleet.recover(primary);
    assert.equal((await probeInstance(await open(primary), flavor, primary)).settings?.readOnly, true);

    // Hang: the query times out, a new connection gets no greeting; after recovery all is answered.
    fleet.hang(replica);
    await assert.rejects(probeInstance(rc, flavor, replica), (e: DbError) => e.kind === 'timeout');
    await assert.rejects(open(replica), (e: DbError) => e.kind === 'timeout');
    await fleet.recover(replica);
    assert.equal((await probeInstance(await open(replica), flavor, replica)).reachable, true);

    // A statement the simulator does not know is an SQL error naming it, and counted.
    await assert.rejects((await open(replica)).query('SELECT 1'), /not simulated/);
    assert.ok(fleet.statsSnapshot().unknown.includes('SELECT 1'));
    assert.ok(fleet.probes >= 4);
  } finally {
    for (const c of conns) c.destroy();
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
