import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { Sandbox } from '../src/sandbox/sandbox.ts';
import { eventually, freePorts, runCli, startSandbox, tempDir } from '../test/helpers/env.ts';
import { ManagerProcess } from '../test/helpers/manager.ts';
import { EtcdCluster } from '../test/helpers/etcd.ts';
import { Etcd3 } from 'etcd3';
import type { JournalEntry } from '../src/coordination/coordinator.ts';
import { firstPerCluster, journalTimings, timingsOf, type ClusterTiming } from './journal-timings.ts';
import { cpuSeconds, machineLoad } from './proc-stat.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RealRound {
  clusters: number;
  /** Managers sharing the clusters (1: a local state directory; more: a 3-member etcd). */
  managers: number;
  /** Succeeded failovers (a failed one has no writable time). */
  timings: ClusterTiming[];
  /** Clusters whose failover failed. */
  failed: string[];
  /** CPU seconds used from the kill until the last new primary was writable: the manager, and every mariadbd together. */
  managerCpuSec: number;
  serversCpuSec: number;
  /** Event-loop delay of the manager during the round (from /metrics). */
  loopDelayMaxMs: number;
  loadBefore: string;
  loadAfter: string;
}

type ClusterJson = { name: string; health: string; primary?: string; instances: { id: string; reachable: boolean }[] };

/**
 * `count` real three-node sandboxes under one `regent run` (or, with `managers` > 1, that many
 * managers on a 3-member etcd, each leading its share of the clusters); each round kills every
 * primary with SIGKILL in one loop and reads, from Regent's journal, when each cluster's failover
 * started, when its new primary became writable and when the plan ended; optionally a client polls
 * every replica's read_only. Between rounds the killed servers restart and Regent rejoins them
 * (block period 0 so the next round may fail over again).
 */
export async function runRealFleet(count: number, opts: { rounds: number; pollMs: number; logFile?: string; managers?: number }): Promise<RealRound[]> {
  const dir = tempDir('regent-bench-fleet-real-');
  const sandboxes: { sandbox: Sandbox; cleanup: () => Promise<void> }[] = [];
  const managerCount = opts.managers ?? 1;
  const managers: ManagerProcess[] = [];
  const configFiles: string[] = [];
  let etcd: EtcdCluster | undefined;
  try {
    process.stderr.write(`  creating ${count} three-node sandboxes${managerCount > 1 ? `, a 3-member etcd and ${managerCount} managers` : ''}\n`);
    for (let i = 0; i < count; i += 3) {
      // Settled, not all: a batch with one failure must not leak the servers of the others.
      const batch = await Promise.allSettled(Array.from({ length: Math.min(3, count - i) }, () => startSandbox({ nodes: 3 })));
      for (const b of batch) if (b.status === 'fulfilled') sandboxes.push(b.value);
      const failed = batch.find((b) => b.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    if (managerCount > 1) etcd = await EtcdCluster.start(3);
    const apiBase = await freePorts(managerCount);
    const apis = Array.from({ length: managerCount }, (_, k) => `http://127.0.0.1:${apiBase + k}`);
    const name = (i: number) => `c${String(i + 1).padStart(2, '0')}`;
    const clusters = sandboxes.map(({ sandbox: sb }, i) => {
      const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { clusters: Record<string, unknown>[] };
      const secret = (f: string) => ({ file: join(sb.dir, 'secrets', f) });
      return {
        ...doc.clusters[0],
        name: name(i),
        credentials: {
          manager: { user: 'regent', password: secret('manager.pw') },
          replication: { user: 'repl', password: secret('replication.pw') },
          clone: { user: 'admin', password: secret('admin.pw') },
        },
        // Later rounds fail the same clusters over again.
        failover: { blockPeriodSeconds: 0 },
        // One data plane per configuration file: with several managers, one set of endpoints.
        ...(managerCount > 1 ? { router: undefined } : {}),
      };
    });
    for (let k = 0; k < managerCount; k++) {
      const configFile = join(dir.path, `regent-m${k}.yaml`);
      const coordination = etcd ? { backend: 'etcd', endpoints: etcd.endpoints, prefix: '/regent', leaseTtlSeconds: 3 } : undefined;
      writeFileSync(configFile, toYaml({ manager: { stateDir: `state-m${k}`, api: { listen: `127.0.0.1:${apiBase + k}` }, ...(coordination ? { coordination } : {}) }, clusters }));
      configFiles.push(configFile);
      managers.push(new ManagerProcess(configFile, { env: { REGENT_LOG_LEVEL: 'info' } }));
    }
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 60000, 'manager start')));
    const state = async () => ((await (await fetch(`${apis[0]}/api/v1/clusters`)).json()) as { clusters: ClusterJson[] }).clusters;
    const spread = async () => {
      if (!etcd) return true;
      const leaders = await etcdPrefix(etcd, '/regent/_leaders/');
      const per = new Map<string, number>();
      for (const v of leaders.values()) per.set(v, (per.get(v) ?? 0) + 1);
      // Balanced as the managers see it: nobody above its share (ceil(clusters / managers)).
      return leaders.size === count && per.size === managerCount && Math.max(...per.values()) <= Math.ceil(count / managerCount);
    };
    const healthy = () =>
      eventually(async () => (await state()).every((c) => c.health === 'healthy' && c.primary && c.instances.every((i) => i.reachable)) && (await spread()), 90000, 'every cluster healthy (and led, evenly spread)').catch(async (e: Error) => {
        const unwell = (await state().catch(() => [])).filter((c) => c.health !== 'healthy').map((c) => `${c.name} ${c.health}`);
        const leaders = etcd ? [...(await etcdPrefix(etcd, '/regent/_leaders/')).entries()].map(([k, v]) => `${k.slice(k.lastIndexOf('/') + 1)}=${v}`) : [];
        throw new Error(`${e.message}: not healthy: ${unwell.join(', ') || 'none'}${etcd ? `; leaders: ${leaders.join(' ')}` : ''}`);
      });
    await healthy();
    await sleep(2000);

    const rounds: RealRound[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const before = await state();
      const nodeOf = (i: number, id: string) => sandboxes[i]!.sandbox.node(id.split(':')[1]!);
      const primaries = before.map((c, i) => nodeOf(i, c.primary!));
      const pids = primaries.map((n, i) => sandboxes[i]!.sandbox.pid(n)!);
      const pollers = opts.pollMs > 0 ? await Promise.all(before.map((c, i) => pollWritable(sandboxes[i]!.sandbox, c.instances.map((x) => x.id).filter((id) => id !== c.primary), opts.pollMs))) : [];
      const loadBefore = machineLoad();
      const serverPids = () => sandboxes.flatMap(({ sandbox: sb }) => sb.nodes.map((n) => sb.pid(n)).filter((p): p is number => p !== undefined));
      const cpuNow = (list: number[]) => list.reduce((sum, p) => sum + cpuOrZero(p), 0);
      const managersCpu = () => cpuNow(managers.map((m) => m.pid!));
      const survivors = serverPids().filter((p) => !pids.includes(p));
      await Promise.all(apis.map(scrapeLoopDelay));
      const since = managers.map((m) => m.events.length);
      // CPU of the managers and of the surviving servers, sampled while the failovers run.
      const samples: { at: number; manager: number; servers: number }[] = [{ at: 0, manager: managersCpu(), servers: cpuNow(survivors) }];
      const t0 = Date.now();
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      for (const p of pollers) p.start(t0);
      const deadline = Date.now() + 60000;
      const ended = () => managers.flatMap((m, k) => m.events.slice(since[k]).filter((e) => e.event === 'failover_succeeded' || e.event === 'failover_failed'));
      while (ended().length < count) {
        if (Date.now() > deadline) throw new Error(`only ${ended().length} of ${count} failovers finished within 60 s`);
        await sleep(20);
        samples.push({ at: Date.now() - t0, manager: managersCpu(), servers: cpuNow(survivors) });
      }
      const loopDelay = Math.max(...(await Promise.all(apis.map(scrapeLoopDelay))).map((d) => d.max));
      const seen = await Promise.all(pollers.map((p) => p.stop()));
      const loadAfter = machineLoad();
      const failed = ended().filter((e) => e.event === 'failover_failed');
      for (const e of failed) process.stderr.write(`  FAILED failover of ${String(e.cluster)}: ${String(e['reason']).slice(0, 300)}\n`);
      const journal = etcd ? timingsOf(await etcdJournal(etcd), t0) : journalTimings(join(dir.path, 'state-m0', 'journal.jsonl'), t0);
      const timings = journal.filter((t) => Number.isFinite(t.writable));
      for (const t of timings) t.clientSaw = seen[clusters.findIndex((c) => c.name === t.cluster)];
      const lastWritable = Math.max(...firstPerCluster(timings).map((t) => t.writable));
      const upTo = samples.find((x) => x.at >= lastWritable) ?? samples[samples.length - 1]!;
      rounds.push({
        clusters: count,
        managers: managerCount,
        timings,
        failed: failed.map((e) => String(e.cluster)),
        managerCpuSec: upTo.manager - samples[0]!.manager,
        serversCpuSec: upTo.servers - samples[0]!.servers,
        loopDelayMaxMs: loopDelay,
        loadBefore,
        loadAfter,
      });
      const rr = rounds[rounds.length - 1]!;
      process.stderr.write(
        `  round ${r + 1}/${opts.rounds}: ${timings.length} failovers (${timings.length - firstPerCluster(timings).length} repeated), first writable ${Math.min(...timings.map((t) => t.writable))} ms, last ${lastWritable} ms after the kill; until then the manager${managerCount > 1 ? 's' : ''} used ${(rr.managerCpuSec * 1000).toFixed(0)} ms of CPU, the servers ${(rr.serversCpuSec * 1000).toFixed(0)} ms; loop delay max ${rr.loopDelayMaxMs.toFixed(0)} ms (${loadBefore})\n`,
      );
      if (r + 1 < opts.rounds) {
        // The killed servers come back; Regent rejoins them as replicas of the new primaries.
        await Promise.all(primaries.map((n, i) => sandboxes[i]!.sandbox.start(n)));
        await healthy();
        await sleep(2000);
      }
    }
    return rounds;
  } finally {
    await Promise.all(managers.map((m) => m.stop()));
    // Each manager's data plane outlives it by design, and its state directory is not in a sandbox.
    await Promise.all(configFiles.map((f) => runCli(['dataplane', 'stop', '--config', f]).catch(() => undefined)));
    if (opts.logFile) managers.forEach((m, k) => writeFileSync(managerCount > 1 ? `${opts.logFile}.m${k}` : opts.logFile!, `${m.raw.join('\n')}\n`));
    const journal = join(dir.path, 'state-m0', 'journal.jsonl');
    if (opts.logFile && existsSync(journal)) copyFileSync(journal, `${opts.logFile}.journal.jsonl`);
    await etcd?.destroy();
    await Promise.all(sandboxes.map((s) => s.cleanup().catch(() => undefined)));
    dir.remove();
  }
}

/** Keys under `prefix` and their values. */
async function etcdPrefix(etcd: EtcdCluster, prefix: string): Promise<Map<string, string>> {
  const c = new Etcd3({ hosts: etcd.endpoints });
  try {
    return new Map(Object.entries(await c.getAll().prefix(prefix).strings()));
  } finally {
    c.close();
  }
}

/** Every journal entry in etcd, in the order written (keys end in time-sequence-writer). */
async function etcdJournal(etcd: EtcdCluster): Promise<JournalEntry[]> {
  const all = [...(await etcdPrefix(etcd, '/regent/_journal/')).entries()];
  const order = (k: string) => k.slice(k.lastIndexOf('/') + 1);
  return all.sort(([a], [b]) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0)).map(([, v]) => JSON.parse(v) as JournalEntry);
}

/** A process that exited in between counts as 0 from then on. */
function cpuOrZero(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return 0;
  }
}

async function scrapeLoopDelay(api: string): Promise<{ max: number }> {
  const text = await (await fetch(`${api}/metrics`)).text();
  return { max: Number(/^regent_event_loop_delay_seconds\{quantile="1"\} (\S+)$/m.exec(text)?.[1] ?? NaN) * 1000 };
}

/**
 * A client per cluster that, once started, asks every replica for @@global.read_only every
 * `everyMs` over persistent connections and notes when one answers 0 (ms after the kill).
 */
async function pollWritable(sb: Sandbox, ids: string[], everyMs: number): Promise<{ start: (t0: number) => void; stop: () => Promise<number | undefined> }> {
  const app = sb.appAccount();
  // A replica that cannot be reached now (a loaded machine) is left out; the journal still times it.
  const opened = await Promise.all(
    ids.map((id) => mysql.createConnection({ host: '127.0.0.1', port: Number(id.split(':')[1]), user: app.user, password: app.password, connectTimeout: 5000 }).catch(() => undefined)),
  );
  const conns = opened.filter((c): c is mysql.Connection => c !== undefined);
  let running = true;
  let seenAt: number | undefined;
  let loop: Promise<void> = Promise.resolve();
  return {
    start(t0) {
      loop = (async () => {
        while (running && seenAt === undefined) {
          await Promise.all(
            conns.map(async (c) => {
              try {
                const [rows] = (await c.query('SELECT @@global.read_only AS ro')) as unknown as [{ ro: number }[]];
                if (Number(rows[0]?.ro) === 0 && seenAt === undefined) seenAt = Date.now() - t0;
              } catch {
                // a replica being re-pointed may drop the connection; the other one still answers
              }
            }),
          );
          await sleep(everyMs);
        }
      })();
    },
    async stop() {
      running = false;
      await loop;
      await Promise.all(conns.map((c) => c.end().catch(() => c.destroy())));
      return seenAt;
    },
  };
}
