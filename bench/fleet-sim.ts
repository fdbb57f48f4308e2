import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SimControlClient } from '../src/sim/control-http.ts';
import { freePorts, ROOT } from '../test/helpers/env.ts';
import { ManagerProcess, type LogEvent } from '../test/helpers/manager.ts';
import { newestProfile, summarizeProfile } from './cpu-profile.ts';
import { firstPerCluster, journalTimings, type ClusterTiming } from './journal-timings.ts';
import { cpuSeconds, machineLoad } from './proc-stat.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SimRunOptions {
  /** Instances wanted; clusters of `size`, rounded to whole clusters. */
  instances: number;
  size: number;
  warmupSec: number;
  windowSec: number;
  crashes: number;
  /** Write the manager's V8 CPU profile (--cpu-prof) into this directory. */
  cpuProfDir?: string;
  /** Write the manager's log (JSON lines) to this file. */
  logFile?: string;
}

export interface SimRunResult {
  instances: number;
  clusters: number;
  windowSec: number;
  managerCpuSec: number;
  simCpuSec: number;
  probes: number;
  /** Probes the default interval asks for in the window (one per instance per 500 ms). */
  probesExpected: number;
  cpuPerProbeUs: number;
  probesPerCpuSecond: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Per simulated crash: ms from the crash to the manager's DeadPrimary, failover_started and failover_succeeded. */
  detectMs: number[];
  failoverStartMs: number[];
  failoverDoneMs: number[];
  /** Failovers of clusters whose primary the bench did not crash (a live primary judged dead: an overloaded manager). */
  unexpectedFailovers: string[];
  loadBefore: string;
  loadAfter: string;
  profileSummary?: string;
}

/** The simulator as a process of its own: its CPU is not the manager's, and it is driven over HTTP. */
async function startSimulator(clusters: number, size: number, dir: string, apiListen: string): Promise<{ child: ChildProcess; control: SimControlClient; config: string; pid: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/sim/main.ts'), '--clusters', String(clusters), '--size', String(size), '--dir', dir, '--api', apiListen], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ control: string; config: string; pid: number }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('simulator did not start within 60 s')), 60000);
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
    lines.once('line', (l) => {
      clearTimeout(t);
      resolve(JSON.parse(l) as { control: string; config: string; pid: number });
    });
  });
  return { child, control: new SimControlClient(ready.control), config: ready.config, pid: ready.pid };
}

async function scrapeLoopDelay(api: string): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`${api}/metrics`)).text();
  const get = (q: string) => Number(new RegExp(`^regent_event_loop_delay_seconds\\{quantile="${q.replace('.', '\\.')}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { p99: get('0.99') * 1000, max: get('1') * 1000 };
}

/**
 * One manager against `instances` simulated instances at the default probe interval: CPU per probe
 * over a window (manager CPU from /proc, probes counted by the simulator), event-loop delay from
 * /metrics, then simulated crashes one at a time: time from the crash to the manager's DeadPrimary.
 */
/** A simulator and a `regent run` watching it, every instance reachable; torn down after `fn`. */
async function withSimAndManager<T>(
  clusters: number,
  size: number,
  opts: { cpuProfDir?: string; logFile?: string },
  fn: (ctx: { sim: Awaited<ReturnType<typeof startSimulator>>; manager: ManagerProcess; api: string; dir: string; spawnedAt: number }) => Promise<T>,
): Promise<T> {
  const n = clusters * size;
  const dir = mkdtempSync(join(tmpdir(), 'regent-bench-fleet-'));
  const apiPort = await freePorts(1);
  const api = `http://127.0.0.1:${apiPort}`;
  const sim = await startSimulator(clusters, size, dir, `127.0.0.1:${apiPort}`);
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  const spawnedAt = performance.now();
  const manager = new ManagerProcess(sim.config, { env: { REGENT_LOG_LEVEL: 'info' }, nodeArgs });
  try {
    await manager.waitFor((e) => e.event === 'manager_started', 60000, 'manager start');
    // An overloaded manager may never see them all: measure anyway, and say so.
    const deadline = Date.now() + 120000;
    while (manager.count((e) => e.event === 'instance_reachable') < n && Date.now() < deadline) await sleep(200);
    const seen = manager.count((e) => e.event === 'instance_reachable');
    if (seen < n) process.stderr.write(`  WARNING: only ${seen} of ${n} instances became reachable within 120 s; measuring anyway\n`);
    return await fn({ sim, manager, api, dir, spawnedAt });
  } finally {
    await manager.stop();
    if (opts.logFile) writeFileSync(opts.logFile, `${manager.raw.join('\n')}\n`);
    sim.child.kill('SIGTERM');
    await new Promise((r) => (sim.child.exitCode !== null ? r(undefined) : sim.child.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runSimFleet(opts: SimRunOptions): Promise<SimRunResult> {
  const clusters = Math.max(1, Math.round(opts.instances / opts.size));
  const n = clusters * opts.size;
  return withSimAndManager(clusters, opts.size, opts, async ({ sim, manager, api, spawnedAt }) => {
    process.stderr.write(`  ${n} instances reachable; warming up ${opts.warmupSec} s\n`);
    await sleep(opts.warmupSec * 1000);

    const loadBefore = machineLoad();
    await scrapeLoopDelay(api); // starts the delay histogram afresh
    const m0 = cpuSeconds(manager.pid!);
    const s0 = cpuSeconds(sim.pid);
    const p0 = (await sim.control.stats()).probes;
    const t0 = performance.now();
    await sleep(opts.windowSec * 1000);
    const p1 = (await sim.control.stats()).probes;
    const elapsed = (performance.now() - t0) / 1000;
    const m1 = cpuSeconds(manager.pid!);
    const s1 = cpuSeconds(sim.pid);
    const delay = await scrapeLoopDelay(api);
    const loadAfter = machineLoad();
    const probes = p1 - p0;
    const cpu = m1 - m0;

    const detectMs: number[] = [];
    const failoverStartMs: number[] = [];
    const failoverDoneMs: number[] = [];
    const crashed = new Set<string>();
    const unexpected = () => [...new Set(manager.events.filter((e) => e.event === 'failover_started' && !crashed.has(String(e.cluster))).map((e) => String(e.cluster)))];
    for (let i = 0; i < opts.crashes; i++) {
      // Spread over the fleet, skipping clusters already failed over (anti-flapping would block them).
      let c = Math.floor(((i + 0.5) * clusters) / opts.crashes);
      const name = (k: number) => `sim${String(k + 1).padStart(4, '0')}`;
      const taken = new Set([...unexpected(), ...crashed]);
      for (let tries = 0; taken.has(name(c)) && tries < clusters; tries++) c = (c + 1) % clusters;
      const cluster = name(c);
      crashed.add(cluster);
      const since = manager.events.length;
      const of = (event: string, extra: (e: LogEvent) => boolean = () => true) => (e: LogEvent) => e.event === event && e.cluster === cluster && extra(e);
      const { at } = await sim.control.crash(`${cluster}/n1`);
      try {
        const dead = await manager.waitFor(of('problem_started', (e) => e.code === 'DeadPrimary' || e.code === 'DeadPrimaryAndSomeReplicas'), 15000, `DeadPrimary of ${cluster}`, since);
        const started = await manager.waitFor(of('failover_started'), 15000, `failover of ${cluster}`, since);
        const done = await manager.waitFor(of('failover_succeeded'), 15000, `failover of ${cluster} to succeed`, since);
        detectMs.push(Date.parse(dead.time) - at);
        failoverStartMs.push(Date.parse(started.time) - at);
        failoverDoneMs.push(Date.parse(done.time) - at);
        process.stderr.write(`  crash of ${cluster}/n1: DeadPrimary after ${detectMs.at(-1)} ms, failover started ${failoverStartMs.at(-1)} ms, done ${failoverDoneMs.at(-1)} ms\n`);
      } catch (e) {
        process.stderr.write(`  crash of ${cluster}/n1: ${(e as Error).message.split('\n')[0]}\n`);
      }
      await sleep(1000);
    }
    const unexpectedFailovers = unexpected();
    if (unexpectedFailovers.length > 0) process.stderr.write(`  UNEXPECTED failovers of live primaries: ${unexpectedFailovers.join(', ')}\n`);
    await manager.stop();
    const profile = opts.cpuProfDir ? newestProfile(opts.cpuProfDir) : undefined;
    return {
      instances: n,
      clusters,
      windowSec: elapsed,
      managerCpuSec: cpu,
      simCpuSec: s1 - s0,
      probes,
      probesExpected: (n * elapsed * 1000) / 500,
      cpuPerProbeUs: (cpu * 1e6) / probes,
      probesPerCpuSecond: probes / cpu,
      loopDelayP99Ms: delay.p99,
      loopDelayMaxMs: delay.max,
      detectMs,
      failoverStartMs,
      failoverDoneMs,
      unexpectedFailovers,
      loadBefore,
      loadAfter,
      // The profile starts with the process: keep only the measurement window.
      profileSummary: profile ? summarizeProfile(profile, { fromSec: (t0 - spawnedAt) / 1000, toSec: (t0 - spawnedAt) / 1000 + elapsed }) : undefined,
    };
  });
}

export interface BurstResult {
  clusters: number;
  timings: ClusterTiming[];
  /** Clusters whose failover failed. */
  failed: string[];
  /** Manager CPU from the crash until the last new primary was writable. */
  managerCpuSec: number;
  loopDelayMaxMs: number;
  load: string;
  /** The manager's CPU profile from the crash to the last writable primary (with --cpu-prof). */
  profileSummary?: string;
}

/**
 * Every simulated primary crashed in the same instant, one manager failing them all over: the
 * same measurement as (a) without real servers, so whatever serializes the failovers is in the
 * manager (the simulator answers every statement at once).
 */
export async function runSimBurst(clusters: number, size: number, opts: { logFile?: string; cpuProfDir?: string } = {}): Promise<BurstResult> {
  return withSimAndManager(clusters, size, opts, async ({ sim, manager, api, dir, spawnedAt }) => {
    await sleep(3000);
    const load = machineLoad();
    await scrapeLoopDelay(api);
    const cpu0 = cpuSeconds(manager.pid!);
    const samples: { at: number; cpu: number }[] = [];
    const since = manager.events.length;
    const crashedAt = performance.now();
    const { at } = await sim.control.crash(Array.from({ length: clusters }, (_, i) => `sim${String(i + 1).padStart(4, '0')}/n1`));
    const deadline = Date.now() + 60000;
    const finished = () => manager.events.slice(since).filter((e) => e.event === 'failover_succeeded' || e.event === 'failover_failed').length;
    while (finished() < clusters) {
      if (Date.now() > deadline) throw new Error(`only ${finished()} of ${clusters} simulated failovers finished within 60 s`);
      await sleep(10);
      samples.push({ at: Date.now() - at, cpu: cpuSeconds(manager.pid!) });
    }
    const delay = await scrapeLoopDelay(api);
    const timings = journalTimings(join(dir, 'state', 'journal.jsonl'), at).filter((t) => Number.isFinite(t.writable));
    const failed = manager.events.slice(since).filter((e) => e.event === 'failover_failed').map((e) => String(e.cluster));
    const lastWritable = Math.max(...firstPerCluster(timings).map((t) => t.writable));
    const upTo = samples.find((x) => x.at >= lastWritable) ?? samples[samples.length - 1]!;
    let profileSummary: string | undefined;
    if (opts.cpuProfDir) {
      await manager.stop();
      const profile = newestProfile(opts.cpuProfDir);
      const from = (crashedAt - spawnedAt) / 1000;
      if (profile) profileSummary = summarizeProfile(profile, { fromSec: from, toSec: from + lastWritable / 1000 });
    }
    return { clusters, timings, failed, managerCpuSec: upTo.cpu - cpu0, loopDelayMaxMs: delay.max, load, profileSummary };
  });
}
