import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCluster } from '../../src/analysis/analyze.ts';
import { ReplicaScout } from '../../src/monitor/replica-scout.ts';
import { pickPrimary, type FoundInstance } from '../../src/setup/discover.ts';
import { MariadbFlavor } from '../../src/sql/mariadb/mariadb-flavor.ts';
import { MysqlFlavor } from '../../src/sql/mysql/mysql-flavor.ts';
import type { Flavor } from '../../src/sql/flavor.ts';
import { silentLogger } from '../../src/util/log.ts';
import { cluster, decided, id, mariadb, view } from '../helpers/views.ts';

/** Finding a topology from one server, and noticing replicas attached to it later. */

const P = '0-1-10';
const found = (n: number, obs: FoundInstance['obs'], via = 'the seed'): FoundInstance => ({ host: '127.0.0.1', port: 3300 + n, id: id(n), via, obs });
const dead = (n: number): FoundInstance => ({ host: '127.0.0.1', port: 3300 + n, id: id(n), via: 'registered', error: 'refused' });

const primaryCases: { name: string; instances: FoundInstance[]; primary?: string; findings: RegExp[] }[] = [
  { name: 'a primary and two replicas', instances: [found(2, mariadb.replicaObs(2, P)), found(1, mariadb.primaryObs(1, P)), found(3, mariadb.replicaObs(3, P))], primary: id(1), findings: [] },
  { name: 'a chain: the intermediate replicates from the primary', instances: [found(1, mariadb.primaryObs(1, P)), found(2, mariadb.replicaObs(2, P)), found(3, mariadb.replicaObs(3, P, { source: 2 }))], primary: id(1), findings: [] },
  { name: 'a lone server is its own primary', instances: [found(1, mariadb.primaryObs(1, P))], primary: id(1), findings: [] },
  { name: 'a read_only primary that replicas follow: the only root', instances: [found(1, mariadb.primaryObs(1, P, { readOnly: true })), found(2, mariadb.replicaObs(2, P))], primary: id(1), findings: [] },
  {
    name: 'a former primary replicating from nobody beside the writable one: the writable source wins, the other is named',
    instances: [found(1, mariadb.primaryObs(1, P)), found(2, mariadb.replicaObs(2, P)), found(3, mariadb.serverObs(3, P, { readOnly: true }))],
    primary: id(1),
    findings: [/2 instances replicate from nobody: 127\.0\.0\.1:3301, 127\.0\.0\.1:3303/],
  },
  {
    name: 'two writable sources (two topologies, or split brain): no primary, refused',
    instances: [found(1, mariadb.primaryObs(1, P)), found(2, mariadb.replicaObs(2, P)), found(3, mariadb.primaryObs(3, P)), found(4, mariadb.replicaObs(4, P, { source: 3 }))],
    primary: undefined,
    findings: [/2 writable instances replicate from nobody and are replicated from/, /2 instances replicate from nobody/],
  },
  { name: 'the source is unreachable: no primary', instances: [found(2, mariadb.replicaObs(2, P)), dead(1)], primary: undefined, findings: [/no primary found/] },
  { name: 'nothing reachable', instances: [dead(1)], primary: undefined, findings: [/no primary found/] },
];
for (const c of primaryCases) {
  test(`pickPrimary: ${c.name}`, () => {
    const r = pickPrimary(c.instances);
    assert.equal(r.primary, c.primary);
    assert.equal(r.findings.length, c.findings.length, r.findings.map((f) => f.message).join(' | '));
    c.findings.forEach((re, i) => assert.match(r.findings[i]!.message, re));
    if (!c.primary) assert.equal(r.findings[0]!.severity, 'critical');
  });
}

test('registered replicas: SHOW SLAVE HOSTS (MariaDB) and SHOW REPLICAS (MySQL 8.4, where SHOW SLAVE HOSTS is gone)', () => {
  const maria = new MariadbFlavor();
  assert.equal(maria.registeredReplicasQuery, 'SHOW SLAVE HOSTS');
  assert.deepEqual(maria.parseRegisteredReplicas([{ Server_id: 3, Host: '10.0.0.3', Port: 3306, Master_id: 1 }, { Server_id: '4', Host: '', Port: '3307', Master_id: '1' }]), [
    { serverId: 3, host: '10.0.0.3', port: 3306 },
    { serverId: 4, host: '', port: 3307 },
  ]);
  const my = new MysqlFlavor({ major: 8, minor: 4, patch: 5 });
  assert.equal(my.registeredReplicasQuery, 'SHOW REPLICAS');
  assert.deepEqual(my.parseRegisteredReplicas([{ Server_Id: 7, Host: 'db7', Port: 3306, Source_Id: 1, Replica_UUID: 'x' }]), [{ serverId: 7, host: 'db7', port: 3306 }]);
});

const c3 = cluster(3);

test('analysis: a replica attached outside Regent is UnmanagedReplica, with the command that adds it or the report_host fix', () => {
  const obs = [mariadb.primaryObs(1, P), mariadb.replicaObs(2, P), mariadb.replicaObs(3, P)];
  const reachable = analyzeCluster(view(c3, obs, { unmanagedReplicas: [{ source: id(1), address: '127.0.0.1:3309', serverId: 9, reachable: true }] })).problems;
  assert.deepEqual(reachable.map((p) => [p.code, p.instance]), [['UnmanagedReplica', '127.0.0.1:3309']]);
  const p = reachable[0]!;
  assert.ok(p.code === 'UnmanagedReplica');
  assert.deepEqual(p.data, { source: id(1), serverId: 9, reachable: true, error: undefined });
  assert.match(p.evidence.join('\n'), /regent cluster add-instance c 127\.0\.0\.1:3309/);
  const natted = analyzeCluster(view(c3, obs, { unmanagedReplicas: [{ source: id(1), address: '10.9.9.9:3306', serverId: 9, reachable: false, error: 'timed out' }] })).problems[0]!;
  assert.match(natted.evidence.join('\n'), /not reachable by Regent \(timed out\).*report_host/);
  // In maintenance: observed, not reported.
  assert.deepEqual(analyzeCluster(view(c3, obs, { unmanagedReplicas: [{ source: id(1), address: '127.0.0.1:3309', serverId: 9, reachable: true }], decision: decided({ primary: id(1), maintenance: ['127.0.0.1:3309'] }) })).problems, []);
});

function scoutWith(rows: Record<string, Record<string, unknown>[]>, opts: { known?: (a: string, s: number) => boolean; busy?: boolean } = {}) {
  const flavor: Flavor = new MariadbFlavor();
  const asked: string[] = [];
  let changes = 0;
  const scout = new ReplicaScout(
    c3,
    {
      reachable: () => Object.keys(rows).map((i) => ({ id: i, flavor })),
      query: async (i, sql) => {
        asked.push(`${i} ${sql}`);
        if (rows[i] === undefined) throw new Error('gone');
        return rows[i]!;
      },
      known: opts.known ?? ((a) => c3.instances.some((i) => i.id === a)),
      busy: () => opts.busy ?? false,
    },
    silentLogger,
    () => changes++,
  );
  return { scout, asked, changes: () => changes };
}

test('ReplicaScout: replicas the cluster has are not news; an unknown one is tried at its address once per scan', async () => {
  // Port 1 on loopback refuses at once: the "reachable" verdict without a server.
  const s = scoutWith({
    [id(1)]: [
      { Server_id: 2, Host: '127.0.0.1', Port: 3302 },
      { Server_id: 3, Host: '127.0.0.1', Port: 3303 },
      { Server_id: 9, Host: '', Port: 1 },
    ],
    [id(2)]: [{ Server_id: 9, Host: '127.0.0.1', Port: 1 }],
  });
  const r = await s.scout.scan();
  assert.deepEqual(r.map((a) => [a.source, a.address, a.serverId, a.reachable]), [[id(1), '127.0.0.1:1', 9, false]]);
  assert.match(r[0]!.error!, /refused|connect/i);
  assert.equal(s.changes(), 1);
  await s.scout.scan();
  assert.equal(s.changes(), 1, 'the same result again is not a change');
  assert.deepEqual(s.asked, [`${id(1)} SHOW SLAVE HOSTS`, `${id(2)} SHOW SLAVE HOSTS`, `${id(1)} SHOW SLAVE HOSTS`, `${id(2)} SHOW SLAVE HOSTS`]);
});

test('ReplicaScout: a server known by its server_id under another name is not unmanaged; nothing is asked while an action runs', async () => {
  const byId = scoutWith({ [id(1)]: [{ Server_id: 2, Host: 'db2.example', Port: 3306 }] }, { known: (a, sid) => sid === 2 || c3.instances.some((i) => i.id === a) });
  assert.deepEqual(await byId.scout.scan(), []);
  const busy = scoutWith({ [id(1)]: [{ Server_id: 9, Host: '127.0.0.1', Port: 1 }] }, { busy: true });
  assert.deepEqual(await busy.scout.scan(), []);
  assert.deepEqual(busy.asked, []);
});
