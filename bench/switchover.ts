import { loadavg } from 'node:os';
import { callManager } from '../src/cli/api-client.ts';
import type { StepRecord } from '../src/recovery/steps.ts';
import { PORT } from '../src/sandbox/sandbox.ts';
import { eventually, startSandbox } from '../test/helpers/env.ts';
import { ManagerProcess, type LogEvent } from '../test/helpers/manager.ts';
import { createLoadTables, loadedRound, roundLine, roundsMarkdown, type RoundResult } from './endpoints.ts';
import { summary } from './stats.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const STEPS = ['hold-writes', 'drain-transactions', 'set-read-only', 'kill-sessions', 'wait-for-target', 'promote', 'repoint-replicas', 'publish'];

/**
 * Switchovers (API, best candidate each time) on a 3-node sandbox under the same client load through
 * the L4 writer endpoint and the SQL endpoint at once (`--sessions` per endpoint, default 8; see
 * bench/endpoints.ts): per switchover and endpoint the client errors, what was in flight, the
 * longest gap between acknowledged writes, lost and duplicated acknowledged writes, and the SQL
 * endpoint's recoveries. Also where the write pause goes: Regent's steps (hold to publish), and from
 * publish to the sessions moved to the new primary and the first write acknowledged there.
 */
export async function benchSwitchover(args: string[]): Promise<void> {
  const arg = (name: string, dflt: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
  const count = arg('count', 10);
  const sessions = { l4: arg('l4-sessions', arg('sessions', 8)), sql: arg('sql-sessions', arg('sessions', 8)) };
  const { sandbox: sb, cleanup } = await startSandbox({ nodes: 3, extraServerConfig: ['general_log=OFF'] });
  const manager = new ManagerProcess(sb.configFile, { env: { REGENT_LOG_LEVEL: 'info' } });
  const loadAtStart = loadavg();
  try {
    await manager.waitFor((e) => e.event === 'manager_started', 30000, 'manager start');
    await createLoadTables(sb);
    const app = sb.appAccount();
    await eventually(async () => {
      const { default: mysql } = await import('mysql2/promise');
      const c = await mysql.createConnection({ host: '127.0.0.1', port: sb.nodes[0]!.port + PORT.sql, user: app.user, password: app.password, database: app.database });
      try {
        await c.query('UPDATE ha_counter SET n = n WHERE sid = 0');
        return true;
      } finally {
        await c.end();
      }
    }, 30000, 'the SQL endpoint routing writes');
    await sleep(1000);
    const config = sb.config();
    const rounds: RoundResult[] = [];
    const regentPause: number[] = [];
    const breakdown: { steps: StepRecord[]; publishToFirstWriteMs: number }[] = [];
    for (let i = 1; i <= count; i++) {
      let body: { ok?: boolean; writePauseMs?: number; newPrimary?: string; error?: string; steps?: StepRecord[] } = {};
      const mark = manager.events.length;
      const { result, loads } = await loadedRound(sb, i, sessions, async () => {
        const res = await callManager(config, 'POST', `/api/v1/clusters/${sb.manifest.cluster}/switchover`, {});
        body = (res?.json ?? {}) as typeof body;
        if (!res || res.status !== 200 || !body.ok) throw new Error(`switchover ${i} failed: ${body.error ?? res?.status ?? 'no manager answers'}`);
        return `-> ${body.newPrimary?.split(':').pop()}`;
      });
      rounds.push(result);
      regentPause.push(body.writePauseMs ?? NaN);
      // From publish (the manager's decision, its journal step's end) to the first SQL write acknowledged after it:
      // the data plane's update, the sessions' new primary connections (session state replayed), the held statements.
      const evs = manager.events.slice(mark);
      const t = (e: LogEvent) => Date.parse(e.time);
      const publish = evs.find((e) => e.event === 'switchover_step' && e['step'] === 'publish');
      const publishAt = publish ? t(publish) : NaN;
      const firstWrite = loads.sql.writeAcks.filter((x) => x >= publishAt).sort((a, b) => a - b)[0];
      breakdown.push({
        steps: body.steps ?? [],
        publishToFirstWriteMs: firstWrite !== undefined ? firstWrite - publishAt : NaN,
      });
      const b = breakdown.at(-1)!;
      if (process.env.BENCH_DEBUG) {
        process.stderr.write(b.steps.map((s) => `  ${s.name}: ${s.detail}\n`).join(''));
        for (const e of evs) if (/router_writer_changed|dataplane_decision|switchover_step|switchover_failed/.test(String(e.event))) process.stderr.write(`  ${e.time} ${e['source'] ?? ''} ${e.event} ${e['step'] ?? ''} ${JSON.stringify(e['writer'] ?? e['verb'] ?? '')}\n`);
      }
      process.stderr.write(
        `switchover ${i}/${count} ${result.detail} (Regent pause ${body.writePauseMs} ms; ${b.steps.map((s) => `${s.name} ${s.durationMs}`).join(', ')}; publish -> first SQL write ${b.publishToFirstWriteMs} ms): ${roundLine(result)}\n`,
      );
    }
    const r = summary(regentPause);
    const stepRows = STEPS.map((name) => {
      const xs = breakdown.map((b) => b.steps.find((s) => s.name === name)?.durationMs).filter((x): x is number => x !== undefined);
      const s = summary(xs);
      return `| ${name} | ${s.n} | ${s.median} ms | ${s.max} ms |`;
    });
    const m = (f: (b: (typeof breakdown)[number]) => number) => {
      const s = summary(breakdown.map(f).filter((x) => Number.isFinite(x)));
      return `${s.n} | ${s.median} ms | ${s.max} ms`;
    };
    process.stdout.write(
      [
        `## ${count} switchovers, ${sessions.l4} sessions through the L4 writer endpoint and ${sessions.sql} through the SQL endpoint (load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(', ')}; at the end ${loadavg().map((x) => x.toFixed(2)).join(', ')})`,
        '',
        roundsMarkdown('switchover', rounds),
        `Write pause measured by Regent (hold to publish): median ${r.median} ms, max ${r.max} ms; samples ${regentPause.join(', ')}`,
        '',
        '| switchover step (Regent journal) | n | median | max |',
        '|---|---|---|---|',
        ...stepRows,
        `| publish -> first SQL write acknowledged | ${m((b) => b.publishToFirstWriteMs)} |`,
        '',
      ].join('\n'),
    );
  } finally {
    await manager.stop();
    await cleanup();
  }
}
