import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
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
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

/**
 * Point selects (sysbench oltp_point_select) against the primary directly, through Regent's writer
 * endpoint (with the default `manager.routerProcesses: auto`, and with two pipe processes) and
 * through HAProxy configured by `regent haproxy-config`, all on one sandbox.
 * Two cores are shared by sysbench, mariadbd and the proxies, so single runs swing by ±15 %: the
 * paths take turns for several rounds (each round in a rotated order) and medians are reported.
 * Latencies come from sysbench's histogram (ms).
 */
export async function benchProxy(args: string[]): Promise<void> {
  const opt = (name: string, dflt: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
  const seconds = opt('seconds', 5);
  const threads = opt('threads', 32);
  const rounds = opt('rounds', 6);
  if (spawnSync('sysbench', ['--version']).status !== 0) throw new Error('sysbench is not installed: apt-get install -y sysbench');
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
    // A second manager on other ports whose router uses two pipe processes (the sandbox config
    // keeps the default, auto: on a 2-core machine, piping on the manager's event loop).
    const pipes = structuredClone(doc);
    pipes.manager['routerProcesses'] = 2;
    pipes.manager['stateDir'] = 'state-pipes';
    (pipes.manager['api'] as Record<string, unknown>)['listen'] = `127.0.0.1:${pipesApi}`;
    Object.assign(pipes.clusters[0]!.router, { writer: `127.0.0.1:${pipesWriter}`, reader: `127.0.0.1:${pipesReader}` });
    delete pipes.clusters[0]!.router['healthCheckBasePort'];
    delete pipes.clusters[0]!.router['haproxySocket'];
    const pipesConfig = join(sb.dir, 'regent-pipes.yaml');
    writeFileSync(pipesConfig, toYaml(pipes));
    const gen = await runCli(['haproxy-config', '--config', sb.configFile, '--writer-bind', `127.0.0.1:${hpPort}`, '--socket', socket, '--out', cfgPath]);
    if (gen.code !== 0) throw new Error(gen.stderr);
    haproxy = spawn('haproxy', ['-f', cfgPath, '-db'], { stdio: 'ignore' });
    for (const config of [sb.configFile, pipesConfig]) managers.push(new ManagerProcess(config, { env: { REGENT_LOG_LEVEL: 'info' } }));
    await Promise.all(managers.map((m) => m.waitFor((e) => e.event === 'manager_started', 20000, 'manager start')));
    await sleep(2000);
    const app = sb.appAccount();
    const common = [`--mysql-host=127.0.0.1`, `--mysql-user=${app.user}`, `--mysql-password=${app.password}`, `--mysql-db=${app.database}`, '--tables=1', '--table-size=10000'];
    const prep = spawnSync('sysbench', ['oltp_point_select', ...common, `--mysql-port=${sb.node(1).port}`, 'prepare'], { encoding: 'utf8' });
    if (prep.status !== 0) throw new Error(`sysbench prepare failed: ${prep.stderr}`);
    const paths = [
      { name: 'direct to mariadbd', port: sb.node(1).port },
      { name: `Regent's writer endpoint (\`routerProcesses: auto\` = ${autoRouterProcesses()} here)`, port: sb.node(1).port + PORT.writer },
      { name: "Regent's writer endpoint (`routerProcesses: 2`)", port: pipesWriter },
      { name: 'HAProxy 2.6 (tcp mode, 2 threads)', port: hpPort },
    ];
    const samples = new Map<string, Sample[]>(paths.map((p) => [p.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < paths.length; k++) {
        const path = paths[(k + round) % paths.length]!;
        process.stderr.write(`round ${round + 1}/${rounds}: ${seconds}s through ${path.name} (port ${path.port})... `);
        const out = spawnSync(
          'sysbench',
          ['oltp_point_select', ...common, `--mysql-port=${path.port}`, `--threads=${threads}`, `--time=${seconds}`, '--histogram=on', '--report-interval=0', 'run'],
          { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
        );
        if (out.status !== 0) throw new Error(`sysbench run through ${path.name} failed: ${out.stderr || out.stdout}`);
        const r = parseSysbench(out.stdout);
        process.stderr.write(`${r.qps.toFixed(0)} q/s, p50 ${r.p50} ms\n`);
        samples.get(path.name)!.push(r);
      }
    }
    const med = (name: string) => {
      const xs = samples.get(name)!;
      return { qps: median(xs.map((x) => x.qps)), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), range: [Math.min(...xs.map((x) => x.qps)), Math.max(...xs.map((x) => x.qps))] };
    };
    const direct = med(paths[0]!.name);
    const hap = med(paths[3]!.name);
    process.stdout.write(
      [
        `${threads} connections, point select, ${rounds} rounds of ${seconds} s per path; medians (qps range over rounds in brackets)`,
        '',
        '| path | queries/s | p50 ms | p99 ms | vs HAProxy qps | p50 vs direct |',
        '|---|---|---|---|---|---|',
        ...paths.map(({ name }) => {
          const r = med(name);
          return `| ${name} | ${r.qps.toFixed(0)} [${r.range[0]!.toFixed(0)}-${r.range[1]!.toFixed(0)}] | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${(r.qps / hap.qps).toFixed(2)}x | +${(r.p50 - direct.p50).toFixed(3)} ms |`;
        }),
        '',
      ].join('\n'),
    );
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

/** qps and p50/p99 from sysbench's summary and --histogram output. */
export function parseSysbench(text: string): { qps: number; p50: number; p99: number } {
  const qps = Number(/queries:\s+\d+\s+\(([\d.]+) per sec\.\)/.exec(text)?.[1] ?? NaN);
  const hist: { value: number; count: number }[] = [];
  for (const m of text.matchAll(/^\s*([\d.]+)\s+\|[*\s]*(\d+)\s*$/gm)) hist.push({ value: Number(m[1]), count: Number(m[2]) });
  const total = hist.reduce((a, h) => a + h.count, 0);
  const pct = (q: number) => {
    let acc = 0;
    for (const h of hist) {
      acc += h.count;
      if (acc >= q * total) return h.value;
    }
    return NaN;
  };
  return { qps, p50: pct(0.5), p99: pct(0.99) };
}
