import mysql from 'mysql2/promise';
import type { Sandbox } from '../src/sandbox/sandbox.ts';
import { decidedPrimaryOf, eventually, startSandbox } from '../test/helpers/env.ts';
import { ManagerProcess } from '../test/helpers/manager.ts';
import { createLoadTables, KILL_ROUNDS_CLUSTER, loadedRound, roundLine, roundsMarkdown, type RoundResult } from './endpoints.ts';
import { summary } from './stats.ts';
import { loadavg } from 'node:os';
import { PORT } from '../src/sandbox/sandbox.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Time from fault to the first write accepted by the new primary, as a client sees it. The client
 * follows the topology Regent publishes (its state file) and retries every few ms. Each cycle runs
 * on a fresh 3-node sandbox with `regent run` as a separate process, so cycles do not influence
 * each other (a frozen old primary may hold errant transactions afterwards).
 */
export async function benchFailover(args: string[]): Promise<void> {
  const kills = Number(args.find((a) => a.startsWith('--kills='))?.split('=')[1] ?? 10);
  const stops = Number(args.find((a) => a.startsWith('--stops='))?.split('=')[1] ?? 5);
  const stalls = Number(args.find((a) => a.startsWith('--stalls='))?.split('=')[1] ?? 3);
  const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 10);
  const sessions = Number(args.find((a) => a.startsWith('--sessions='))?.split('=')[1] ?? 8);
  if (rounds > 0) process.stdout.write(await endpointRounds(rounds, sessions));
  const killTimes: number[] = [];
  const stopTimes: number[] = [];
  for (let i = 0; i < kills; i++) {
    const ms = await cycle('kill');
    killTimes.push(ms);
    process.stderr.write(`kill -9 cycle ${i + 1}/${kills}: ${ms.toFixed(0)} ms\n`);
  }
  for (let i = 0; i < stops; i++) {
    const ms = await cycle('stop');
    stopTimes.push(ms);
    process.stderr.write(`SIGSTOP cycle ${i + 1}/${stops}: ${ms.toFixed(0)} ms\n`);
  }
  // Stalls shorter than failover.hangToleranceMs: SIGSTOP, then SIGCONT. None may fail over.
  const stallRows: string[] = [];
  for (const stallMs of [500, 1000, 2000]) {
    const gaps: number[] = [];
    let failovers = 0;
    for (let i = 0; i < stalls; i++) {
      const r = await stallCycle(stallMs);
      gaps.push(r.longestGapMs);
      failovers += r.failovers;
      process.stderr.write(`${stallMs} ms stall ${i + 1}/${stalls}: ${r.failovers} failover(s), longest write gap ${r.longestGapMs.toFixed(0)} ms\n`);
    }
    const g = summary(gaps);
    stallRows.push(`| ${stallMs} ms | ${stalls} | ${failovers} | ${g.median.toFixed(0)} ms | ${g.max.toFixed(0)} ms |`);
  }
  if (kills + stops + stalls === 0) return;
  const k = summary(killTimes);
  const s = summary(stopTimes);
  const fmt = (x: number) => `${x.toFixed(0)} ms`;
  process.stdout.write(
    [
      '| fault | cycles | median | max | min |',
      '|---|---|---|---|---|',
      `| kill -9 of the primary | ${k.n} | ${fmt(k.median)} | ${fmt(k.max)} | ${fmt(k.min)} |`,
      `| SIGSTOP of the primary | ${s.n} | ${fmt(s.median)} | ${fmt(s.max)} | ${fmt(s.min)} |`,
      '',
      `kill -9 samples: ${killTimes.map((x) => x.toFixed(0)).join(', ')}`,
      `SIGSTOP samples: ${stopTimes.map((x) => x.toFixed(0)).join(', ')}`,
      '',
      '| stall (SIGSTOP, then SIGCONT) | cycles | failovers | longest write gap, median | max |',
      '|---|---|---|---|---|',
      ...stallRows,
      '',
    ].join('\n'),
  );
}

/**
 * A stall shorter than the hang tolerance: the primary is stopped for `stallMs`, then continued,
 * while a client writes through it. Counts the failovers that started (there should be none) and
 * the longest gap between two acknowledged writes.
 */
async function stallCycle(stallMs: number): Promise<{ failovers: number; longestGapMs: number }> {
  const { sandbox: sb, cleanup } = await startSandbox({ nodes: 3 });
  const manager = new ManagerProcess(sb.configFile, { env: { REGENT_LOG_LEVEL: 'info' } });
  let running = true;
  const acks: number[] = [];
  try {
    await sb.sql(sb.node(1), ['CREATE TABLE app.bench (id BIGINT AUTO_INCREMENT PRIMARY KEY, at BIGINT) ENGINE=InnoDB']);
    await manager.waitFor((e) => e.event === 'manager_started', 15000);
    const app = sb.appAccount();
    const [host, port] = sb.config().clusters[0]!.router.writer!.split(':');
    const writer = (async () => {
      let conn: mysql.Connection | undefined;
      while (running) {
        try {
          conn ??= await mysql.createConnection({ host, port: Number(port), user: app.user, password: app.password, database: app.database, connectTimeout: 5000 });
          await conn.query({ sql: 'INSERT INTO bench (at) VALUES (?)', values: [Date.now()], timeout: 10000 });
          acks.push(performance.now());
        } catch {
          conn?.destroy();
          conn = undefined;
          await sleep(2);
        }
      }
      conn?.destroy();
    })();
    await sleep(1500);
    const mark = manager.events.length;
    const t0 = performance.now();
    sb.pause(sb.node(1));
    await sleep(stallMs);
    sb.resume(sb.node(1));
    await sleep(4000);
    running = false;
    await writer;
    let longest = 0;
    for (let i = 1; i < acks.length; i++) if (acks[i]! > t0 - 1000) longest = Math.max(longest, acks[i]! - acks[i - 1]!);
    return { failovers: manager.events.slice(mark).filter((e) => e.event === 'failover_started').length, longestGapMs: longest };
  } finally {
    running = false;
    try {
      sb.resume(sb.node(1));
    } catch {
      // not running
    }
    await manager.stop();
    await cleanup();
  }
}

function publishedPrimary(sb: Sandbox): { host: string; port: number } {
  const [host, port] = (decidedPrimaryOf(sb) ?? `127.0.0.1:${sb.node(1).port}`).split(':');
  return { host: host!, port: Number(port) };
}

async function cycle(fault: 'kill' | 'stop'): Promise<number> {
  const { sandbox: sb, cleanup } = await startSandbox({ nodes: 3 });
  const manager = new ManagerProcess(sb.configFile, { env: { REGENT_LOG_LEVEL: 'info' } });
  let running = true;
  const acks: { at: number; serverId: number }[] = [];
  try {
    await sb.sql(sb.node(1), ['CREATE TABLE app.bench (id BIGINT AUTO_INCREMENT PRIMARY KEY, at BIGINT) ENGINE=InnoDB']);
    await manager.waitFor((e) => e.event === 'manager_started', 15000);
    const app = sb.appAccount();
    const writer = (async () => {
      let conn: mysql.Connection | undefined;
      let serverId = 0;
      while (running) {
        try {
          if (!conn) {
            const t = publishedPrimary(sb);
            conn = await mysql.createConnection({ host: t.host, port: t.port, user: app.user, password: app.password, database: app.database, connectTimeout: 500 });
            const [rows] = (await conn.query('SELECT @@server_id AS s')) as unknown as [{ s: number }[]];
            serverId = Number(rows[0]!.s);
          }
          await conn.query({ sql: 'INSERT INTO bench (at) VALUES (?)', values: [Date.now()], timeout: 500 });
          acks.push({ at: performance.now(), serverId });
        } catch {
          conn?.destroy();
          conn = undefined;
          await sleep(2);
        }
      }
      conn?.destroy();
    })();
    await sleep(1500);
    const t0 = performance.now();
    if (fault === 'kill') await sb.kill(sb.node(1));
    else sb.pause(sb.node(1));
    const deadline = Date.now() + 30000;
    let first: number | undefined;
    while (Date.now() < deadline && first === undefined) {
      const a = acks.find((x) => x.at > t0 && x.serverId !== 1);
      if (a) first = a.at - t0;
      else await sleep(5);
    }
    running = false;
    await writer;
    if (fault === 'stop') sb.resume(sb.node(1));
    if (first === undefined) throw new Error(`no write reached a new primary within 30 s; manager log:\n${manager.raw.slice(-20).join('\n')}`);
    return first;
  } finally {
    running = false;
    await manager.stop();
    await cleanup();
  }
}

/**
 * kill -9 of the primary, `rounds` times on one 3-node sandbox, under the same client load through
 * the L4 writer endpoint and the SQL endpoint at once (bench/endpoints.ts): per kill and endpoint
 * the client errors, what was in flight at the kill, the longest gap between acknowledged writes,
 * lost and duplicated acknowledged writes, and the SQL endpoint's recoveries. The killed server is
 * restarted and rejoined (errant transactions rewound) before the next round; failover.blockPeriodSeconds
 * is 0 so every kill fails over.
 */
async function endpointRounds(count: number, sessions: number): Promise<string> {
  const { sandbox: sb, cleanup } = await startSandbox({
    nodes: 3,
    extraServerConfig: ['general_log=OFF'],
    clusterOverrides: KILL_ROUNDS_CLUSTER,
  });
  const manager = new ManagerProcess(sb.configFile, { env: { REGENT_LOG_LEVEL: 'info' } });
  const loadAtStart = loadavg();
  const results: RoundResult[] = [];
  try {
    await manager.waitFor((e) => e.event === 'manager_started', 30000, 'manager start');
    await createLoadTables(sb);
    const app = sb.appAccount();
    await eventually(async () => {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: sb.nodes[0]!.port + PORT.sql, user: app.user, password: app.password, database: app.database });
      try {
        await c.query('UPDATE ha_counter SET n = n WHERE sid = 0');
        return decidedPrimaryOf(sb) !== undefined;
      } finally {
        await c.end();
      }
    }, 30000, 'the SQL endpoint routing writes');
    await sleep(1000);
    for (let i = 1; i <= count; i++) {
      const old = decidedPrimaryOf(sb)!;
      const victim = sb.node(old.split(':').pop()!);
      const mark = manager.events.length;
      let newPrimary = '';
      const { result } = await loadedRound(sb, i, { l4: sessions, sql: sessions }, async () => {
        const t0 = performance.now();
        await sb.kill(victim);
        await eventually(async () => (decidedPrimaryOf(sb) ?? old) !== old, 30000, 'a new primary', 5);
        newPrimary = decidedPrimaryOf(sb)!;
        return `${victim.name} killed, -> ${sb.node(newPrimary.split(':').pop()!).name} decided after ${(performance.now() - t0).toFixed(0)} ms`;
      }, { settleMs: 2500 });
      results.push(result);
      process.stderr.write(`kill -9 ${i}/${count} (${result.detail}): ${roundLine(result)}\n`);
      // The killed server comes back and is rejoined as a replica before the next round.
      await sb.start(victim);
      await manager.waitFor((e) => e.event === 'rejoin_succeeded' && e['instance'] === old, 60000, `rejoin of ${old}`, mark);
      await sleep(1500);
    }
  } finally {
    await manager.stop();
    await cleanup();
  }
  return [
    `## ${count} kill -9 rounds, ${sessions} sessions through each endpoint (load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(', ')}; at the end ${loadavg().map((x) => x.toFixed(2)).join(', ')})`,
    '',
    roundsMarkdown('kill -9 round', results),
  ].join('\n');
}
