import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { PORT } from '../src/sandbox/sandbox.ts';
import { freePorts, runCli, startSandbox } from '../test/helpers/env.ts';
import { ManagerProcess } from '../test/helpers/manager.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result {
  path: string;
  qps: number;
  p50: number;
  p99: number;
}

/**
 * Point selects (sysbench oltp_point_select, 32 connections) against the primary directly, through
 * Regent's writer endpoint and through HAProxy (configured by `regent haproxy-config`), in one run
 * on one sandbox. Latencies come from sysbench's histogram (ms).
 */
export async function benchProxy(args: string[]): Promise<void> {
  const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? 20);
  const threads = Number(args.find((a) => a.startsWith('--threads='))?.split('=')[1] ?? 32);
  if (spawnSync('sysbench', ['--version']).status !== 0) throw new Error('sysbench is not installed: apt-get install -y sysbench');
  const { sandbox: sb, cleanup } = await startSandbox({ nodes: 3 });
  let haproxy: ChildProcess | undefined;
  const manager = { current: undefined as ManagerProcess | undefined };
  try {
    const hpPort = await freePorts(1);
    const socket = join(sb.dir, 'haproxy.sock');
    const cfgPath = join(sb.dir, 'haproxy.cfg');
    const doc = parseYaml(readFileSync(sb.configFile, 'utf8')) as { clusters: { router: Record<string, unknown> }[] };
    doc.clusters[0]!.router['haproxySocket'] = socket;
    writeFileSync(sb.configFile, toYaml(doc));
    const gen = await runCli(['haproxy-config', '--config', sb.configFile, '--writer-bind', `127.0.0.1:${hpPort}`, '--socket', socket, '--out', cfgPath]);
    if (gen.code !== 0) throw new Error(gen.stderr);
    haproxy = spawn('haproxy', ['-f', cfgPath, '-db'], { stdio: 'ignore' });
    manager.current = new ManagerProcess(sb.configFile, { env: { REGENT_LOG_LEVEL: 'warn' } });
    await sleep(2500);
    const app = sb.appAccount();
    const writerPort = sb.node(1).port + PORT.writer;
    const common = [`--mysql-host=127.0.0.1`, `--mysql-user=${app.user}`, `--mysql-password=${app.password}`, `--mysql-db=${app.database}`, '--tables=1', '--table-size=10000'];
    const prep = spawnSync('sysbench', ['oltp_point_select', ...common, `--mysql-port=${sb.node(1).port}`, 'prepare'], { encoding: 'utf8' });
    if (prep.status !== 0) throw new Error(`sysbench prepare failed: ${prep.stderr}`);
    const results: Result[] = [];
    for (const [path, port] of [
      ['direct to mariadbd', sb.node(1).port],
      ["Regent's writer endpoint", writerPort],
      ['HAProxy 2.6 (tcp mode)', hpPort],
    ] as const) {
      process.stderr.write(`running ${seconds}s through ${path} (port ${port})...\n`);
      const out = spawnSync(
        'sysbench',
        ['oltp_point_select', ...common, `--mysql-port=${port}`, `--threads=${threads}`, `--time=${seconds}`, '--histogram=on', '--report-interval=0', 'run'],
        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      );
      if (out.status !== 0) throw new Error(`sysbench run through ${path} failed: ${out.stderr || out.stdout}`);
      results.push({ path, ...parseSysbench(out.stdout) });
    }
    const hap = results[2]!;
    const direct = results[0]!;
    process.stdout.write(
      [
        `| path (${threads} connections, point select, ${seconds} s) | queries/s | p50 ms | p99 ms | vs HAProxy qps | p50 vs direct |`,
        '|---|---|---|---|---|---|',
        ...results.map((r) => `| ${r.path} | ${r.qps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${(r.qps / hap.qps).toFixed(2)}x | +${(r.p50 - direct.p50).toFixed(3)} ms |`),
        '',
      ].join('\n'),
    );
  } finally {
    await manager.current?.stop();
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
