import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { runRealFleet, type RealRound } from './fleet-real.ts';
import { runSimBurst, runSimFleet, type BurstResult, type SimRunResult } from './fleet-sim.ts';
import { firstPerCluster, type ClusterTiming } from './journal-timings.ts';
import { machineLoad } from './proc-stat.ts';
import { summary } from './stats.ts';

const arg = (args: string[], name: string, fallback: string): string => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const list = (s: string): number[] => (s ? s.split(',').map(Number) : []);

/**
 * `npm run bench -- fleet`: one manager watching many clusters.
 *
 *   --real=10,30          (a) that many real three-node sandboxes, all primaries kill -9'd at once
 *   --managers=1,3        (a) with one manager, then with that many managers on a 3-member etcd
 *   --rounds=3            rounds of (a) per size (killed servers restart and rejoin in between)
 *   --poll-ms=50          a client polls each replica's read_only this often (0: journal only)
 *   --sim=250,1000,2000   (b) simulated instances (clusters of --size=3), default probe interval
 *   --window=20           seconds of the CPU window in (b), after --warmup=5
 *   --crashes=5           simulated primary crashes in (b), one at a time
 *   --repeat=3            runs of (b) per size (a fresh simulator and manager each); tables give medians
 *   --sim-burst=10,30     (c) that many simulated clusters, every primary crashed in one instant
 *   --burst-rounds=3      runs of (c) per size
 *   --cpu-prof=DIR        write the manager's V8 CPU profile of each (b) run into DIR and summarize it
 *   --logs=DIR            write the manager's log of each (b) run into DIR
 *
 * Pass --real=, --sim= or --sim-burst= (empty) to skip a part.
 */
export async function benchFleet(args: string[]): Promise<void> {
  const real = list(arg(args, 'real', '10,30'));
  const sims = list(arg(args, 'sim', '250,1000,2000'));
  const bursts = list(arg(args, 'sim-burst', '10,30'));
  const burstRounds = Number(arg(args, 'burst-rounds', '3'));
  const rounds = Number(arg(args, 'rounds', '3'));
  const managerCounts = list(arg(args, 'managers', '1,3'));
  const pollMs = Number(arg(args, 'poll-ms', '50'));
  const size = Number(arg(args, 'size', '3'));
  const windowSec = Number(arg(args, 'window', '20'));
  const warmupSec = Number(arg(args, 'warmup', '5'));
  const crashes = Number(arg(args, 'crashes', '5'));
  const repeat = Number(arg(args, 'repeat', '3'));
  const profArg = arg(args, 'cpu-prof', '');
  const logsArg = arg(args, 'logs', '');
  if (logsArg) mkdirSync(logsArg, { recursive: true });
  const out: string[] = [`Machine before: ${machineLoad()}.`, ''];

  if (sims.length > 0) {
    const results: SimRunResult[][] = [];
    for (const n of sims) {
      const runs: SimRunResult[] = [];
      for (let i = 0; i < repeat; i++) {
        process.stderr.write(`(b) simulator, ${n} instances, run ${i + 1}/${repeat}\n`);
        const cpuProfDir = profArg ? resolve(profArg, `sim-${n}-${i + 1}`) : undefined;
        if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
        const logFile = logsArg ? resolve(logsArg, `sim-${n}-${i + 1}.log`) : undefined;
        const r = await runSimFleet({ instances: n, size, warmupSec, windowSec, crashes, cpuProfDir, logFile });
        runs.push(r);
        process.stderr.write(
          `  ${r.probes} probes in ${r.windowSec.toFixed(1)} s on ${r.managerCpuSec.toFixed(2)} CPU-s: ${r.cpuPerProbeUs.toFixed(0)} µs per probe, ${r.probesPerCpuSecond.toFixed(0)} probes per CPU-second, loop delay p99 ${r.loopDelayP99Ms.toFixed(1)} ms (${r.loadBefore} -> ${r.loadAfter})\n`,
        );
        if (r.profileSummary) process.stderr.write(`${r.profileSummary}\n`);
      }
      results.push(runs);
    }
    const med = (runs: SimRunResult[], f: (r: SimRunResult) => number) => summary(runs.map(f));
    const range = (runs: SimRunResult[], f: (r: SimRunResult) => number, digits = 0) => {
      const s = med(runs, f);
      return runs.length > 1 ? `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]` : s.median.toFixed(digits);
    };
    const ms = (v: number[]) => {
      const s = summary(v);
      return `${s.median.toFixed(0)} ms (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;
    };
    const loadOf = (l: string) => l.replace('load average ', '').replace(/ \(.*/, '');
    out.push(
      `(b) one \`regent run\` against the probe-load simulator, clusters of ${size}, probeIntervalMs 500 (default); CPU over a ${windowSec} s window after ${warmupSec} s of warm-up, median [range] over ${repeat} run(s); crash detection over ${crashes} crash(es) per run, median (min-max) of all:`,
      '',
      '| instances | probes/s done (asked) | manager CPU, % of a core | CPU per probe | probes per CPU-second | event-loop delay p99 / max | crash → DeadPrimary | crash → failover done | failovers of live primaries | simulator CPU | 1-min load during the runs |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...results.map((runs) => {
        const r0 = runs[0]!;
        return `| ${r0.instances} | ${range(runs, (r) => r.probes / r.windowSec)} (${(r0.probesExpected / r0.windowSec).toFixed(0)}) | ${range(runs, (r) => (100 * r.managerCpuSec) / r.windowSec)} | ${range(runs, (r) => r.cpuPerProbeUs)} µs | **${range(runs, (r) => r.probesPerCpuSecond)}** | ${range(runs, (r) => r.loopDelayP99Ms, 1)} / ${range(runs, (r) => r.loopDelayMaxMs)} ms | **${ms(runs.flatMap((r) => r.detectMs))}** | ${ms(runs.flatMap((r) => r.failoverDoneMs))} | ${runs.map((r) => r.unexpectedFailovers.length).join(', ')} | ${range(runs, (r) => (100 * r.simCpuSec) / r.windowSec)} % | ${runs.map((r) => `${loadOf(r.loadBefore)}→${loadOf(r.loadAfter)}`).join(', ')} |`;
      }),
      '',
    );
  }

  if (real.length > 0) {
    const all: RealRound[][] = [];
    for (const managers of managerCounts)
      for (const count of real) {
        process.stderr.write(`(a) ${count} real three-node clusters, ${managers} manager(s), all primaries killed at once, ${rounds} round(s)\n`);
        all.push(await runRealFleet(count, { rounds, pollMs, managers, logFile: logsArg ? resolve(logsArg, `real-${count}-m${managers}.log`) : undefined }));
      }
    out.push(
      `(a) one \`regent run\` (managers 1) or three on a 3-member etcd sharing the clusters (managers 3), N real three-node sandboxes, every primary kill -9'd in one loop; times after the kill from Regent's journal (writable = the promote step returned, read_only=OFF on the new primary)${pollMs > 0 ? `; "client" = a client polling every replica's read_only every ${pollMs} ms` : ''}. Per round, then the median over ${rounds} round(s):`,
      '',
      '| clusters | managers | round | failed | repeated failovers | failovers started (first-last) | first writable | median writable | last writable | last (client) | last plan ended | manager CPU until last writable | servers CPU until then | loop delay max | 1-min load |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const rs of all)
      for (const [i, r] of rs.entries()) {
        const first = firstPerCluster(r.timings);
        const w = first.map((t) => t.writable);
        const st = first.map((t) => t.started);
        const client = first.map((t) => t.clientSaw).filter((x): x is number => x !== undefined);
        out.push(
          `| ${r.clusters} | ${r.managers} | ${i + 1} | ${r.failed.length ? r.failed.join(' ') : '0'} | ${r.timings.length - first.length} | ${Math.min(...st)}-${Math.max(...st)} ms | ${Math.min(...w)} ms | ${summary(w).median.toFixed(0)} ms | **${Math.max(...w)} ms** | ${client.length ? `${Math.max(...client)} ms` : '-'} | ${Math.max(...first.map((t) => t.ended))} ms | ${(r.managerCpuSec * 1000).toFixed(0)} ms | ${(r.serversCpuSec * 1000).toFixed(0)} ms | ${r.loopDelayMaxMs.toFixed(0)} ms | ${r.loadBefore.replace('load average ', '').replace(/ \(.*/, '')} |`,
        );
      }
    out.push('');
    for (const rs of all) {
      const last = rs.map((r) => Math.max(...firstPerCluster(r.timings).map((t) => t.writable)));
      const first = rs.map((r) => Math.min(...firstPerCluster(r.timings).map((t) => t.writable)));
      out.push(`${rs[0]!.clusters} clusters, ${rs[0]!.managers} manager(s): last writable median ${summary(last).median.toFixed(0)} ms over ${rs.length} round(s) (${last.join(', ')}), first ${summary(first).median.toFixed(0)} ms (${first.join(', ')}).`);
    }
    const lastRound = all.at(-1)?.at(-1);
    if (lastRound) out.push('', 'Step timeline of the last round of the largest size (ms after the kill, start-end):', '', ...timeline(lastRound.timings));
    out.push('');
  }
  if (bursts.length > 0) {
    const all: BurstResult[][] = [];
    for (const count of bursts) {
      const runs: BurstResult[] = [];
      for (let i = 0; i < burstRounds; i++) {
        process.stderr.write(`(c) ${count} simulated clusters, every primary crashed in one instant, run ${i + 1}/${burstRounds}\n`);
        const logFile = logsArg ? resolve(logsArg, `burst-${count}-${i + 1}.log`) : undefined;
        const cpuProfDir = profArg ? resolve(profArg, `burst-${count}-${i + 1}`) : undefined;
        if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
        const r = await runSimBurst(count, size, { logFile, cpuProfDir });
        const w = r.timings.map((t) => t.writable);
        process.stderr.write(`  first writable ${Math.min(...w)} ms, last ${Math.max(...w)} ms; manager CPU until then ${(r.managerCpuSec * 1000).toFixed(0)} ms; loop delay max ${r.loopDelayMaxMs.toFixed(0)} ms (${r.load})\n`);
        if (r.profileSummary) process.stderr.write(`${r.profileSummary}\n`);
        runs.push(r);
      }
      all.push(runs);
    }
    out.push(
      `(c) one \`regent run\` against the simulator, N clusters of ${size}, every primary crashed in the same instant (no server CPU involved: the simulator answers at once); times after the crash from Regent's journal:`,
      '',
      '| clusters | run | failed | repeated failovers | failovers started (first-last) | first writable | median writable | last writable | last plan ended | manager CPU until last writable | loop delay max | 1-min load |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const runs of all)
      for (const [i, r] of runs.entries()) {
        const first = firstPerCluster(r.timings);
        const w = first.map((t) => t.writable);
        const st = first.map((t) => t.started);
        out.push(
          `| ${r.clusters} | ${i + 1} | ${r.failed.length ? r.failed.join(' ') : '0'} | ${r.timings.length - first.length} | ${Math.min(...st)}-${Math.max(...st)} ms | ${Math.min(...w)} ms | ${summary(w).median.toFixed(0)} ms | **${Math.max(...w)} ms** | ${Math.max(...first.map((t) => t.ended))} ms | ${(r.managerCpuSec * 1000).toFixed(0)} ms | ${r.loopDelayMaxMs.toFixed(0)} ms | ${r.load.replace('load average ', '').replace(/ \(.*/, '')} |`,
        );
      }
    const last = all.at(-1)?.at(-1);
    if (last) out.push('', 'Step timeline of the last run of the largest size (ms after the crash, start-end):', '', ...timeline(last.timings));
    out.push('');
  }
  out.push(`Machine after: ${machineLoad()}.`, '');
  process.stdout.write(out.join('\n'));
}

/** One Markdown row per failover: when each step started and ended. */
function timeline(timings: ClusterTiming[]): string[] {
  const stepNames = [...new Set(timings.flatMap((t) => t.steps.map((s) => s.step)))];
  const rows = [`| cluster | started | ${stepNames.join(' | ')} | ended |`, `|---|---|${stepNames.map(() => '---|').join('')}---|`];
  for (const t of timings) {
    const cells = stepNames.map((n) => {
      const s = t.steps.find((x) => x.step === n);
      return s ? `${s.start}-${s.end}` : '';
    });
    rows.push(`| ${t.cluster} | ${t.started} | ${cells.join(' | ')} | ${t.ended} |`);
  }
  return rows;
}
