import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { callManager } from '../src/cli/api-client.ts';
import type { Config } from '../src/config/load.ts';
import { PORT, type Sandbox, type SandboxNode } from '../src/sandbox/sandbox.ts';
import { startSandbox } from '../test/helpers/env.ts';
import { ManagerProcess, type LogEvent } from '../test/helpers/manager.ts';
import { checkInvariants, type FinalNode, type PrimaryEpoch, type Violation } from './invariants.ts';
import { Prng } from './prng.ts';
import { dataPlanePaths } from '../src/router/dataplane.ts';
import { EndpointSampler, ReadLoad, WriteLoad } from './workload.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TABLE = 'app.chaos';
const GID = 65534;

export type FaultKind = 'kill-primary' | 'kill-replica' | 'stop-primary' | 'stop-replica' | 'partition-primary' | 'replica-sql-error' | 'switchover' | 'restart-manager' | 'kill-manager';

const WEIGHTS: Record<FaultKind, number> = {
  'kill-primary': 3,
  'kill-replica': 2,
  'stop-primary': 2,
  'stop-replica': 1,
  'partition-primary': 1,
  'replica-sql-error': 1,
  switchover: 2,
  'restart-manager': 1,
  'kill-manager': 1,
};

export interface ChaosOptions {
  minutes: number;
  seed: number;
  nodes?: number;
  writers?: number;
  /** Test-only: run the manager with the relay-log drain disabled (a deliberately broken build). */
  skipDrain?: boolean;
  /** random: the fault schedule; stuck-relay-log: one failover while replicas have unapplied relay logs. */
  scenario?: 'random' | 'stuck-relay-log';
  /** manager.routerProcesses for the run (default: the config default, auto). */
  routerProcesses?: number;
  reportDir?: string;
  log?: (line: string) => void;
}

export interface FaultRecord {
  n: number;
  kind: FaultKind;
  target: string;
  at: number;
  heldMs: number;
  /** Longest time without an acknowledged write from the fault to the settled cluster. */
  outageMs: number;
  settledMs: number;
  outcome: string;
}

export interface ChaosReport {
  seed: number;
  scenario: string;
  minutes: number;
  nodes: number;
  startedAt: string;
  durationMs: number;
  faults: FaultRecord[];
  failovers: number;
  switchovers: number;
  rejoins: number;
  writes: { acknowledged: number; failedAttempts: number };
  reads: { ok: number; failed: number };
  endpointSamples: number;
  convergenceMs: number;
  violations: Violation[];
  replay: string;
}

/** Runs the cluster of a chaos run: sandbox, manager process(es), workload, fault injection. */
class Harness {
  managers: ManagerProcess[] = [];
  manager!: ManagerProcess;
  rules: string[][] = [];
  stopped = new Set<string>();
  killed = new Set<string>();

  constructor(
    readonly sb: Sandbox,
    readonly env: Record<string, string>,
    readonly log: (s: string) => void,
  ) {}

  /**
   * The managers' own events, and the data plane's from its log file: it outlives the managers,
   * so what it logged while none was running counts too.
   */
  get events(): LogEvent[] {
    return [...this.managers.flatMap((m) => m.events.filter((e) => e['source'] !== 'dataplane')), ...readDataPlaneLog(this.sb)];
  }

  async startManager(): Promise<void> {
    const m = new ManagerProcess(this.sb.configFile, { gid: GID, env: this.env });
    this.managers.push(m);
    this.manager = m;
    await m.waitFor((e) => e.event === 'manager_started', 20000, 'manager start');
  }

  idOf(n: SandboxNode): string {
    return `127.0.0.1:${n.port}`;
  }

  nodeById(id: string): SandboxNode | undefined {
    return this.sb.nodes.find((n) => this.idOf(n) === id);
  }

  #config?: Config;

  /** Through the CLI's API client (address, token, TLS from the config): one client for everything. */
  async api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    this.#config ??= this.sb.config();
    const answer = await callManager(this.#config, method, path, body, 60000);
    if (!answer) throw new Error(`no manager answers ${method} ${path}`);
    return answer;
  }

  async cluster(): Promise<Record<string, unknown> | undefined> {
    try {
      return (await this.api('GET', '/api/v1/clusters/sandbox')).json;
    } catch {
      return undefined;
    }
  }

  async primary(): Promise<SandboxNode | undefined> {
    const c = await this.cluster();
    const id = c?.['decidedPrimary'] as string | undefined;
    return id ? this.nodeById(id) : undefined;
  }

  async replicas(): Promise<SandboxNode[]> {
    const p = await this.primary();
    return this.sb.nodes.filter((n) => n !== p && this.sb.isRunning(n) && !this.stopped.has(n.name));
  }

  /** Healthy: the manager says so (one writable primary, every replica replicating). */
  async waitHealthy(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const c = await this.cluster();
      if (c?.['health'] === 'healthy' && !c['acting']) return true;
      await sleep(200);
    }
    return false;
  }

  async restoreAll(): Promise<void> {
    for (const r of this.rules.splice(0)) spawnSync('iptables', ['-D', ...r]);
    for (const name of [...this.stopped]) {
      this.sb.resume(this.sb.node(name));
      this.stopped.delete(name);
    }
    for (const name of [...this.killed]) {
      await this.sb.start(this.sb.node(name)).catch((e: Error) => this.log(`restart of ${name} failed: ${e.message}`));
      this.killed.delete(name);
    }
    if (!this.manager.alive) await this.startManager();
  }

  async stopAll(): Promise<void> {
    for (const r of this.rules.splice(0)) spawnSync('iptables', ['-D', ...r]);
    for (const name of this.stopped) {
      try {
        this.sb.resume(this.sb.node(name));
      } catch {
        // not running
      }
    }
    await Promise.all(this.managers.map((m) => m.stop()));
  }
}

function readDataPlaneLog(sb: Sandbox): LogEvent[] {
  const out: LogEvent[] = [];
  let text = '';
  try {
    text = readFileSync(dataPlanePaths(sb.config()).logFile, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push({ ...(JSON.parse(line) as LogEvent), source: 'dataplane' });
    } catch {
      // a line being written
    }
  }
  return out;
}

/** The primary timeline from the router's own log: route to X starts an epoch, a fence ends it. */
export function epochsFromEvents(events: LogEvent[], serverIdOf: (id: string) => number | undefined): PrimaryEpoch[] {
  const epochs: PrimaryEpoch[] = [];
  const sorted = [...events].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  for (const e of sorted) {
    const t = Date.parse(e.time);
    if (e.event === 'router_writer_changed') {
      const w = e['writer'] as { mode: string; target?: string };
      if (w.mode === 'route' && w.target) {
        const sid = serverIdOf(w.target);
        if (sid !== undefined) epochs.push({ serverId: sid, from: t });
      }
    } else if (e.event === 'router_fenced') {
      const sid = serverIdOf(String(e['instance']));
      const cur = [...epochs].reverse().find((x) => x.serverId === sid && x.fencedAt === undefined);
      if (cur) cur.fencedAt = t;
    } else if (e.event === 'dataplane_stopped') {
      // The data plane outlives the manager; only its own end takes the endpoint away.
      const cur = epochs[epochs.length - 1];
      if (cur && cur.fencedAt === undefined) cur.fencedAt = t;
    }
  }
  return epochs;
}

async function finalState(sb: Sandbox): Promise<FinalNode[]> {
  const out: FinalNode[] = [];
  for (const n of sb.nodes) {
    const [rows, sums] = (await sb.sql(n, [`SELECT id, server_id FROM ${TABLE}`, `CHECKSUM TABLE ${TABLE}`])) as [Record<string, unknown>[], Record<string, unknown>[]];
    out.push({
      name: n.name,
      serverId: n.serverId,
      ids: new Set(rows.map((r) => Number(r['id']))),
      rowServer: new Map(rows.map((r) => [Number(r['id']), Number(r['server_id'])])),
      checksum: String(sums[0]?.['Checksum']),
    });
  }
  return out;
}

/** One writable primary, everyone else replicating from it and caught up with it. */
async function converge(sb: Sandbox, timeoutMs: number): Promise<{ ok: boolean; detail: string; ms: number }> {
  const started = Date.now();
  let detail = '';
  while (Date.now() - started < timeoutMs) {
    try {
      const states = await Promise.all(
        sb.nodes.map(async (n) => {
          const [[v], slave] = (await sb.sql(n, ['SELECT @@read_only AS ro, @@gtid_binlog_pos AS pos', 'SHOW SLAVE STATUS'])) as [Record<string, unknown>[], Record<string, unknown>[]];
          return { n, ro: Number(v!['ro']), pos: String(v!['pos']), slave: slave[0] };
        }),
      );
      const writers = states.filter((s) => s.ro === 0);
      if (writers.length !== 1) detail = `${writers.length} writable nodes`;
      else {
        const p = writers[0]!;
        const bad = states.filter((s) => s !== p && (!s.slave || s.slave['Slave_IO_Running'] !== 'Yes' || s.slave['Slave_SQL_Running'] !== 'Yes' || Number(s.slave['Master_Port']) !== p.n.port || s.pos !== p.pos));
        if (bad.length === 0) return { ok: true, detail: `primary ${p.n.name}`, ms: Date.now() - started };
        detail = `primary ${p.n.name}; not converged: ${bad.map((b) => `${b.n.name} (${b.slave ? `IO ${b.slave['Slave_IO_Running']} SQL ${b.slave['Slave_SQL_Running']} source ${b.slave['Master_Port']} pos ${b.pos} vs ${p.pos}${b.slave['Last_SQL_Error'] ? ` err ${b.slave['Last_SQL_Error']}` : ''}` : 'not a replica'})`).join('; ')}`;
      }
    } catch (e) {
      detail = (e as Error).message;
    }
    await sleep(500);
  }
  return { ok: false, detail, ms: Date.now() - started };
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const prng = new Prng(opts.seed);
  const nodes = opts.nodes ?? 5;
  const scenario = opts.scenario ?? 'random';
  const startedAt = Date.now();
  const { sandbox: sb, cleanup } = await startSandbox({
    nodes,
    clusterOverrides: { failover: { blockPeriodSeconds: 0 }, rejoin: { errant: 'flashback' }, repair: { afterSeconds: 2 } },
    managerOverrides: opts.routerProcesses !== undefined ? { routerProcesses: opts.routerProcesses } : {},
  });
  const env: Record<string, string> = { REGENT_LOG_LEVEL: 'info', ...(opts.skipDrain ? { REGENT_TEST_SKIP_DRAIN: '1' } : {}) };
  const h = new Harness(sb, env, log);
  const faults: FaultRecord[] = [];
  let writes: WriteLoad | undefined;
  let reads: ReadLoad | undefined;
  let sampler: EndpointSampler | undefined;
  try {
    await sb.sql(sb.node(1), [`CREATE TABLE ${TABLE} (id BIGINT PRIMARY KEY, server_id INT NOT NULL, sent_at BIGINT NOT NULL) ENGINE=InnoDB`]);
    await h.startManager();
    await h.waitHealthy(20000);
    const app = sb.appAccount();
    const base = sb.node(1).port;
    writes = new WriteLoad(base + PORT.writer, app, opts.writers ?? 3, TABLE);
    reads = new ReadLoad(base + PORT.reader, app, TABLE);
    sampler = new EndpointSampler(base + PORT.writer, app);
    await sleep(1000);

    const endAt = startedAt + opts.minutes * 60000;
    let n = 0;
    const inject = async (kind: FaultKind): Promise<void> => {
      const at = Date.now();
      const heldMs = prng.int(2500, 6000);
      let target = '';
      let outcome = '';
      const p = await h.primary();
      const reps = await h.replicas();
      switch (kind) {
        case 'kill-primary':
        case 'stop-primary':
        case 'partition-primary': {
          if (!p || !h.sb.isRunning(p)) return;
          target = p.name;
          if (kind === 'kill-primary') {
            await sb.kill(p);
            h.killed.add(p.name);
          } else if (kind === 'stop-primary') {
            sb.pause(p);
            h.stopped.add(p.name);
          } else {
            const rule = ['OUTPUT', '-o', 'lo', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(p.port), '-m', 'owner', '--gid-owner', String(GID), '-j', 'DROP'];
            spawnSync('iptables', ['-A', ...rule]);
            h.rules.push(rule);
          }
          break;
        }
        case 'kill-replica':
        case 'stop-replica': {
          if (reps.length < 3) return;
          const r = prng.pick(reps);
          target = r.name;
          if (kind === 'kill-replica') {
            await sb.kill(r);
            h.killed.add(r.name);
          } else {
            sb.pause(r);
            h.stopped.add(r.name);
          }
          break;
        }
        case 'replica-sql-error': {
          if (!p || reps.length === 0) return;
          const r = prng.pick(reps);
          target = r.name;
          const id = -1 - n;
          await sb.sql(r, ['SET SESSION sql_log_bin = 0', `INSERT INTO ${TABLE} VALUES (${id}, 0, 0)`]);
          await sb.sql(p, [`INSERT INTO ${TABLE} VALUES (${id}, @@server_id, 0)`]);
          await sleep(heldMs);
          // The DBA's fix: remove the conflicting row, then ask Regent to retry.
          await sb.sql(r, ['SET SESSION sql_log_bin = 0', `DELETE FROM ${TABLE} WHERE id = ${id}`]);
          const res = await h.api('POST', `/api/v1/clusters/sandbox/instances/${encodeURIComponent(h.idOf(r))}/repair`, { action: 'retry' }).catch((e: Error) => ({ status: 0, json: { error: e.message } as Record<string, unknown> }));
          outcome = `repair retry: ${res.status} ${String(res.json['detail'] ?? res.json['error'] ?? '')}`;
          break;
        }
        case 'switchover': {
          target = p?.name ?? '';
          const res = await h.api('POST', '/api/v1/clusters/sandbox/switchover', {}).catch((e: Error) => ({ status: 0, json: { error: e.message } as Record<string, unknown> }));
          outcome = res.status === 200 ? `switched to ${String(res.json['newPrimary'])}, writes paused ${String(res.json['writePauseMs'])} ms` : `refused/failed: ${String(res.json['error'])}`;
          break;
        }
        case 'restart-manager':
        case 'kill-manager': {
          target = 'manager';
          if (kind === 'kill-manager') await h.manager.kill9();
          else await h.manager.stop();
          await sleep(Math.min(heldMs, 2000));
          await h.startManager();
          break;
        }
      }
      n++;
      log(`[chaos ${new Date().toISOString()}] fault ${n}: ${kind} ${target}`);
      if (kind !== 'replica-sql-error' && kind !== 'switchover' && kind !== 'restart-manager' && kind !== 'kill-manager') await sleep(heldMs);
      await h.restoreAll();
      const healthy = await h.waitHealthy(30000);
      const settledAt = Date.now();
      const failedOver = h.events.filter((e) => e.event === 'failover_succeeded' && Date.parse(e.time) >= at);
      outcome ||= failedOver.length ? `failover to ${String(failedOver[0]!['newPrimary'])}` : 'no failover';
      if (!healthy) outcome += ' (not healthy within 30 s after restore)';
      faults.push({ n, kind, target, at, heldMs, outageMs: writes!.longestGap(at, settledAt), settledMs: settledAt - at, outcome });
      log(`[chaos] fault ${n} settled in ${settledAt - at} ms: ${outcome}; longest write gap ${writes!.longestGap(at, settledAt)} ms`);
    };

    if (scenario === 'stuck-relay-log') {
      // Replicas receive (and acknowledge) but do not apply: a failover must drain first.
      for (const r of await h.replicas()) await sb.sql(r, ['STOP SLAVE SQL_THREAD']);
      await sleep(2000);
      await inject('kill-primary');
    } else {
      while (Date.now() < endAt) await inject(prng.weighted(WEIGHTS));
    }

    log('[chaos] faults over; restoring and converging');
    await h.restoreAll();
    await writes.stop();
    await reads.stop();
    await sampler.stop();
    const conv = await converge(sb, 120000);
    const final = conv.ok ? await finalState(sb) : [];
    const serverIdOf = (id: string) => h.nodeById(id)?.serverId;
    const epochs = epochsFromEvents(h.events, serverIdOf);
    const violations = checkInvariants({ acked: writes.acked, samples: sampler.samples, epochs, final, converged: conv.ok, convergenceDetail: conv.detail });
    const report: ChaosReport = {
      seed: opts.seed,
      scenario,
      minutes: opts.minutes,
      nodes,
      startedAt: new Date(startedAt).toISOString(),
      durationMs: Date.now() - startedAt,
      faults,
      failovers: h.events.filter((e) => e.event === 'failover_succeeded').length,
      switchovers: h.events.filter((e) => e.event === 'switchover_succeeded').length,
      rejoins: h.events.filter((e) => e.event === 'rejoin_succeeded').length,
      writes: { acknowledged: writes.acked.length, failedAttempts: writes.errors.length },
      reads: { ok: reads.ok, failed: reads.failed },
      endpointSamples: sampler.samples.length,
      convergenceMs: conv.ms,
      violations,
      replay: `npm run chaos -- --minutes ${opts.minutes} --seed ${opts.seed}${opts.skipDrain ? ' --skip-drain' : ''}${scenario !== 'random' ? ` --scenario ${scenario}` : ''}${opts.routerProcesses !== undefined ? ` --router-processes ${opts.routerProcesses}` : ''}`,
    };
    if (opts.reportDir) {
      writeReports(report, opts.reportDir);
      // The managers' own logs, for reading a surprising outage against what Regent did.
      h.managers.forEach((m, i) => writeFileSync(join(opts.reportDir!, `${reportName(report)}.manager-${i + 1}.log`), `${m.raw.join('\n')}\n`));
    }
    return report;
  } finally {
    await writes?.stop();
    await reads?.stop();
    await sampler?.stop();
    await h.stopAll();
    await cleanup();
  }
}

function reportName(r: ChaosReport): string {
  return `chaos-seed${r.seed}-${r.minutes}min${r.scenario !== 'random' ? `-${r.scenario}` : ''}`;
}

export function writeReports(r: ChaosReport, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const name = reportName(r);
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(r, null, 2));
  writeFileSync(join(dir, `${name}.md`), renderReport(r));
}

export function renderReport(r: ChaosReport): string {
  const kinds = new Map<string, FaultRecord[]>();
  for (const f of r.faults) kinds.set(f.kind, [...(kinds.get(f.kind) ?? []), f]);
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor((s.length - 1) / 2)]! : 0;
  };
  return [
    `# Chaos run: seed ${r.seed}, ${r.minutes} min, ${r.nodes} nodes (${r.scenario})`,
    '',
    `Started ${r.startedAt}, took ${(r.durationMs / 1000).toFixed(0)} s. Replay: \`${r.replay}\`.`,
    '',
    `**Invariants: ${r.violations.length === 0 ? 'all held (0 violations)' : `${r.violations.length} VIOLATION(S)`}**`,
    ...r.violations.map((v) => `- ${v.invariant}: ${v.detail}`),
    '',
    '| | |',
    '|---|---|',
    `| faults injected | ${r.faults.length} |`,
    `| failovers / switchovers / rejoins | ${r.failovers} / ${r.switchovers} / ${r.rejoins} |`,
    `| writes acknowledged (failed attempts) | ${r.writes.acknowledged} (${r.writes.failedAttempts}) |`,
    `| reads ok / failed | ${r.reads.ok} / ${r.reads.failed} |`,
    `| writer-endpoint samples checked | ${r.endpointSamples} |`,
    `| convergence after the last fault | ${(r.convergenceMs / 1000).toFixed(1)} s |`,
    '',
    '## Outage per fault kind (longest gap between acknowledged writes, fault to settled)',
    '',
    '| fault | count | median outage | max outage |',
    '|---|---|---|---|',
    ...[...kinds].map(([k, fs]) => `| ${k} | ${fs.length} | ${med(fs.map((f) => f.outageMs))} ms | ${Math.max(...fs.map((f) => f.outageMs))} ms |`),
    '',
    '## Faults',
    '',
    '| # | fault | target | held | outage | settled | outcome |',
    '|---|---|---|---|---|---|---|',
    ...r.faults.map((f) => `| ${f.n} | ${f.kind} | ${f.target} | ${f.heldMs} ms | ${f.outageMs} ms | ${f.settledMs} ms | ${f.outcome} |`),
    '',
  ].join('\n');
}
