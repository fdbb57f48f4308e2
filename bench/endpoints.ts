import { loadavg } from 'node:os';
import { PORT, type Sandbox } from '../src/sandbox/sandbox.ts';
import { decidedPrimaryOf } from '../test/helpers/env.ts';
import { LOAD_TABLES, SqlLoad } from '../test/helpers/sql-load.ts';
import { summary } from './stats.ts';

/**
 * The same client load through the L4 writer endpoint and the SQL endpoint at once, one fresh pair
 * of loads per fault (so lost and duplicated writes are checked per fault, with the loads stopped):
 * test/helpers/sql-load.ts's sessions (autocommit writes, 5-statement transactions, reads).
 */

export const RECOVERY_KINDS = ['moved', 'retried_read', 'retried_unsent', 'replayed', 'replay_refused', 'in_doubt'] as const;

export interface EndpointRound {
  endpoint: 'L4 writer' | 'SQL';
  sessions: number;
  ops: number;
  errors: number;
  /** Of the errors: statements sent after the fault (not in flight at it). */
  errorsSentAfter: number;
  /** Sessions with a statement in flight at the fault, and of those COMMITs / autocommit writes. */
  inFlight: number;
  commitsInFlight: number;
  /** Longest gap between acknowledged writes around the fault (ms). */
  writeGapMs: number;
  lost: number;
  duplicated: number;
  /** regent_sql_recoveries_total{kind} increase during the round (SQL endpoint only). */
  recoveries?: Record<string, number>;
  errorSamples: string[];
}

export interface RoundResult {
  round: number;
  detail: string;
  load1: number;
  endpoints: EndpointRound[];
}

/**
 * Cluster settings for repeated kill -9 rounds on one sandbox: every kill fails over (no
 * anti-flapping block) and a killed primary comes back by flashback of what the others never got.
 */
export const KILL_ROUNDS_CLUSTER = { failover: { blockPeriodSeconds: 0 }, rejoin: { errant: 'flashback' }, repair: { afterSeconds: 2 } } as const;

export async function createLoadTables(sb: Sandbox): Promise<void> {
  await sb.sql(sb.node(1), LOAD_TABLES);
}

/** regent_sql_recoveries_total by kind, from the manager's /metrics (the data plane's series included). */
export async function recoveryCounts(sb: Sandbox): Promise<Record<string, number>> {
  const out: Record<string, number> = Object.fromEntries(RECOVERY_KINDS.map((k) => [k, 0]));
  try {
    const text = await (await fetch(`http://127.0.0.1:${sb.nodes[0]!.port + PORT.api}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith('regent_sql_recoveries_total{')) continue;
      const kind = /kind="([^"]+)"/.exec(line)?.[1];
      if (kind) out[kind] = (out[kind] ?? 0) + Number(line.split(' ').pop());
    }
  } catch {
    // no manager answers: counts stay 0 for this sample
  }
  return out;
}

/** Reads through a root connection to the decided primary (verification of the loads). */
export function primaryQuery(sb: Sandbox): (sql: string) => Promise<Record<string, unknown>[]> {
  return async (sql) => {
    const id = decidedPrimaryOf(sb)!;
    const node = sb.node(id.split(':').pop()!);
    return (await sb.sql(node, [sql]))[0]!;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One fault under load: `sessions` sessions through each endpoint, `warmMs` of load, then `fault()`
 * (which returns when the fault is over from Regent's side: a new primary published), `settleMs`
 * of load after it; the loads stop and are verified against the primary.
 */
export async function loadedRound(
  sb: Sandbox,
  round: number,
  sessions: { l4: number; sql: number },
  fault: () => Promise<string>,
  opts: { warmMs?: number; settleMs?: number } = {},
): Promise<{ result: RoundResult; faultAt: number; loads: { l4: SqlLoad; sql: SqlLoad } }> {
  const base = sb.nodes[0]!.port;
  const app = sb.appAccount();
  // Session ids in the tables: a range of 100 per round, L4 from +50.
  const l4 = new SqlLoad(base + PORT.writer, app, sessions.l4, `r${round}l4-`, round * 100 + 51);
  const sql = new SqlLoad(base + PORT.sql, app, sessions.sql, `r${round}sql-`, round * 100 + 1);
  await Promise.all([l4.start(), sql.start()]);
  let detail = '';
  let faultAt = 0;
  let end = 0;
  const before = await recoveryCounts(sb);
  const load1 = loadavg()[0]!;
  try {
    await sleep(opts.warmMs ?? 1000);
    l4.fault();
    sql.fault();
    faultAt = Date.now();
    detail = await fault();
    await sleep(opts.settleMs ?? 1500);
    end = Date.now();
  } finally {
    await Promise.all([l4.stop(), sql.stop()]);
  }
  const after = await recoveryCounts(sb);
  const query = primaryQuery(sb);
  const endpoints: EndpointRound[] = [];
  for (const [name, load] of [['L4 writer', l4], ['SQL', sql]] as const) {
    if (load.sessions === 0) continue;
    const v = await load.verify(query);
    endpoints.push({
      endpoint: name,
      sessions: load.sessions,
      ops: load.ops,
      errors: load.errors.length,
      errorsSentAfter: load.errors.filter((e) => e.startedAt > faultAt).length,
      inFlight: load.inFlightAtFault,
      commitsInFlight: load.commitsInFlightAtFault,
      // From 1 s before the fault (the gap that spans it counts) to the end of the round.
      writeGapMs: load.longestWriteGap(faultAt - 1000, end),
      lost: v.lost.length,
      duplicated: v.duplicated.length,
      recoveries: name === 'SQL' ? Object.fromEntries(RECOVERY_KINDS.map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)])) : undefined,
      errorSamples: [...new Set(load.errors.map((e) => `${e.op}${e.startedAt > faultAt ? ' (sent after the fault)' : ''}: ${e.errno ?? ''} ${e.message}`.slice(0, 200)))].slice(0, 4),
    });
  }
  return { result: { round, detail, load1, endpoints }, faultAt, loads: { l4, sql } };
}

export function roundLine(r: RoundResult): string {
  return r.endpoints
    .map((e) => `${e.endpoint}: ${e.errors} errors (${e.errorsSentAfter} sent after the fault; ${e.inFlight} in flight, ${e.commitsInFlight} commits), write gap ${e.writeGapMs} ms, lost ${e.lost}, dup ${e.duplicated}${e.recoveries ? `, recoveries ${fmtRecoveries(e.recoveries)}` : ''}`)
    .join(' | ');
}

function fmtRecoveries(r: Record<string, number>): string {
  const parts = Object.entries(r)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`);
  return parts.length ? parts.join(', ') : '-';
}

/** The per-fault table (one row per fault and endpoint) and a summary table per endpoint. */
export function roundsMarkdown(fault: string, rounds: RoundResult[]): string {
  const lines = [
    `| ${fault} | load avg (1 min) | endpoint | client errors (sent after the fault) | in flight at the fault (commits) | longest write gap | lost / duplicated acknowledged writes | SQL endpoint recoveries |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rounds)
    for (const e of r.endpoints)
      lines.push(`| ${r.round}${r.detail ? ` (${r.detail})` : ''} | ${r.load1.toFixed(1)} | ${e.endpoint} | ${e.errors} (${e.errorsSentAfter}) | ${e.inFlight} (${e.commitsInFlight}) | ${e.writeGapMs} ms | ${e.lost} / ${e.duplicated} | ${e.recoveries ? fmtRecoveries(e.recoveries) : ''} |`);
  lines.push('', '| endpoint | faults | sessions | operations | client errors, total | faults with errors | errors per fault, median / max | longest write gap, median / max | lost / duplicated, total | recoveries, total |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const name of ['L4 writer', 'SQL'] as const) {
    const es = rounds.map((r) => r.endpoints.find((e) => e.endpoint === name)).filter((e): e is EndpointRound => e !== undefined);
    if (es.length === 0) continue;
    const errs = summary(es.map((e) => e.errors));
    const gaps = summary(es.map((e) => e.writeGapMs));
    const rec: Record<string, number> = {};
    for (const e of es) for (const [k, n] of Object.entries(e.recoveries ?? {})) rec[k] = (rec[k] ?? 0) + n;
    lines.push(
      `| ${name} | ${es.length} | ${es[0]?.sessions ?? 0} | ${es.reduce((s, e) => s + e.ops, 0)} | ${es.reduce((s, e) => s + e.errors, 0)} | ${es.filter((e) => e.errors > 0).length} | ${errs.median} / ${errs.max} | ${gaps.median} / ${gaps.max} ms | ${es.reduce((s, e) => s + e.lost, 0)} / ${es.reduce((s, e) => s + e.duplicated, 0)} | ${name === 'SQL' ? fmtRecoveries(rec) : ''} |`,
    );
  }
  const samples = new Set<string>();
  for (const r of rounds) for (const e of r.endpoints) for (const s of e.errorSamples) samples.add(`${e.endpoint}: ${s}`);
  if (samples.size) lines.push('', 'Errors seen (first of each kind):', ...[...samples].slice(0, 12).map((s) => `- ${s}`));
  return `${lines.join('\n')}\n`;
}
