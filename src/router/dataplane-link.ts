import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig, Config } from '../config/load.ts';
import type { Decision } from '../decision/decision.ts';
import type { DecisionChange } from '../decision/record.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import type { Logger } from '../util/log.ts';
import { isAlive, sleep, waitUntil } from '../util/processes.ts';
import { DataPlaneStartFailed } from '../errors.ts';
import { configFingerprint } from '../inventory/diff.ts';
import { codeId } from '../util/code-id.ts';
import { DATA_PLANE_MARKER, runningDataPlane, type DataPlanePaths } from './dataplane.ts';
import { maintenanceSet } from '../decision/decision.ts';
import { routingTable, type RoutingTable } from './routing-table.ts';
import { decisionToWire, observationToWire, type FromDataPlane, type ToDataPlane } from './wire.ts';

const REGENT_BIN = fileURLToPath(new URL('../../bin/regent.js', import.meta.url));
/** A fence the data plane does not confirm in this long: the data plane is killed, which ends its connections just as surely. */
const FENCE_TIMEOUT_MS = 1000;

type DistributiveOmit<T, K extends keyof never> = T extends unknown ? Omit<T, K> : never;

/**
 * The manager's side of its data plane: starts one (detached, so it outlives this process) or
 * adopts the one already running, keeps the control link up, and forwards every decision and
 * observation. A fence or a promotion is acknowledged by the data plane once its connections to
 * the old primary are closed; one that is not acknowledged in time gets the data plane killed
 * (and started again), because a write must never reach a fenced primary.
 */
export class DataPlaneLink {
  #socket?: Socket;
  #nextId = 1;
  #pending = new Map<number, { resolve: (r: FromDataPlane) => void; timer: NodeJS.Timeout }>();
  #decisions = new Map<string, Decision>();
  #observations = new Map<string, Map<string, InstanceObservation>>();
  #flush = new Set<string>();
  #stopping = false;
  #connecting?: Promise<void>;
  #upgradeAsked = false;
  pid?: number;

  constructor(
    /** The manager's configuration in effect (it changes on reload). */
    private readonly config: () => Config,
    readonly paths: DataPlanePaths,
    private readonly log: Logger,
    private readonly managerId: string,
  ) {
    // The code this manager was started from, to compare with its data plane's.
    codeId();
  }

  /** Adopts the running data plane or starts one, and connects to it. */
  async start(): Promise<void> {
    await this.#ensure();
  }

  async #ensure(): Promise<void> {
    this.#connecting ??= (async () => {
      try {
        for (let attempt = 0; !this.#stopping; attempt++) {
          let pid = runningDataPlane(this.paths);
          if (pid === undefined) {
            pid = this.#spawn();
            this.log.warn({ event: 'dataplane_spawned', pid }, `started a data plane (pid ${pid}); it outlives this manager`);
          } else if (attempt === 0) this.log.info({ event: 'dataplane_adopted', pid }, `adopted the running data plane (pid ${pid})`);
          this.pid = pid;
          const ok = await waitUntil(async () => (await this.#connect().then(() => true, () => false)) || !isAlive(pid!), 10000, 50);
          if (ok && this.#socket) return;
          if (attempt >= 2) {
            const why = lastErrorLine(this.paths.logFile);
            throw new DataPlaneStartFailed(`the data plane (pid ${pid}) did not open ${this.paths.socket}${why ? `: ${why}` : ''}; see ${this.paths.logFile}`);
          }
        }
      } finally {
        this.#connecting = undefined;
      }
    })();
    return this.#connecting;
  }

  #spawn(): number {
    mkdirSync(dirname(this.paths.logFile), { recursive: true });
    const out = openSync(this.paths.logFile, 'a');
    const child = spawn(process.execPath, [REGENT_BIN, DATA_PLANE_MARKER, '--config', this.config().file, '--socket', this.paths.socket, '--pid-file', this.paths.pidFile], {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, REGENT_LOG_FORMAT: 'json' },
    });
    closeSync(out);
    child.unref();
    return child.pid!;
  }

  #connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = connect(this.paths.socket);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        this.#attach(s);
        resolve();
      });
    });
  }

  #attach(s: Socket): void {
    this.#socket = s;
    s.setEncoding('utf8');
    let buf = '';
    s.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const r = JSON.parse(line) as FromDataPlane;
          const p = this.#pending.get(r.reply);
          if (!p) continue;
          clearTimeout(p.timer);
          this.#pending.delete(r.reply);
          p.resolve(r);
        } catch {
          // not ours to answer
        }
      }
    });
    const lost = () => {
      if (this.#socket !== s) return;
      this.#socket = undefined;
      for (const [id, p] of this.#pending) {
        clearTimeout(p.timer);
        p.resolve({ reply: id, ok: false, error: 'link to the data plane lost' });
      }
      this.#pending.clear();
      if (this.#stopping) return;
      this.log.warn({ event: 'dataplane_link_lost', pid: this.pid }, 'lost the link to the data plane; reconnecting (or starting a new one)');
      void sleep(100).then(() => this.#ensure().catch((e: Error) => this.log.error({ event: 'dataplane_unavailable', err: e.message }, e.message)));
    };
    s.on('close', lost);
    s.on('error', lost);
    // Tell it who we are and what we know, in that order: a data plane adopted from an earlier
    // manager learns the current decisions before anything else.
    void this.#request({ op: 'hello', manager: this.managerId, configFile: this.config().file, configHash: configFingerprint(this.config()), role: 'manager' }, 10000).then((r) => {
      if (!r.ok || this.#socket !== s) return;
      // The process that answers (after an upgrade, not the one the PID file named a moment ago).
      if (r.pid) this.pid = r.pid;
      if (r.codeId && r.codeId !== codeId() && !this.#upgradeAsked) {
        this.#upgradeAsked = true;
        this.log.warn({ event: 'dataplane_outdated', pid: r.pid, dataPlaneCode: r.codeId, managerCode: codeId() }, `the data plane (pid ${r.pid}) runs other code than this manager: replacing it, sessions kept`);
        void this.#request({ op: 'upgrade' }, 90000).then((u) => {
          if (!u.ok) this.log.error({ event: 'dataplane_upgrade_failed', err: u.error }, `data plane not upgraded: ${u.error}`);
        });
      }
    });
    for (const [cluster, d] of this.#decisions) this.#send({ op: 'decision', id: this.#nextId++, cluster, decision: decisionToWire(d), change: { verb: 'follow' } });
    for (const cluster of this.#observations.keys()) this.#flushObservations(cluster);
  }

  #send(msg: ToDataPlane): boolean {
    if (!this.#socket || this.#socket.destroyed) return false;
    this.#socket.write(`${JSON.stringify(msg)}\n`);
    return true;
  }

  #request(msg: DistributiveOmit<Extract<ToDataPlane, { id: number }>, 'id'>, timeoutMs: number): Promise<FromDataPlane> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve({ reply: id, ok: false, error: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      this.#pending.set(id, { resolve, timer });
      if (!this.#send({ ...msg, id } as ToDataPlane)) {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve({ reply: id, ok: false, error: 'no link to the data plane' });
      }
    });
  }

  /**
   * A decision changed. Fences and promotions wait for the data plane to confirm that what is
   * open to the old primary is closed; one it cannot confirm ends with the data plane killed.
   */
  async decide(cluster: string, d: Decision, change: DecisionChange): Promise<void> {
    this.#decisions.set(cluster, d);
    const critical = change.verb === 'fence' || change.verb === 'promote';
    if (change.verb === 'hold') {
      // A switchover sets read_only right after: statements the data plane still starts on the old
      // primary then fail with 1290 in the client's face. Waited for, but a data plane that does
      // not confirm is not killed for it (nothing unsafe is open yet).
      const r = await this.#request({ op: 'decision', cluster, decision: decisionToWire(d), change }, FENCE_TIMEOUT_MS);
      if (!r.ok) this.log.warn({ event: 'dataplane_hold_unconfirmed', cluster, err: r.error }, `the data plane did not confirm holding writes for ${cluster} (${r.error})`);
      return;
    }
    if (!critical) {
      this.#send({ op: 'decision', id: this.#nextId++, cluster, decision: decisionToWire(d), change });
      return;
    }
    const r = await this.#request({ op: 'decision', cluster, decision: decisionToWire(d), change }, FENCE_TIMEOUT_MS);
    if (r.ok) return;
    // It did not confirm: a data plane that cannot be reached or is hung is killed, so no
    // connection it holds outlives the fence. A new one starts with the decision just made.
    const pid = this.pid;
    if (pid !== undefined && isAlive(pid)) {
      this.log.error({ event: 'dataplane_unresponsive', pid, cluster, verb: change.verb, err: r.error }, `the data plane did not confirm the ${change.verb} of ${cluster} (${r.error}): killing it`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
      await waitUntil(() => !isAlive(pid), 2000, 10);
    }
    void this.#ensure().catch(() => undefined);
  }

  /**
   * The manager's clusters changed: the data plane reads the configuration again (it loads the
   * same file and inventory) and replaces only the routers that changed.
   */
  async reload(): Promise<void> {
    const want = configFingerprint(this.config());
    const r = await this.#request({ op: 'reload', configHash: want }, 15000);
    if (!r.ok) this.log.error({ event: 'dataplane_reload_failed', err: r.error }, `the data plane did not reload: ${r.error}`);
    else if (r.configHash !== want) this.log.warn({ event: 'dataplane_config_differs' }, 'the data plane loaded a configuration other than this manager runs (the file or the inventory changed again meanwhile); the next reload aligns them');
  }

  /** The latest observations of a cluster (coalesced: many probes in a burst make one message). */
  observe(cluster: string, observations: Map<string, InstanceObservation>): void {
    this.#observations.set(cluster, observations);
    if (this.#flush.has(cluster)) return;
    this.#flush.add(cluster);
    setImmediate(() => this.#flushObservations(cluster));
  }

  #flushObservations(cluster: string): void {
    this.#flush.delete(cluster);
    const obs = this.#observations.get(cluster);
    if (obs) this.#send({ op: 'observe', cluster, observations: [...obs.values()].map(observationToWire) });
  }

  /** The routing table the data plane computes from the same inputs (for the API and discovery). */
  table(cluster: ClusterConfig): RoutingTable {
    const d = this.#decisions.get(cluster.name);
    return routingTable({
      decidedPrimary: d?.decidedPrimary,
      decidedAt: d?.decidedAt || undefined,
      changing: d?.changing !== undefined,
      fenced: d?.fenced,
      observations: this.#observations.get(cluster.name) ?? new Map(),
      instances: cluster.instances.map((i) => i.id),
      maintenance: maintenanceSet(d, Date.now()),
      settings: cluster.router,
    });
  }

  /**
   * Waits (up to `timeoutMs`) until no SQL session of the cluster has a transaction open or a
   * command running on `primary`; how many still do, or undefined when the data plane did not answer.
   */
  async drain(cluster: string, primary: string, timeoutMs: number): Promise<number | undefined> {
    const r = await this.#request({ op: 'drain', cluster, primary, timeoutMs }, timeoutMs + 1000);
    return r.ok ? (r.open ?? 0) : undefined;
  }

  /** The data plane's metrics in the Prometheus text format (empty when it does not answer). */
  async metrics(): Promise<string> {
    const r = await this.#request({ op: 'metrics' }, 2000);
    return r.ok && r.text ? r.text : '';
  }

  /** Closes the link; the data plane goes on (that is its point). */
  async detach(): Promise<void> {
    this.#stopping = true;
    this.#socket?.destroy();
  }

  /** Stops the data plane itself (`regent dataplane stop`, the demo and sandboxes going away). */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    const pid = this.pid ?? runningDataPlane(this.paths);
    if (this.#socket) await this.#request({ op: 'shutdown' }, 5000);
    this.#socket?.destroy();
    if (pid !== undefined) await waitUntil(() => !isAlive(pid), 5000, 20);
  }
}

/** The last line of a data plane's log that is not part of a stack trace (what it died of). */
function lastErrorLine(file: string): string | undefined {
  try {
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '' && !/^\s+at /.test(l));
    return lines.at(-1)?.trim().slice(0, 300);
  } catch {
    return undefined;
  }
}
