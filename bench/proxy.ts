import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { autoRouterProcesses } from '../src/config/load.ts';
import { PORT } from '../src/sandbox/sandbox.ts';
import { freePorts, runCli, startSandbox } from '../test/helpers/env.ts';
import { ManagerProcess } from '../test/helpers/manager.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  qps: number;
  p50: number;
  p99: number;
  /** CPU the proxy's processes spent per query (µs), from /proc ticks; undefined for the direct path. */
  cpuUsPerQuery?: number;
  /** SQL endpoint only: share of the statements it sent to replicas. */
  replicaShare?: number;
}

interface Path {
  key: 'direct' | 'writer' | 'pipes' | 'haproxy' | 'sql';
  name: string;
  port: number;
  /** The processes doing this path's proxying (their descendants count too). */
  pids: () => number[];
}

interface Workload {
  test: 'oltp_point_select' | 'oltp_read_write';
  threads: number;
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

/** utime + stime of a process and all its descendants, in clock ticks (10 ms), from /proc. */
export function cpuTicks(roots: number[]): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const text = readFileSync(`/proc/${e}/stat`, 'utf8');
      // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(e), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  const seen = new Set<number>();
  const walk = (pid: number) => {
    if (seen.has(pid) || !stats.has(pid)) return;
    seen.add(pid);
    for (const [child, s] of stats) if (s.ppid === pid) walk(child);
  };
  for (const r of roots) walk(r);
  let total = 0;
  for (const pid of seen) total += stats.get(pid)!.ticks;
  return total;
}

const TICK_US = 1e6 / 100; // CLK_TCK is 100 on Linux

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/**
 * sysbench against the primary directly, through Regent's L4 writer endpoint (the sandbox's
 * default `manager.routerProcesses: auto`, which pipes on the manager's event loop on two cores;
 * with `--pipes` also a second manager with two pipe processes), through HAProxy configured by
 * `regent haproxy-config`, and through Regent's SQL endpoint (reads to the replicas), all on one
 * sandbox. Workloads: oltp_point_select at 1, 4 and 32 connections and oltp_read_write at 16
 * (or `--workloads=point_select:8,read_write:4`, or `--threads=N` for point selects at N only).
 *
 * Two cores are shared by sysbench, mariadbd, the proxies and whatever else runs on the machine,
 * so single runs swing by ±15 %: every path and workload take turns for several rounds (each round
 * in a rotated order) and medians are reported. Latencies come from sysbench's histogram (ms); the
 * CPU a proxy spends per query from /proc ticks of its processes during each run (the manager's
 * own monitoring included, a few ms a second).
 */
export async function benchProxy(args: string[]): Promise<void> {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const seconds = Number(opt('seconds') ?? 5);
  const rounds = Number(opt('rounds') ?? 6);
  const tableSize = Number(opt('table-size') ?? 10000);
  const withPipes = args.includes('--pipes');
  const workloads: Workload[] = opt('threads')
    ? [{ test: 'oltp_point_select', threads: Number(opt('threads')) }]
    : (opt('workloads') ?? 'point_select:1,point_select:4,point_select:32,read_write:16').split(',').map((w) => {
        const [test, threads] = w.split(':');
        if ((test !== 'point_select' && test !== 'read_write') || !Number(threads)) throw new Error(`--workloads: "${w}" is not point_select:N or read_write:N`);
        return { test: `oltp_${test}` as Workload['test'], threads: Number(threads) };
      });
  if (spawnSync('sysbench', ['--version']).status !== 0) throw new Error('sysbench is not installed: apt-get install -y sysbench');
  if (spawnSync('haproxy', ['-v']).status !== 0) throw new Error('haproxy is not installed: apt-get install -y haproxy');
  const loadAtStart = readFileSync('/proc/loadavg', 'utf8').trim();
  const { sandbox: sb, cleanup } = await startSandbox({ nodes: 3 });
  let haproxy: ChildProcess | undefined;
  const managers: ManagerProcess[] = [];
  try {
    const hpPort = await freePorts(4);
    const [pipesWriter, pipesReader, pipesApi] = [hpPort + 1, hpPort + 2, hpPort + 3];
    const socket = join(sb.dir, 'haproxy.sock');
    const cfgPath = join(sb.dir, 'haproxy.cfg');
    type Doc = { manager: Record<string, unknown>; clusters: { router: Record<string, unknown> }[] };
    const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as Doc;
    doc.clusters[0]!.router['haproxySocket'] = socket;
    writeFileSync(sb.configFile, toYaml(doc));
    const configs = [sb.configFile];
    if (withPipes) {
      // A second manager on other ports whose router uses two pipe processes.
      const pipes = structuredClone(doc);
      pipes.manager['routerProcesses'] = 2;
      pipes.manager['stateDir'] = 'state-pipes';
      (pipes.manager['api'] as Record<string, unknown>)['listen'] = `127.0.0.1:${pipesApi}`;
      pipes.clusters[0]!.router = { writer: `127.0.0.1:${pipesWriter}`, reader: `127.0.0.1:${pipesReader}` };
      const pipesConfig = join(sb.dir, 'regent-pipes.yaml');
      writeFileSync(pipesConfig, toYaml(pipes));
      configs.push(pipesConfig);
    }
    const gen = await runCli(['haproxy-config', '--config', sb.configFile, '--writer-bind', `127.0.0.1:${hpPort}`, '--socket', socket, '--out', cfgPath]);
    if (gen.code !== 0) throw new Error(gen.stderr);
    haproxy = spawn('haproxy', ['-f', cfgPath, '-db'], { stdio: 'ignore' });
    for (const config of configs) managers.push(new ManagerProcess(config, { env: { REGENT_LOG_LEVEL: 'info' } }));
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 20000, 'manager start')));
    await sleep(2000);
    const app = sb.appAccount();
    const common = [`--mysql-host=127.0.0.1`, `--mysql-user=${app.user}`, `--mysql-password=${app.password}`, `--mysql-db=${app.database}`, '--tables=1', `--table-size=${tableSize}`];
    const prep = spawnSync('sysbench', ['oltp_point_select', ...common, `--mysql-port=${sb.node(1).port}`, 'prepare'], { encoding: 'utf8' });
    if (prep.status !== 0) throw new Error(`sysbench prepare failed: ${prep.stderr}`);
    // The replicas have the table before anything reads it from them.
    await sleep(2000);
    const manager = managers[0]!;
    const api = `http://127.0.0.1:${sb.node(1).port + PORT.api}`;
    const paths: Path[] = [
      { key: 'direct', name: 'direct to mariadbd', port: sb.node(1).port, pids: () => [] },
      { key: 'writer', name: `Regent L4 writer endpoint (\`routerProcesses: auto\` = ${autoRouterProcesses()} here)`, port: sb.node(1).port + PORT.writer, pids: () => [manager.pid!] },
      ...(withPipes ? [{ key: 'pipes' as const, name: 'Regent L4 writer endpoint (`routerProcesses: 2`)', port: pipesWriter, pids: () => [managers[1]!.pid!] }] : []),
      { key: 'haproxy', name: 'HAProxy 2.6 (tcp mode, writer)', port: hpPort, pids: () => [haproxy!.pid!] },
      { key: 'sql', name: 'Regent SQL endpoint (reads to replicas)', port: sb.node(1).port + PORT.sql, pids: () => [manager.pid!] },
    ];
    const key = (w: Workload) => `${w.test}@${w.threads}`;
    const samples = new Map<string, Sample[]>();
    let loadMin = Infinity;
    let loadMax = 0;
    for (let round = 0; round < rounds; round++) {
      for (const w of workloads) {
        for (let k = 0; k < paths.length; k++) {
          const path = paths[(k + round) % paths.length]!;
          process.stderr.write(`round ${round + 1}/${rounds}: ${w.test} ${w.threads} conn, ${seconds}s through ${path.key}... `);
          const before = path.key === 'sql' ? await sqlCounts(api) : undefined;
          const cpu0 = cpuTicks(path.pids());
          const out = spawnSync(
            'sysbench',
            [w.test, ...common, `--mysql-port=${path.port}`, `--threads=${w.threads}`, `--time=${seconds}`, '--histogram=on', '--report-interval=0', 'run'],
            { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
          );
          const cpu1 = cpuTicks(path.pids());
          if (out.status !== 0) throw new Error(`sysbench ${w.test} through ${path.name} failed: ${out.stderr || out.stdout}`);
          const load = loadAverage();
          loadMin = Math.min(loadMin, load);
          loadMax = Math.max(loadMax, load);
          const r = parseSysbench(out.stdout);
          const sample: Sample = { qps: r.qps, p50: r.p50, p99: r.p99 };
          if (path.key !== 'direct' && r.queries > 0) sample.cpuUsPerQuery = ((cpu1 - cpu0) * TICK_US) / r.queries;
          if (before) {
            const after = await sqlCounts(api);
            const replica = after.replica - before.replica;
            const primary = after.primary - before.primary;
            sample.replicaShare = replica + primary > 0 ? replica / (replica + primary) : 0;
          }
          process.stderr.write(`${r.qps.toFixed(0)} q/s, p50 ${r.p50} ms${sample.cpuUsPerQuery !== undefined ? `, ${sample.cpuUsPerQuery.toFixed(1)} µs CPU/query` : ''}\n`);
          const list = samples.get(`${key(w)}/${path.key}`) ?? [];
          list.push(sample);
          samples.set(`${key(w)}/${path.key}`, list);
        }
      }
    }
    const med = (w: Workload, p: Path['key']) => {
      const xs = samples.get(`${key(w)}/${p}`)!;
      const cpu = xs.map((x) => x.cpuUsPerQuery).filter((x): x is number => x !== undefined);
      const share = xs.map((x) => x.replicaShare).filter((x): x is number => x !== undefined);
      return {
        qps: median(xs.map((x) => x.qps)),
        p50: median(xs.map((x) => x.p50)),
        p99: median(xs.map((x) => x.p99)),
        range: [Math.min(...xs.map((x) => x.qps)), Math.max(...xs.map((x) => x.qps))],
        cpu: cpu.length > 0 ? median(cpu) : undefined,
        share: share.length > 0 ? median(share) : undefined,
      };
    };
    const lines: string[] = [
      `${rounds} rounds of ${seconds} s per path and workload, interleaved; medians (queries/s range over rounds in brackets).`,
      `Load average (1 min) at start ${loadAtStart.split(' ').slice(0, 3).join(' ')}; during the runs ${loadMin.toFixed(2)}-${loadMax.toFixed(2)} on ${availableCores()} cores.`,
      '',
    ];
    for (const w of workloads) {
      const hap = med(w, 'haproxy');
      const writer = med(w, 'writer');
      lines.push(`${w.test}, ${w.threads} connection${w.threads === 1 ? '' : 's'}:`, '', '| path | queries/s | p50 ms | p99 ms | vs HAProxy qps | p50 vs L4 writer | proxy CPU µs/query |', '|---|---|---|---|---|---|---|');
      for (const p of paths) {
        const r = med(w, p.key);
        const share = r.share !== undefined ? ` (${(100 * r.share).toFixed(0)} % of statements on replicas)` : '';
        lines.push(
          `| ${p.name}${share} | ${r.qps.toFixed(0)} [${r.range[0]!.toFixed(0)}-${r.range[1]!.toFixed(0)}] | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${(r.qps / hap.qps).toFixed(2)}x | ${sign(r.p50 - writer.p50)} ms | ${r.cpu !== undefined ? r.cpu.toFixed(1) : '—'} |`,
        );
      }
      lines.push('');
    }
    const at = (test: Workload['test'], threads: number) => workloads.find((w) => w.test === test && w.threads === threads);
    const w32 = at('oltp_point_select', 32);
    const w1 = at('oltp_point_select', 1);
    lines.push('Targets:');
    if (w32) {
      const ratio = med(w32, 'sql').qps / med(w32, 'haproxy').qps;
      lines.push(`- point selects at 32 connections, SQL endpoint vs HAProxy queries/s: ${ratio.toFixed(2)}x (target >= 0.8x): ${ratio >= 0.8 ? 'met' : 'NOT met'}`);
    }
    if (w1) {
      const d = med(w1, 'sql').p50 - med(w1, 'writer').p50;
      lines.push(`- point selects at 1 connection, SQL endpoint p50 vs L4 writer: ${sign(d)} ms (target <= +0.15 ms): ${d <= 0.15 ? 'met' : 'NOT met'}`);
    }
    for (const w of workloads) {
      const s = med(w, 'sql').cpu;
      const h = med(w, 'haproxy').cpu;
      if (s !== undefined && h !== undefined) lines.push(`- CPU per query, ${w.test} ${w.threads} conn: SQL endpoint ${s.toFixed(1)} µs, HAProxy ${h.toFixed(1)} µs, L4 writer ${med(w, 'writer').cpu?.toFixed(1) ?? '—'} µs`);
    }
    lines.push('');
    process.stdout.write(lines.join('\n'));
  } finally {
    await Promise.all(managers.map((m) => m.stop()));
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGTERM');
      await exited;
    }
    await cleanup();
  }
}

function sign(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
}

function availableCores(): number {
  return readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
}

/** The SQL endpoint's statements by route so far, from the manager's /metrics. */
async function sqlCounts(api: string): Promise<{ replica: number; primary: number }> {
  let text = '';
  for (let attempt = 1; ; attempt++) {
    try {
      text = await (await fetch(`${api}/metrics`)).text();
      break;
    } catch (e) {
      // A kept-alive connection the server closed meanwhile: once more on a new one.
      if (attempt >= 3) throw e;
    }
  }
  const out = { replica: 0, primary: 0 };
  for (const m of text.matchAll(/^regent_sql_statements_total\{[^}]*route="(replica|primary)"[^}]*\} (\S+)$/gm)) out[m[1] as 'replica' | 'primary'] += Number(m[2]);
  return out;
}

/** qps, total queries and p50/p99 from sysbench's summary and --histogram output. */
export function parseSysbench(text: string): { qps: number; queries: number; p50: number; p99: number } {
  const m = /queries:\s+(\d+)\s+\(([\d.]+) per sec\.\)/.exec(text);
  const qps = Number(m?.[2] ?? NaN);
  const queries = Number(m?.[1] ?? 0);
  const hist: { value: number; count: number }[] = [];
  for (const h of text.matchAll(/^\s*([\d.]+)\s+\|[*\s]*(\d+)\s*$/gm)) hist.push({ value: Number(h[1]), count: Number(h[2]) });
  const total = hist.reduce((a, h) => a + h.count, 0);
  const pct = (q: number) => {
    let acc = 0;
    for (const h of hist) {
      acc += h.count;
      if (acc >= q * total) return h.value;
    }
    return NaN;
  };
  return { qps, queries, p50: pct(0.5), p99: pct(0.99) };
}
