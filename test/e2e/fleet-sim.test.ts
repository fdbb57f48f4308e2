import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetSimulator } from '../../src/sim/fleet.ts';
import { eventually, freePorts, tempDir } from '../helpers/env.ts';
import { ManagerProcess, type LogEvent } from '../helpers/manager.ts';

/**
 * The probe-load simulator (src/sim) under a real `regent run`: 10 simulated three-node clusters
 * in this process, the manager as a child process. Every instance must be probed and reported, a
 * crash must read as a dead primary (the replicas' IO threads reconnecting), a hang as a frozen one
 * (probe timeout, then the replicas' silence), and the failovers Regent runs must change the
 * simulated topology.
 */
describe('probe-load simulator under regent run', () => {
  let fleet: FleetSimulator;
  let manager: ManagerProcess;
  let dir: { path: string; remove: () => void };
  let api: string;

  type ClusterJson = { name: string; health: string; primary?: string; instances: { id: string; reachable: boolean; role: string }[] };
  const clusters = async (): Promise<ClusterJson[]> => ((await (await fetch(`${api}/api/v1/clusters`)).json()) as { clusters: ClusterJson[] }).clusters;
  const idsOf = (name: string) => fleet.clusters.find((c) => c.name === name)!.instances.map((i) => `${i.host}:${i.port}`);
  const forCluster = (name: string, event: string, extra: (e: LogEvent) => boolean = () => true) => (e: LogEvent) => e.event === event && e.cluster === name && extra(e);

  before(async () => {
    fleet = await FleetSimulator.start({ clusters: 10, size: 3 });
    dir = tempDir('regent-fleet-sim-');
    const apiPort = await freePorts(1);
    api = `http://127.0.0.1:${apiPort}`;
    manager = new ManagerProcess(fleet.writeRegentConfig({ dir: dir.path, apiListen: `127.0.0.1:${apiPort}` }), { env: { REGENT_LOG_LEVEL: 'info' } });
    await manager.waitFor((e) => e.event === 'manager_started', 30000, 'manager start');
  });

  after(async () => {
    await manager?.stop();
    await fleet?.stop();
    dir?.remove();
  });

  test('every simulated instance is probed and shown reachable, each cluster healthy with the simulated primary', async () => {
    await eventually(
      async () => {
        const all = await clusters();
        return all.length === 10 && all.every((c) => c.health === 'healthy' && c.primary === fleet.primaryOf(c.name)?.id && c.instances.length === 3 && c.instances.every((i) => i.reachable));
      },
      10000,
      'all 30 simulated instances reachable and every cluster healthy in the API',
    );
    const stats = fleet.statsSnapshot();
    assert.equal(stats.authFailures, 0);
    assert.deepEqual(stats.unknown, [], 'the manager sent statements the simulator does not know');
    assert.ok(stats.probes >= 30, `only ${stats.probes} probes answered`);
  });

  test('a crashed primary is a DeadPrimary (its replicas report IO connecting) and Regent fails it over', async () => {
    const name = fleet.clusters[3]!.name;
    const [primary, ...replicas] = idsOf(name) as [string, ...string[]];
    const since = manager.events.length;
    const { at } = fleet.crash(primary);
    const dead = await manager.waitFor(forCluster(name, 'problem_started', (e) => e.code === 'DeadPrimary'), 5000, `DeadPrimary of ${name}`, since);
    const evidence = (dead['evidence'] as string[]).join('\n');
    for (const r of replicas) assert.match(evidence, new RegExp(`${r.replace(/\./g, '\\.')}: IO thread reconnecting`));
    assert.ok(!manager.events.slice(since).some(forCluster(name, 'problem_started', (e) => e.code === 'UnreachablePrimary' && Date.parse(e.time) > Date.parse(dead.time))));
    process.stderr.write(`# crash of ${primary} seen as DeadPrimary ${Date.parse(dead.time) - at} ms later\n`);

    const done = await manager.waitFor(forCluster(name, 'failover_succeeded'), 10000, `failover of ${name}`, since);
    const next = done['newPrimary'] as string;
    assert.ok(replicas.includes(next));
    assert.equal(fleet.primaryOf(name)?.id, next, 'the simulator shows the promoted replica as the writable root');
    const other = fleet.describe(replicas.find((r) => r !== next)!);
    assert.equal(other.source, next);
    assert.equal(other.io, 'yes');
    await eventually(async () => (await clusters()).find((c) => c.name === name)?.primary === next, 5000, `the API shows ${next} as primary of ${name}`);
  });

  test('a hung primary is detected as frozen (probe timeout, then replica silence), failed over, and rejoined when it wakes', async () => {
    const name = fleet.clusters[7]!.name;
    const [primary, ...replicas] = idsOf(name) as [string, ...string[]];
    const since = manager.events.length;
    fleet.hang(primary);
    const lost = await manager.waitFor(forCluster(name, 'instance_unreachable', (e) => e['instance'] === primary), 5000, `${primary} unreachable`, since);
    assert.equal(lost['kind'], 'timeout', 'a frozen server is a timeout, not a closed or refused connection');
    const dead = await manager.waitFor(forCluster(name, 'problem_started', (e) => e.code === 'DeadPrimary'), 5000, `DeadPrimary of ${name}`, since);
    assert.match((dead['evidence'] as string[]).join('\n'), /IO thread connected but nothing received for \d+ ms/);
    const done = await manager.waitFor(forCluster(name, 'failover_succeeded'), 10000, `failover of ${name}`, since);
    assert.ok(replicas.includes(done['newPrimary'] as string));

    // SIGCONT: the old primary wakes up writable; Regent fences it and makes it a replica.
    await fleet.recover(primary);
    await manager.waitFor(forCluster(name, 'rejoin_succeeded', (e) => e['instance'] === primary), 10000, `rejoin of ${primary}`, since);
    const old = fleet.describe(primary);
    assert.equal(old.readOnly, true);
    assert.equal(old.source, done['newPrimary']);
    assert.deepEqual(fleet.statsSnapshot().unknown, [], 'failover and rejoin used only simulated statements');
  });
});
