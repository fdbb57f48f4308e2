import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { callManager } from '../src/cli/api-client.ts';
import { loadConfigFile, type Config } from '../src/config/load.ts';
import { PORT, type Sandbox, type SandboxNode } from '../src/sandbox/sandbox.ts';
import { startSandbox } from '../test/helpers/env.ts';
import { EtcdCluster } from '../test/helpers/etcd.ts';
import { ManagerProcess, type LogEvent } from '../test/helpers/manager.ts';
import { checkCounters, checkInvariants, checkReadYourWrites, type FinalNode, type PrimaryEpoch, type Violation } from './invariants.ts';
import { checkJournal, leaderCountProblem, leadershipIntervals, overlappingLeadership, saysItLeads, type ManagerLog } from './leadership.ts';
import { EtcdView, writeManagerConfigs, type ManagerSlot } from './managers.ts';
import { Prng } from './prng.ts';
import { dataPlanePaths } from '../src/router/dataplane.ts';
import { EndpointSampler, ReadLoad, SqlSessionLoad, WriteLoad, type ClientError, type Writes } from './workload.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TABLE = 'app.chaos';
/** SQL-endpoint mode: one counter row per writer session. */
const COUNTER = 'app.chaos_counter';
const GID = 65534;
/** The cluster under load and faults (the sandbox's); idle clusters only spread leadership. */
const CLUSTER = 'sandbox';
const LEASE_TTL_SECONDS = 3;

export type FaultKind =
  | 'kill-primary'
  | 'kill-replica'
  | 'stop-primary'
  | 'stop-replica'
  | 'partition-primary'
  | 'replica-sql-error'
  | 'switchover'
  | 'restart-manager'
  | 'kill-manager'
  // With several managers only:
  | 'kill-leader'
  | 'restart-leader'
  | 'kill-leader-and-primary'
  | 'restart-etcd-member';

export const FAULT_KINDS: readonly FaultKind[] = ['kill-primary', 'kill-replica', 'stop-primary', 'stop-replica', 'partition-primary', 'replica-sql-error', 'switchover', 'restart-manager', 'kill-manager', 'kill-leader', 'restart-leader', 'kill-leader-and-primary', 'restart-etcd-member'];
const MULTI_ONLY = new Set<FaultKind>(['kill-leader', 'restart-leader', 'kill-leader-and-primary', 'restart-etcd-member']);
/** Faults that restore what they broke themselves, or hold it long enough: no holding time after them. */
const SELF_RESTORING = new Set<FaultKind>(['replica-sql-error', 'switchover', 'restart-manager', 'kill-manager', 'kill-leader', 'restart-leader', 'kill-leader-and-primary']);
const TAKEOVER_KINDS = new Set<FaultKind>(['kill-leader', 'restart-leader', 'kill-leader-and-primary']);

/** The one-manager schedule (key order matters: a seed replays the same faults). */
const WEIGHTS: Record<Exclude<FaultKind, 'kill-leader' | 'restart-leader' | 'kill-leader-and-primary' | 'restart-etcd-member'>, number> = {
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

/**
 * With several managers: the workload cluster's leader killed (-9) or stopped (SIGTERM), its
 * leader and its primary killed together (the successor must fail over), and etcd members
 * restarted, on top; kill-manager and restart-manager then hit a manager that does not lead the
 * workload's cluster.
 */
const MULTI_WEIGHTS: Record<FaultKind, number> = { ...WEIGHTS, 'kill-leader': 2, 'restart-leader': 1, 'kill-leader-and-primary': 1, 'restart-etcd-member': 2 };

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
  /**
   * Managers on a 3-member etcd (default 1: one manager, local state). The workload goes through
   * manager 0's data plane, which follows the shared state whoever leads.
   */
  managers?: number;
  /** With several managers: 3-node clusters without load or faults, so leadership is spread (default 2). */
  idleClusters?: number;
  /** A fixed list of faults instead of the random schedule. */
  faults?: FaultKind[];
  /**
   * Where the workload goes: `l4` (default) the writer and reader endpoints; `sql` the SQL-aware
   * endpoint (writers, reader and samples), with a counter per writer session read back through
   * the same session (the no-duplicate, no-lost-increment and read-your-writes invariants).
   */
  endpoint?: 'l4' | 'sql';
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
  /** Faults that take the leader away: from the fault until another manager led the workload's cluster. */
  takeoverMs?: number;
  settledMs: number;
  outcome: string;
  /** Client-visible errors from the fault to the settled cluster, by what the client was doing. */
  clientErrors?: ErrorCounts;
}

export interface ErrorCounts {
  connect: number;
  write: number;
  readBack: number;
  read: number;
}

export function countErrors(errors: ClientError[], from: number, to: number): ErrorCounts {
  const c: ErrorCounts = { connect: 0, write: 0, readBack: 0, read: 0 };
  for (const e of errors) {
    if (e.at < from || e.at > to) continue;
    if (e.op === 'read-back') c.readBack++;
    else c[e.op]++;
  }
  return c;
}

export interface ChaosReport {
  seed: number;
  scenario: string;
  minutes: number;
  nodes: number;
  managers: number;
  clusters: string[];
  startedAt: string;
  durationMs: number;
  /** The machine: its cores, and its 1-minute load average when the faults started and ended (other work shares it). */
  machine?: { cores: number; load: [number, number] };
  faults: FaultRecord[];
  failovers: number;
  switchovers: number;
  rejoins: number;
  /** Which endpoints the workload went through (absent in older reports: l4). */
  endpoint?: 'l4' | 'sql';
  writes: { acknowledged: number; failedAttempts: number };
  reads: { ok: number; failed: number };
  /** SQL-endpoint mode: the counter sessions and their read-backs. */
  sql?: {
    writers: number;
    /** unknownCommitted: how many of the unknown increments the final counters show committed. */
    increments: { acknowledged: number; unknown: number; unknownCommitted?: number };
    transactions: { committed: number; abandoned: number };
    readBacks: { total: number; onReplica: number; missed: number };
    /** Client-visible errors: all of them by what the client was doing, outside any fault window, and the commonest messages. */
    errors: ErrorCounts & { outsideFaults: number; messages: { message: string; count: number }[] };
  };
  endpointSamples: number;
  convergenceMs: number;
  /** With several managers: what the leadership and journal checks looked at. */
  leadership?: { elections: number; intervals: number; plans: number; journalEntries: number; leaderChecks: number };
  violations: Violation[];
  replay: string;
}

/** Runs the cluster of a chaos run: sandbox, manager process(es), workload, fault injection. */
class Harness {
  /** Every manager process started, in order (their logs are the evidence). */
  readonly managers: ManagerProcess[] = [];
  /** The process running each slot's configuration now. */
  readonly procs: (ManagerProcess | undefined)[] = [];
  readonly ids = new Map<ManagerProcess, string>();
  rules: string[][] = [];
  stopped = new Set<string>();
  killed = new Set<string>();
  stoppedEtcd = new Set<number>();
  /** Violations seen while running (a cluster without exactly one leader after a fault). */
  readonly violations: Violation[] = [];
  leaderChecks = 0;
  #configs = new Map<string, Config>();

  constructor(
    readonly sb: Sandbox,
    readonly env: Record<string, string>,
    readonly log: (s: string) => void,
    readonly slots: ManagerSlot[],
    readonly clusters: string[],
    readonly etcd?: EtcdCluster,
    readonly view?: EtcdView,
  ) {}

  /**
   * The managers' own events, and the workload data plane's from its log file: it outlives the
   * managers, so what it logged while none was running counts too.
   */
  get events(): LogEvent[] {
    return [...this.managers.flatMap((m) => ownEvents(m)), ...readDataPlaneLog(this.#config(this.slots[0]!))];
  }

  #config(slot: ManagerSlot): Config {
    let c = this.#configs.get(slot.config);
    if (!c) this.#configs.set(slot.config, (c = loadConfigFile(slot.config)));
    return c;
  }

  alive(slot: ManagerSlot): boolean {
    return this.procs[slot.n]?.alive ?? false;
  }

  /**
   * Starts slot `n`'s manager. On a loaded machine a start can take long (compiling, probing every
   * instance, etcd slow to answer): one that did not finish in time is killed and started again.
   */
  async startManager(n = 0, timeoutMs = this.view ? 60000 : 20000, attempts = this.view ? 3 : 1): Promise<void> {
    const slot = this.slots[n]!;
    for (let attempt = 1; ; attempt++) {
      const m = new ManagerProcess(slot.config, { gid: GID, env: this.env });
      this.managers.push(m);
      this.procs[n] = m;
      this.ids.set(m, `${hostname()}:${m.pid}:${slot.apiPort}`);
      try {
        await m.waitFor((e) => e.event === 'manager_started', timeoutMs, `manager m${n} start`);
        return;
      } catch (e) {
        await m.kill9();
        this.log(`[chaos] manager m${n} (pid ${m.pid}) did not start within ${timeoutMs} ms (attempt ${attempt}, load ${loadavg()[0]!.toFixed(1)})`);
        if (attempt >= attempts) throw e;
      }
    }
  }

  /** The slot whose manager holds `cluster`'s leader key in etcd (several managers only). */
  async leaderSlot(cluster = CLUSTER): Promise<ManagerSlot | undefined> {
    const id = (await this.view?.leaders())?.get(cluster);
    return this.slots.find((s) => this.alive(s) && this.ids.get(this.procs[s.n]!) === id);
  }

  idOf(n: SandboxNode): string {
    return `127.0.0.1:${n.port}`;
  }

  nodeById(id: string): SandboxNode | undefined {
    return this.sb.nodes.find((n) => this.idOf(n) === id);
  }

  /**
   * Through the CLI's API client (address, token, TLS from the config): one client for everything.
   * With several managers the workload cluster's leader is asked first (actions go there; a
   * follower would redirect), then any other live manager.
   */
  async api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const leader = this.view ? await this.leaderSlot() : undefined;
    const order = this.view ? [...(leader ? [leader] : []), ...this.slots.filter((s) => s !== leader && this.alive(s))] : this.slots;
    for (const slot of order) {
      const answer = await callManager(this.#config(slot), method, path, body, 60000);
      if (answer) return answer;
    }
    throw new Error(`no manager answers ${method} ${path}`);
  }

  /** The workload cluster as its acting manager sees it (with several managers: its leader, or nothing). */
  async cluster(): Promise<Record<string, unknown> | undefined> {
    const path = `/api/v1/clusters/${CLUSTER}`;
    try {
      if (!this.view) return (await this.api('GET', path)).json;
      const leader = await this.leaderSlot();
      return leader && (await callManager(this.#config(leader), 'GET', path, undefined, 10000))?.json;
    } catch {
      return undefined;
    }
  }

  async primary(): Promise<SandboxNode | undefined> {
    // Between leaders, any manager knows the decided primary (followers follow the shared state).
    const c = (await this.cluster()) ?? (this.view ? await this.api('GET', `/api/v1/clusters/${CLUSTER}`).then((a) => a.json, () => undefined) : undefined);
    const id = c?.['decidedPrimary'] as string | undefined;
    return id ? this.nodeById(id) : undefined;
  }

  async replicas(): Promise<SandboxNode[]> {
    const p = await this.primary();
    return this.sb.nodes.filter((n) => n !== p && this.sb.isRunning(n) && !this.stopped.has(n.name));
  }

  /** Healthy: the (leading) manager says so (one writable primary, every replica replicating). */
  async waitHealthy(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const c = await this.cluster();
      if (c?.['health'] === 'healthy' && !c['acting']) return true;
      await sleep(200);
    }
    return false;
  }

  /**
   * After a fault settled, every cluster has exactly one leader: etcd's key names a live manager,
   * and it alone says so in its log. Polled for a while: a hand-over may be under way (a manager
   * that came back takes its share).
   */
  async checkLeaders(fault: number, timeoutMs = 20000): Promise<void> {
    if (!this.view) return;
    this.leaderChecks++;
    const deadline = Date.now() + timeoutMs;
    let problems: string[] = [];
    for (;;) {
      const keys = await this.view.leaders();
      const live = this.procs.filter((p): p is ManagerProcess => p?.alive ?? false);
      const liveIds = live.map((p) => this.ids.get(p)!);
      problems = !keys
        ? ['etcd did not answer']
        : this.clusters.flatMap((c) => leaderCountProblem(c, keys.get(c), live.filter((p) => saysItLeads(ownEvents(p), c)).map((p) => this.ids.get(p)!), liveIds) ?? []);
      if (problems.length === 0 || Date.now() > deadline) break;
      await sleep(250);
    }
    if (problems.length) this.violations.push({ invariant: 'leader-count', detail: `after fault ${fault}: ${problems.join('; ')}` });
  }

  /** Every manager's leadership story, for the interval checks. */
  managerLogs(): ManagerLog[] {
    return this.managers.map((m) => ({ id: this.ids.get(m)!, events: ownEvents(m), exitedAt: m.exitedAt }));
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
    for (const i of [...this.stoppedEtcd]) {
      this.etcd!.startMember(i);
      // Back in the cluster before the next fault may take another member away (quorum).
      const endpoint = this.etcd!.endpoints[i]!;
      const deadline = Date.now() + 15000;
      while (!(await EtcdView.answers(endpoint)) && Date.now() < deadline) await sleep(200);
      this.stoppedEtcd.delete(i);
    }
    for (const slot of this.slots) if (!this.alive(slot)) await this.startManager(slot.n);
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

/** A manager's own log lines (its process tails its data plane's log too). */
function ownEvents(m: ManagerProcess): LogEvent[] {
  return m.events.filter((e) => e['source'] !== 'dataplane');
}

function readDataPlaneLog(config: Config): LogEvent[] {
  const out: LogEvent[] = [];
  let text = '';
  try {
    text = readFileSync(dataPlanePaths(config).logFile, 'utf8');
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

async function finalState(sb: Sandbox, counters: boolean): Promise<FinalNode[]> {
  const out: FinalNode[] = [];
  for (const n of sb.nodes) {
    const [rows, sums] = (await sb.sql(n, [`SELECT id, server_id FROM ${TABLE}`, `CHECKSUM TABLE ${TABLE}`])) as [Record<string, unknown>[], Record<string, unknown>[]];
    let c: Map<number, number> | undefined;
    let sum = String(sums[0]?.['Checksum']);
    if (counters) {
      const [crows, csums] = (await sb.sql(n, [`SELECT writer, n FROM ${COUNTER}`, `CHECKSUM TABLE ${COUNTER}`])) as [Record<string, unknown>[], Record<string, unknown>[]];
      c = new Map(crows.map((r) => [Number(r['writer']), Number(r['n'])]));
      sum += `/${String(csums[0]?.['Checksum'])}`;
    }
    out.push({
      name: n.name,
      serverId: n.serverId,
      ids: new Set(rows.map((r) => Number(r['id']))),
      rowServer: new Map(rows.map((r) => [Number(r['id']), Number(r['server_id'])])),
      checksum: sum,
      ...(c ? { counters: c } : {}),
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
  const managerCount = opts.managers ?? 1;
  if (managerCount < 1 || managerCount > 4) throw new Error(`--managers must be between 1 and 4, got ${managerCount}`);
  const multi = managerCount > 1;
  const idleCount = multi ? (opts.idleClusters ?? 2) : 0;
  const stray = (opts.faults ?? []).filter((k) => !multi && MULTI_ONLY.has(k));
  if (stray.length) throw new Error(`${stray.join(', ')} need several managers (--managers 3)`);
  const sqlMode = opts.endpoint === 'sql';
  const startedAt = Date.now();
  const clusterOverrides = { failover: { blockPeriodSeconds: 0 }, rejoin: { errant: 'flashback' }, repair: { afterSeconds: 2 } };
  const cleanups: (() => Promise<void>)[] = [];
  let h: Harness | undefined;
  let writes: Writes | undefined;
  let sqlWrites: SqlSessionLoad | undefined;
  let reads: ReadLoad | undefined;
  let sampler: EndpointSampler | undefined;
  try {
    const main = await startSandbox({ nodes, clusterOverrides, managerOverrides: opts.routerProcesses !== undefined ? { routerProcesses: opts.routerProcesses } : {} });
    cleanups.push(main.cleanup);
    const sb = main.sandbox;
    const env: Record<string, string> = { REGENT_LOG_LEVEL: 'info', ...(opts.skipDrain ? { REGENT_TEST_SKIP_DRAIN: '1' } : {}) };
    let slots: ManagerSlot[] = [{ n: 0, config: sb.configFile, apiPort: sb.node(1).port + PORT.api }];
    let etcd: EtcdCluster | undefined;
    let view: EtcdView | undefined;
    const idle: Sandbox[] = [];
    if (multi) {
      etcd = await EtcdCluster.start(3);
      cleanups.push(() => etcd!.destroy());
      view = new EtcdView(etcd.endpoints);
      cleanups.push(async () => view!.close());
      for (let i = 1; i <= idleCount; i++) {
        const s = await startSandbox({ nodes: 3, cluster: `idle${i}`, secretsFrom: join(sb.dir, 'secrets'), clusterOverrides });
        cleanups.push(s.cleanup);
        idle.push(s.sandbox);
      }
      slots = writeManagerConfigs(sb, idle, etcd.endpoints, managerCount, LEASE_TTL_SECONDS);
    }
    h = new Harness(sb, env, log, slots, [CLUSTER, ...idle.map((s) => s.manifest.cluster)], etcd, view);
    const faults: FaultRecord[] = [];
    await sb.sql(sb.node(1), [`CREATE TABLE ${TABLE} (id BIGINT PRIMARY KEY, server_id INT NOT NULL, sent_at BIGINT NOT NULL) ENGINE=InnoDB`]);
    const writerCount = opts.writers ?? 3;
    if (sqlMode) {
      await sb.sql(sb.node(1), [
        `CREATE TABLE ${COUNTER} (writer INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB`,
        `INSERT INTO ${COUNTER} VALUES ${Array.from({ length: writerCount }, (_, k) => `(${k + 1}, 0)`).join(', ')}`,
      ]);
    }
    // Several managers start together (on two cores, compiling three at once takes a while).
    await Promise.all(slots.map((s) => h!.startManager(s.n, multi ? 90000 : 20000)));
    const loadAtStart = loadavg()[0]!;
    await h.waitHealthy(multi ? 60000 : 20000);
    await h.checkLeaders(0);
    const app = sb.appAccount();
    const base = sb.node(1).port;
    if (sqlMode) writes = sqlWrites = new SqlSessionLoad(base + PORT.sql, app, writerCount, TABLE, COUNTER);
    else writes = new WriteLoad(base + PORT.writer, app, writerCount, TABLE);
    reads = new ReadLoad(base + (sqlMode ? PORT.sql : PORT.reader), app, TABLE);
    // Through the SQL endpoint `SELECT @@read_only` goes to the primary: it samples the same thing.
    sampler = new EndpointSampler(base + (sqlMode ? PORT.sql : PORT.writer), app);
    const allErrors = (): ClientError[] => [...writes!.errors, ...reads!.errors];
    await sleep(1000);

    const endAt = startedAt + opts.minutes * 60000;
    let n = 0;
    let etcdRestarts = 0;
    const harness = h;
    const inject = async (kind: FaultKind): Promise<void> => {
      const h = harness;
      const at = Date.now();
      const heldMs = prng.int(2500, 6000);
      let target = '';
      let outcome = '';
      let firedAt = at;
      let victim: ManagerProcess | undefined;
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
          const res = await h.api('POST', `/api/v1/clusters/${CLUSTER}/instances/${encodeURIComponent(h.idOf(r))}/repair`, { action: 'retry' }).catch((e: Error) => ({ status: 0, json: { error: e.message } as Record<string, unknown> }));
          outcome = `repair retry: ${res.status} ${String(res.json['detail'] ?? res.json['error'] ?? '')}`;
          break;
        }
        case 'switchover': {
          target = p?.name ?? '';
          const res = await h.api('POST', `/api/v1/clusters/${CLUSTER}/switchover`, {}).catch((e: Error) => ({ status: 0, json: { error: e.message } as Record<string, unknown> }));
          outcome = res.status === 200 ? `switched to ${String(res.json['newPrimary'])}, writes paused ${String(res.json['writePauseMs'])} ms` : `refused/failed: ${String(res.json['error'])}`;
          break;
        }
        case 'restart-manager':
        case 'kill-manager':
        case 'kill-leader':
        case 'restart-leader': {
          let slot: ManagerSlot | undefined = h.slots[0];
          if (multi) {
            const leader = await h.leaderSlot();
            const others = h.slots.filter((s) => s !== leader && h.alive(s));
            slot = kind === 'kill-leader' || kind === 'restart-leader' ? leader : others.length ? prng.pick(others) : undefined;
          }
          if (!slot) return;
          const leads = kind === 'kill-leader' || kind === 'restart-leader';
          target = multi ? `m${slot.n}${leads ? ' (leader)' : ''}` : 'manager';
          victim = h.procs[slot.n]!;
          firedAt = Date.now();
          if (kind === 'kill-manager' || kind === 'kill-leader') await victim.kill9();
          else await victim.stop();
          // With several managers a killed one stays dead past the lease TTL: the others take its
          // clusters over meanwhile. A stopped one gave them up already.
          await sleep(multi && (kind === 'kill-manager' || kind === 'kill-leader') ? heldMs : Math.min(heldMs, 2000));
          await h.startManager(slot.n);
          break;
        }
        case 'kill-leader-and-primary': {
          const leader = await h.leaderSlot();
          if (!leader || !p || !h.sb.isRunning(p)) return;
          target = `m${leader.n} (leader) + ${p.name}`;
          victim = h.procs[leader.n]!;
          firedAt = Date.now();
          await victim.kill9();
          await sb.kill(p);
          h.killed.add(p.name);
          // Long enough for a successor to take over (the TTL) and fail the primary over.
          await sleep(Math.max(heldMs, LEASE_TTL_SECONDS * 1000 + 3000));
          break;
        }
        case 'restart-etcd-member': {
          const i = prng.int(0, h.etcd!.members.length - 1);
          // SIGKILL and SIGTERM in turn: both are covered however few etcd faults a run draws.
          const hard = etcdRestarts++ % 2 === 0;
          target = `${h.etcd!.members[i]!.name} (${hard ? 'SIGKILL' : 'SIGTERM'})`;
          await h.etcd!.stopMember(i, hard);
          h.stoppedEtcd.add(i);
          break;
        }
      }
      n++;
      log(`[chaos ${new Date().toISOString()}] fault ${n}: ${kind} ${target}`);
      if (!SELF_RESTORING.has(kind)) await sleep(heldMs);
      await h.restoreAll();
      const healthy = await h.waitHealthy(30000);
      const settledAt = Date.now();
      await h.checkLeaders(n);
      const failedOver = h.events.filter((e) => e.event === 'failover_succeeded' && Date.parse(e.time) >= at);
      outcome ||= failedOver.length ? `failover to ${String(failedOver[0]!['newPrimary'])}` : 'no failover';
      let takeoverMs: number | undefined;
      if (victim && TAKEOVER_KINDS.has(kind)) {
        const next = h.managers
          .filter((m) => m !== victim)
          .flatMap((m) => ownEvents(m).filter((e) => e.event === 'leader_elected' && e['cluster'] === CLUSTER && Date.parse(e.time) >= firedAt).map((e) => ({ m, t: Date.parse(e.time) })))
          .sort((a, b) => a.t - b.t)[0];
        if (next) {
          takeoverMs = next.t - firedAt;
          outcome += `; m${h.procs.indexOf(next.m) >= 0 ? h.procs.indexOf(next.m) : '?'} led ${CLUSTER} ${takeoverMs} ms after`;
        } else outcome += '; no other manager took over';
      }
      if (!healthy) outcome += ' (not healthy within 30 s after restore)';
      const clientErrors = countErrors(allErrors(), at, settledAt);
      faults.push({ n, kind, target, at, heldMs, outageMs: writes!.longestGap(at, settledAt), ...(takeoverMs !== undefined ? { takeoverMs } : {}), settledMs: settledAt - at, outcome, clientErrors });
      log(`[chaos] fault ${n} settled in ${settledAt - at} ms: ${outcome}; longest write gap ${writes!.longestGap(at, settledAt)} ms; client errors ${JSON.stringify(clientErrors)}`);
    };

    if (scenario === 'stuck-relay-log') {
      // Replicas receive (and acknowledge) but do not apply: a failover must drain first.
      for (const r of await h.replicas()) await sb.sql(r, ['STOP SLAVE SQL_THREAD']);
      await sleep(2000);
      await inject('kill-primary');
    } else if (opts.faults) {
      for (const kind of opts.faults) await inject(kind);
    } else {
      while (Date.now() < endAt) await inject(multi ? prng.weighted(MULTI_WEIGHTS) : prng.weighted(WEIGHTS));
    }

    log('[chaos] faults over; restoring and converging');
    const loadAtEnd = loadavg()[0]!;
    await h.restoreAll();
    await writes.stop();
    await reads.stop();
    await sampler.stop();
    const conv = await converge(sb, 120000);
    const final = conv.ok ? await finalState(sb, sqlMode) : [];
    const serverIdOf = (id: string) => h!.nodeById(id)?.serverId;
    const epochs = epochsFromEvents(h.events, serverIdOf);
    const violations = checkInvariants({ acked: writes.acked, samples: sampler.samples, epochs, final, converged: conv.ok, convergenceDetail: conv.detail });
    let sql: ChaosReport['sql'];
    if (sqlWrites) {
      violations.push(...checkCounters(sqlWrites.tallies, final), ...checkReadYourWrites(sqlWrites.readBacks));
      const errors = allErrors();
      const inFault = (t: number) => faults.some((f) => t >= f.at && t <= f.at + f.settledMs);
      const messages = new Map<string, number>();
      for (const e of errors) {
        const m = `${e.op}: ${e.error.replace(/\d{5,}/g, 'N').slice(0, 160)}`;
        messages.set(m, (messages.get(m) ?? 0) + 1);
      }
      sql = {
        writers: writerCount,
        increments: {
          acknowledged: sqlWrites.tallies.reduce((a, t) => a + t.acked, 0),
          unknown: sqlWrites.tallies.reduce((a, t) => a + t.unknown, 0),
          ...(final[0]?.counters ? { unknownCommitted: sqlWrites.tallies.reduce((a, t) => a + (final[0]!.counters!.get(t.writer) ?? 0) - t.acked, 0) } : {}),
        },
        transactions: { committed: sqlWrites.transactions, abandoned: sqlWrites.abandoned },
        readBacks: {
          total: sqlWrites.readBacks.length,
          onReplica: sqlWrites.readBacks.filter((r) => r.writeServerId !== null && r.serverId !== r.writeServerId).length,
          missed: sqlWrites.readBacks.filter((r) => !r.rowSeen || r.seen === null || r.seen < r.minExpected).length,
        },
        errors: {
          ...countErrors(errors, -Infinity, Infinity),
          outsideFaults: errors.filter((e) => !inFault(e.at)).length,
          messages: [...messages].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([message, count]) => ({ message, count })),
        },
      };
    }
    let leadership: ChaosReport['leadership'];
    if (multi) {
      for (const s of idle) {
        const c = await converge(s, 60000);
        if (!c.ok) violations.push({ invariant: 'no-convergence', detail: `${s.manifest.cluster}: ${c.detail}` });
      }
      const intervals = leadershipIntervals(h.managerLogs(), Date.now());
      const journal = await view!.journal();
      violations.push(...overlappingLeadership(intervals), ...checkJournal(journal, intervals), ...h.violations);
      leadership = {
        elections: h.managers.reduce((a, m) => a + ownEvents(m).filter((e) => e.event === 'leader_elected').length, 0),
        intervals: intervals.length,
        plans: new Set(journal.map((j) => j.planId)).size,
        journalEntries: journal.length,
        leaderChecks: h.leaderChecks,
      };
    }
    const replay = [
      `npm run chaos -- --minutes ${opts.minutes} --seed ${opts.seed}`,
      nodes !== 5 ? ` --nodes ${nodes}` : '',
      multi ? ` --managers ${managerCount}` : '',
      multi && idleCount !== 2 ? ` --idle-clusters ${idleCount}` : '',
      opts.faults ? ` --faults ${opts.faults.join(',')}` : '',
      sqlMode ? ' --endpoint sql' : '',
      opts.writers !== undefined ? ` --writers ${opts.writers}` : '',
      opts.skipDrain ? ' --skip-drain' : '',
      scenario !== 'random' ? ` --scenario ${scenario}` : '',
      opts.routerProcesses !== undefined ? ` --router-processes ${opts.routerProcesses}` : '',
    ].join('');
    const report: ChaosReport = {
      seed: opts.seed,
      scenario,
      minutes: opts.minutes,
      nodes,
      managers: managerCount,
      clusters: h.clusters,
      startedAt: new Date(startedAt).toISOString(),
      durationMs: Date.now() - startedAt,
      machine: { cores: cpus().length, load: [Math.round(loadAtStart * 10) / 10, Math.round(loadAtEnd * 10) / 10] },
      faults,
      failovers: h.events.filter((e) => e.event === 'failover_succeeded').length,
      switchovers: h.events.filter((e) => e.event === 'switchover_succeeded').length,
      rejoins: h.events.filter((e) => e.event === 'rejoin_succeeded').length,
      endpoint: sqlMode ? 'sql' : 'l4',
      writes: { acknowledged: writes.acked.length, failedAttempts: writes.errors.length },
      reads: { ok: reads.ok, failed: reads.failed },
      ...(sql ? { sql } : {}),
      endpointSamples: sampler.samples.length,
      convergenceMs: conv.ms,
      ...(leadership ? { leadership } : {}),
      violations,
      replay,
    };
    if (opts.reportDir) {
      writeReports(report, opts.reportDir);
      // The managers' own logs, for reading a surprising outage against what Regent did.
      h.managers.forEach((m, i) => writeFileSync(join(opts.reportDir!, `${reportName(report)}.manager-${i + 1}.log`), `${m.raw.join('\n')}\n`));
    }
    return report;
  } catch (e) {
    // A run that could not finish: keep what the managers logged, to see why.
    if (opts.reportDir && h) {
      mkdirSync(opts.reportDir, { recursive: true });
      h.managers.forEach((m, i) => writeFileSync(join(opts.reportDir!, `chaos-seed${opts.seed}-aborted.manager-${i + 1}.log`), `${m.raw.join('\n')}\n`));
    }
    throw e;
  } finally {
    await writes?.stop();
    await reads?.stop();
    await sampler?.stop();
    await h?.stopAll();
    for (const c of cleanups.reverse()) await c().catch((e: Error) => log(`cleanup: ${e.message}`));
  }
}

function reportName(r: ChaosReport): string {
  return `chaos-seed${r.seed}-${r.minutes}min${r.managers > 1 ? `-managers${r.managers}` : ''}${r.endpoint === 'sql' ? '-sql' : ''}${r.scenario !== 'random' ? `-${r.scenario}` : ''}`;
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
  const lead = r.leadership;
  const withErrors = r.faults.some((f) => f.clientErrors !== undefined);
  const takeovers = r.faults.filter((f) => f.takeoverMs !== undefined);
  const takeoverKinds = [...new Set(takeovers.map((f) => f.kind))];
  const multi = lead
    ? [
        `${r.managers} managers on a 3-member etcd (lease TTL ${LEASE_TTL_SECONDS} s), clusters ${r.clusters.join(', ')} (faults and load on ${CLUSTER} only; the workload goes through manager 0's data plane).`,
        '',
      ]
    : [];
  const leadershipSection = lead
    ? [
        '## Leadership',
        '',
        '| | |',
        '|---|---|',
        `| leader elections (campaigns and leases kept through an etcd outage) | ${lead.elections} |`,
        `| leadership intervals checked for overlap | ${lead.intervals} |`,
        `| journal plans / entries checked for one writer | ${lead.plans} / ${lead.journalEntries} |`,
        `| "exactly one leader per cluster" checks (after each fault) | ${lead.leaderChecks} |`,
        ...takeoverKinds.map((k) => {
          const xs = takeovers.filter((f) => f.kind === k).map((f) => f.takeoverMs!);
          return `| ${k}: another manager leads ${CLUSTER} after (median / max) | ${med(xs)} ms / ${Math.max(...xs)} ms |`;
        }),
        '',
      ]
    : [];
  return [
    `# Chaos run: seed ${r.seed}, ${r.minutes} min, ${r.nodes} nodes${r.managers > 1 ? `, ${r.managers} managers` : ''}${r.endpoint === 'sql' ? ', SQL endpoint' : ''} (${r.scenario})`,
    '',
    `Started ${r.startedAt}, took ${(r.durationMs / 1000).toFixed(0)} s${r.machine ? ` (${r.machine.cores} cores, load average ${r.machine.load[0]} at the first fault, ${r.machine.load[1]} after the last)` : ''}. Replay: \`${r.replay}\`.`,
    '',
    ...multi,
    ...(r.sql ? [`The workload goes through the SQL endpoint: ${r.sql.writers} writer sessions (an INSERT and an increment of the session's own counter row, every third time in one transaction, then an autocommit read-back of both in the same session), a reader and the writer samples.`, ''] : []),
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
    ...(r.sql
      ? [
          `| counter increments acknowledged / unknown (no answer)${r.sql.increments.unknownCommitted !== undefined ? ' / unknown that committed' : ''} | ${r.sql.increments.acknowledged} / ${r.sql.increments.unknown}${r.sql.increments.unknownCommitted !== undefined ? ` / ${r.sql.increments.unknownCommitted}` : ''} |`,
          `| transactions committed / abandoned before COMMIT | ${r.sql.transactions.committed} / ${r.sql.transactions.abandoned} |`,
          `| read-backs (answered by a replica) / missed the session's write | ${r.sql.readBacks.total} (${r.sql.readBacks.onReplica}) / ${r.sql.readBacks.missed} |`,
          `| client-visible errors: connect / write / read-back / read (outside fault windows) | ${r.sql.errors.connect} / ${r.sql.errors.write} / ${r.sql.errors.readBack} / ${r.sql.errors.read} (${r.sql.errors.outsideFaults}) |`,
        ]
      : []),
    `| convergence after the last fault | ${(r.convergenceMs / 1000).toFixed(1)} s |`,
    '',
    ...leadershipSection,
    '## Outage per fault kind (longest gap between acknowledged writes, fault to settled)',
    '',
    ...(withErrors
      ? [
          'Client errors: what the clients were told from the fault to the settled cluster, summed over the faults of the kind (connect / write / read-back / read; a read-back is a writer session reading its own write).',
          '',
          '| fault | count | median outage | max outage | client errors (c / w / rb / r) | faults with 0 errors |',
          '|---|---|---|---|---|---|',
          ...[...kinds].map(([k, fs]) => {
            const sum = (key: keyof ErrorCounts) => fs.reduce((a, f) => a + (f.clientErrors?.[key] ?? 0), 0);
            const clean = fs.filter((f) => f.clientErrors && errorTotal(f.clientErrors) === 0).length;
            return `| ${k} | ${fs.length} | ${med(fs.map((f) => f.outageMs))} ms | ${Math.max(...fs.map((f) => f.outageMs))} ms | ${errorTotal({ connect: sum('connect'), write: sum('write'), readBack: sum('readBack'), read: sum('read') })} (${sum('connect')} / ${sum('write')} / ${sum('readBack')} / ${sum('read')}) | ${clean} |`;
          }),
        ]
      : ['| fault | count | median outage | max outage |', '|---|---|---|---|', ...[...kinds].map(([k, fs]) => `| ${k} | ${fs.length} | ${med(fs.map((f) => f.outageMs))} ms | ${Math.max(...fs.map((f) => f.outageMs))} ms |`)]),
    '',
    ...(r.sql?.errors.messages.length ? ['## Commonest client errors', '', '| count | what / message |', '|---|---|', ...r.sql.errors.messages.map((m) => `| ${m.count} | ${m.message.replace(/\|/g, '\\|')} |`), ''] : []),
    '## Faults',
    '',
    ...(withErrors
      ? [
          '| # | fault | target | held | outage | settled | client errors | outcome |',
          '|---|---|---|---|---|---|---|---|',
          ...r.faults.map((f) => `| ${f.n} | ${f.kind} | ${f.target} | ${f.heldMs} ms | ${f.outageMs} ms | ${f.settledMs} ms | ${f.clientErrors ? errorTotal(f.clientErrors) : ''} | ${f.outcome} |`),
        ]
      : ['| # | fault | target | held | outage | settled | outcome |', '|---|---|---|---|---|---|---|', ...r.faults.map((f) => `| ${f.n} | ${f.kind} | ${f.target} | ${f.heldMs} ms | ${f.outageMs} ms | ${f.settledMs} ms | ${f.outcome} |`)]),
    '',
  ].join('\n');
}

function errorTotal(c: ErrorCounts): number {
  return c.connect + c.write + c.readBack + c.read;
}
