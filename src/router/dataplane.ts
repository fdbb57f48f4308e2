import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/load.ts';
import { configFingerprint } from '../inventory/diff.ts';
import { loadEffectiveConfig } from '../inventory/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { EtcdCoordinator } from '../coordination/etcd.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import { decisionFromState, type Decision } from '../decision/decision.ts';
import type { DecisionChange } from '../decision/record.ts';
import { UsageError } from '../errors.ts';
import type { Logger } from '../util/log.ts';
import { codeId } from '../util/code-id.ts';
import { isAlive, isOurProcess, readPidFile } from '../util/processes.ts';
import { RouterHost } from './host.ts';
import { inheritListener, listeners, unusedInherited } from './listen.ts';
import { expect, receiveFromPredecessor, send, spawnSuccessor } from './upgrade.ts';
import { decisionFromWire, decisionToWire, observationFromWire, type FromDataPlane, type ToDataPlane } from './wire.ts';

/** Where a manager and its data plane meet: a unix socket and a PID file in the state directory. */
export interface DataPlanePaths {
  socket: string;
  pidFile: string;
  logFile: string;
}

/**
 * The data plane of a manager (`role: run`) or of a standalone proxy (`role: proxy`): one per
 * configuration file and role, in its state directory (managers that share a state directory
 * with different files, as several managers on one host may, each get their own).
 */
export function dataPlanePaths(config: Config, role: 'run' | 'proxy' = 'run'): DataPlanePaths {
  const tag = createHash('sha256').update(config.file).digest('hex').slice(0, 8);
  const base = `${role === 'run' ? 'dataplane' : 'proxy-dataplane'}-${tag}`;
  return { socket: join(config.stateDir, `${base}.sock`), pidFile: join(config.stateDir, `${base}.pid`), logFile: join(config.stateDir, `${base}.log`) };
}

/** The marker in a data plane's command line, to tell it from a process that reused its PID. */
export const DATA_PLANE_MARKER = 'dataplane';

/** The running data plane of these paths, if any. */
export function runningDataPlane(paths: DataPlanePaths): number | undefined {
  const pid = readPidFile(paths.pidFile);
  return pid !== undefined && isOurProcess(pid, DATA_PLANE_MARKER) ? pid : undefined;
}

/**
 * The data-plane process (`regent dataplane`): every cluster's endpoints (L4 writer and reader, the
 * SQL endpoint, HAProxy health checks), outliving the manager that feeds it. A manager connects to
 * its control socket and pushes decisions and observations; a fence is answered once every
 * connection to the fenced instance is closed. Without a manager it keeps routing by the last
 * decision and follows the shared state (the same place a restarted or new manager writes to),
 * and with etcd it holds writers once nothing confirmed the decision for longer than the lease:
 * by then another manager may have failed over.
 */
export class DataPlaneProcess {
  readonly host: RouterHost;
  #server?: Server;
  #managers = new Set<Socket>();
  /** Data planes this one replaced, still serving their last sessions: they get every decision too. */
  #peers = new Map<Socket, number>();
  #pending = new Map<number, (r: FromDataPlane) => void>();
  #nextId = 1;
  #coordinator: Coordinator;
  #confirmedAt = Date.now();
  #timer?: NodeJS.Timeout;
  #following = false;
  #configHash: string;
  #stopping?: Promise<void>;
  /** This process serves the control socket and owns the PID file (not once it handed them over). */
  #ownsControl = false;
  #upgrading = false;
  /** After an upgrade: the link to the successor, which forwards every decision (a source like a manager). */
  #successor?: Socket;

  constructor(
    private config: Config,
    readonly paths: DataPlanePaths,
    private readonly log: Logger,
  ) {
    this.host = new RouterHost(config, log);
    this.#coordinator = coordinatorFor(config, log);
    this.#configHash = configFingerprint(config);
    // The code this process was started from (files on disk may change while it runs).
    codeId();
  }

  /** How long a decision may go unconfirmed before writers are held (etcd: the lease; local: no limit). */
  get maxDecisionAgeMs(): number {
    const c = this.config.coordination;
    return c.backend === 'etcd' ? c.leaseTtlSeconds * 1000 : Number.POSITIVE_INFINITY;
  }

  /**
   * Starts serving. With `takeover`, this process replaces a running data plane (its parent, see
   * upgrade.ts): it listens on the sockets handed over, starts from what the predecessor's routers
   * were told, and takes the control socket and the PID file only when the predecessor let go.
   */
  async start(opts: { takeover?: boolean } = {}): Promise<void> {
    // Client traffic waits on this process; a manager starting next to it (compiling, probing
    // everything) must not take its CPU. Raising the priority needs root: without it, nothing changes.
    try {
      setPriority(-5);
    } catch {
      // not permitted: runs at the default priority
    }
    if (opts.takeover) return this.#takeOver();
    this.#claim();
    // A socket file left by a data plane that died: nobody listens on it any more.
    if (existsSync(this.paths.socket)) rmSync(this.paths.socket, { force: true });
    await this.host.start();
    await this.#listen();
    this.#ownsControl = true;
    this.#timer = setInterval(() => void this.#tick(), 250);
    this.log.info({ event: 'dataplane_started', pid: process.pid, socket: this.paths.socket, clusters: [...this.host.routers.keys()] }, `data plane started (pid ${process.pid})`);
  }

  async #takeOver(): Promise<void> {
    try {
      const state = await receiveFromPredecessor(inheritListener);
      await this.host.start();
      for (const address of unusedInherited()) this.log.warn({ event: 'dataplane_socket_unused', address }, `the predecessor listened on ${address}, which this configuration no longer has`);
      for (const c of state) {
        this.host.observe(c.cluster, new Map(c.observations.map((w) => [w.id, observationFromWire(w)])));
        await this.host.decide(c.cluster, decisionFromWire(c.cluster, c.decision), { verb: 'follow' });
      }
      await send(process, { type: 'listening' });
      await expect(process, 'control', 30000);
      writeFileSync(this.paths.pidFile, `${process.pid}\n`);
      rmSync(this.paths.socket, { force: true });
      await this.#listen();
      this.#ownsControl = true;
      await send(process, { type: 'ready' });
      process.disconnect();
    } catch (e) {
      if (process.connected) await send(process, { type: 'failed', error: (e as Error).message }).catch(() => undefined);
      throw e;
    }
    this.#timer = setInterval(() => void this.#tick(), 250);
    this.log.warn({ event: 'dataplane_took_over', pid: process.pid, socket: this.paths.socket, clusters: [...this.host.routers.keys()] }, `data plane took over the endpoints (pid ${process.pid}); the previous one serves its open sessions until they end`);
  }

  /**
   * Takes the PID file, atomically: two managers starting at once may each start a data plane,
   * and only one may serve (the other's manager then adopts the winner).
   */
  #claim(): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.paths.pidFile, 'wx');
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const other = runningDataPlane(this.paths);
        if (other !== undefined && other !== process.pid) throw new UsageError(`a data plane already runs for ${this.paths.socket} (pid ${other})`);
        rmSync(this.paths.pidFile, { force: true }); // left by one that died
      }
    }
    throw new UsageError(`could not take ${this.paths.pidFile}`);
  }

  #listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((s) => this.#connection(s));
      server.once('error', reject);
      server.listen(this.paths.socket, () => {
        server.off('error', reject);
        this.#server = server;
        resolve();
      });
    });
  }

  /** A control connection: a manager, a predecessor following as a peer, or a one-off command. */
  #connection(s: Socket): void {
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line) continue;
        let msg: ToDataPlane | FromDataPlane;
        try {
          msg = JSON.parse(line) as ToDataPlane | FromDataPlane;
        } catch {
          this.log.error({ event: 'dataplane_bad_message' }, 'a control connection sent a line that is not JSON; closing it');
          s.destroy();
          return;
        }
        if ('reply' in msg) this.#pending.get(msg.reply)?.(msg);
        else void this.#handle(s, msg);
      }
    });
    const gone = () => {
      if (this.#peers.delete(s)) return;
      if (!this.#managers.delete(s)) return;
      this.log.warn({ event: 'dataplane_manager_detached', managers: this.#managers.size }, 'a manager left the data plane; routing goes on by the last decision and the shared state');
    };
    s.on('close', gone);
    s.on('error', gone);
  }

  async #handle(s: Socket, msg: ToDataPlane): Promise<void> {
    this.#confirmedAt = Date.now();
    const reply = (r: FromDataPlane) => {
      if (!s.destroyed) s.write(`${JSON.stringify(r)}\n`);
    };
    try {
      switch (msg.op) {
        case 'hello': {
          if (msg.role === 'peer') {
            this.#peers.set(s, msg.pid ?? 0);
            this.log.info({ event: 'dataplane_peer_attached', peer: msg.pid }, `the data plane this one replaced (pid ${msg.pid}) follows its decisions until its last session ends`);
          } else {
            this.#managers.add(s);
            this.log.info({ event: 'dataplane_manager_attached', managers: this.#managers.size }, 'a manager attached to the data plane');
            if (msg.configHash !== this.#configHash && msg.configFile === this.config.file) await this.reload();
          }
          reply({ reply: msg.id, ok: true, pid: process.pid, configHash: this.#configHash, codeId: codeId() });
          return;
        }
        case 'decision': {
          const before = this.host.routers.get(msg.cluster)?.decision;
          const d = decisionFromWire(msg.cluster, msg.decision);
          await this.#decide(msg.cluster, d, msg.change);
          if (before?.decidedPrimary !== d.decidedPrimary || msg.change.verb === 'fence') this.log.info({ event: 'dataplane_decision', cluster: msg.cluster, verb: msg.change.verb, decidedPrimary: d.decidedPrimary }, `decision for ${msg.cluster}: ${msg.change.verb}`);
          reply({ reply: msg.id, ok: true });
          return;
        }
        case 'observe':
          this.host.observe(msg.cluster, new Map(msg.observations.map((w) => [w.id, observationFromWire(w)])));
          for (const p of this.#peers.keys()) if (!p.destroyed) p.write(`${JSON.stringify(msg)}\n`);
          return;
        case 'reload':
          if (msg.configHash !== this.#configHash) await this.reload();
          reply({ reply: msg.id, ok: true, configHash: this.#configHash });
          return;
        case 'metrics':
          reply({ reply: msg.id, ok: true, text: await this.host.registry.metrics() });
          return;
        case 'drain':
          reply({ reply: msg.id, ok: true, open: await this.host.drain(msg.cluster, msg.primary, msg.timeoutMs) });
          return;
        case 'upgrade':
          reply({ reply: msg.id, ok: true, pid: await this.upgrade() });
          return;
        case 'shutdown':
          reply({ reply: msg.id, ok: true });
          await this.stop();
          process.exit(0);
      }
    } catch (e) {
      if ('id' in msg) reply({ reply: msg.id, ok: false, error: (e as Error).message });
    }
  }

  /**
   * Applies a decision here and in every predecessor still serving sessions. A fence or a
   * promotion waits for each predecessor to confirm; one that does not within a second is killed,
   * because no connection may outlive a fence.
   */
  async #decide(cluster: string, d: Decision, change: DecisionChange): Promise<void> {
    await this.host.decide(cluster, d, change);
    const critical = change.verb === 'fence' || change.verb === 'promote';
    for (const [peer, pid] of this.#peers) {
      const id = this.#nextId++;
      const answered = critical
        ? new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), PEER_ACK_MS);
            this.#pending.set(id, (r) => {
              clearTimeout(timer);
              resolve(r.ok);
            });
          })
        : undefined;
      if (!peer.destroyed) peer.write(`${JSON.stringify({ op: 'decision', id, cluster, decision: decisionToWire(d), change })}\n`);
      if (!answered) continue;
      const ok = await answered;
      this.#pending.delete(id);
      if (ok || !isAlive(pid)) continue;
      this.log.error({ event: 'dataplane_peer_unresponsive', peer: pid, cluster, verb: change.verb }, `the previous data plane (pid ${pid}) did not confirm the ${change.verb} of ${cluster}: killing it`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  /**
   * Hands every endpoint to a new process of the code on disk and keeps only the sessions open
   * now, following the new process's decisions until the last one ends (upgrade.ts). Returns the
   * new process's PID. Nothing is handed over (and this process goes on as before) when the new
   * one fails before it listens.
   */
  async upgrade(): Promise<number> {
    if (this.#upgrading || !this.#ownsControl) throw new UsageError('this data plane is already being replaced');
    this.#upgrading = true;
    const child = spawnSuccessor({ configFile: this.config.file, socket: this.paths.socket, pidFile: this.paths.pidFile, logFile: this.paths.logFile });
    this.log.warn({ event: 'dataplane_upgrade_started', successor: child.pid }, `replacing this data plane with pid ${child.pid}, sessions kept`);
    try {
      await expect(child, 'hello', 30000);
      for (const [address, server] of listeners()) await send(child, { type: 'listener', address }, server);
      await send(child, { type: 'state', clusters: this.host.snapshot() });
      await expect(child, 'listening', 30000);
    } catch (e) {
      child.kill('SIGKILL');
      this.#upgrading = false;
      this.log.error({ event: 'dataplane_upgrade_failed', err: (e as Error).message }, `upgrade failed, nothing handed over: ${(e as Error).message}`);
      throw e;
    }
    // Both accept now; the control socket goes next (a manager reconnects to the new process).
    await this.#releaseControl();
    try {
      await send(child, { type: 'control' });
      await expect(child, 'ready', 30000);
    } catch (e) {
      // The successor died with the sockets shared: this process takes the control socket back.
      this.log.error({ event: 'dataplane_upgrade_failed', err: (e as Error).message }, `the new data plane failed after taking the sockets; this one goes on: ${(e as Error).message}`);
      child.kill('SIGKILL');
      rmSync(this.paths.socket, { force: true });
      writeFileSync(this.paths.pidFile, `${process.pid}\n`);
      await this.#listen();
      this.#ownsControl = true;
      this.#upgrading = false;
      throw e;
    }
    child.disconnect();
    child.unref();
    for (const server of listeners().values()) server.close();
    this.log.warn({ event: 'dataplane_replaced', successor: child.pid, sessions: this.host.sessions() }, `pid ${child.pid} serves the endpoints now; this process keeps its ${this.host.sessions()} open session(s) until they end`);
    this.#drain(child.pid!);
    return child.pid!;
  }

  async #releaseControl(): Promise<void> {
    this.#ownsControl = false;
    for (const m of this.#managers) m.destroy();
    this.#managers.clear();
    // Not waiting for 'close': that comes when every control connection ended, and the one that
    // asked for the upgrade waits for its answer. Closing the listener frees the path at once.
    this.#server?.close();
    this.#server = undefined;
  }

  /** After an upgrade: follow the successor as a peer, exit once the last session has ended. */
  #drain(successor: number): void {
    const join = () => {
      const s = connect(this.paths.socket);
      s.once('connect', () => {
        this.#successor = s;
        this.#connection(s);
        s.write(`${JSON.stringify({ op: 'hello', id: this.#nextId++, manager: `dataplane:${process.pid}`, configFile: this.config.file, configHash: this.#configHash, role: 'peer', pid: process.pid })}\n`);
      });
      s.once('error', () => setTimeout(join, 100).unref());
      s.once('close', () => {
        if (this.#successor === s) this.#successor = undefined;
        if (!this.#stopping && isAlive(successor)) setTimeout(join, 100).unref();
      });
    };
    join();
    let lastReport = Date.now();
    const timer = setInterval(() => {
      const left = this.host.sessions();
      if (left === 0) {
        clearInterval(timer);
        this.log.warn({ event: 'dataplane_drained' }, 'the last session through the replaced data plane ended; exiting');
        void this.stop().then(() => process.exit(0));
      } else if (Date.now() - lastReport > 30000) {
        lastReport = Date.now();
        this.log.info({ event: 'dataplane_draining', sessions: left }, `replaced data plane: ${left} session(s) still open`);
      }
    }, 500);
  }

  /**
   * Re-reads the configuration (the file, and with etcd the clusters registered at run time):
   * changed routers are replaced, the rest keep their sessions.
   */
  async reload(): Promise<void> {
    const next = (await loadEffectiveConfig(this.config.file, this.config.coordination.backend === 'etcd' ? this.#coordinator : undefined)).config;
    const r = await this.host.reload(next);
    this.config = next;
    this.#configHash = configFingerprint(next);
    this.log.warn({ event: 'dataplane_reloaded', ...r }, `data plane reloaded its configuration (added ${r.added.join(', ') || 'none'}, removed ${r.removed.join(', ') || 'none'}, replaced ${r.replaced.join(', ') || 'none'})`);
  }

  /**
   * Without a manager: follow the shared state, and hold writers once the decision is older than
   * this data plane may trust (nothing confirmed it for longer than the etcd lease).
   */
  async #tick(): Promise<void> {
    // Decisions come from a manager, or (a replaced data plane) from its successor; with neither,
    // from the shared state.
    if (this.#managers.size === 0 && !this.#successor && !this.#following) {
      this.#following = true;
      try {
        await this.#followSharedState();
        this.#confirmedAt = Date.now();
      } catch {
        // coordination unreachable: the age check below decides
      } finally {
        this.#following = false;
      }
    }
    const age = Date.now() - this.#confirmedAt;
    this.host.holdWriters(age > this.maxDecisionAgeMs ? `no manager and no coordination for ${age} ms, longer than the lease: the primary may have changed` : undefined);
  }

  async #followSharedState(): Promise<void> {
    for (const [name, router] of this.host.routers) {
      const stored = decisionFromState(name, await this.#coordinator.getClusterState(name));
      const current = router.decision;
      // Only forward: a stored decision older than the one a manager pushed is not news.
      if (stored.decidedAt < current.decidedAt) continue;
      const same = stored.decidedPrimary === current.decidedPrimary && [...stored.fenced].sort().join() === [...current.fenced].sort().join() && [...stored.maintenance].join() === [...current.maintenance].join();
      if (same) continue;
      this.log.warn({ event: 'dataplane_followed_state', cluster: name, decidedPrimary: stored.decidedPrimary, fenced: [...stored.fenced] }, `no manager: ${name} follows the shared state (primary ${stored.decidedPrimary ?? 'none'})`);
      await this.#decide(name, { ...stored, changing: current.changing }, { verb: 'follow' });
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#timer) clearInterval(this.#timer);
      for (const s of [...this.#managers, ...this.#peers.keys()]) s.destroy();
      await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
      await this.host.stop();
      await this.#coordinator.close().catch(() => undefined);
      if (readPidFile(this.paths.pidFile) === process.pid) rmSync(this.paths.pidFile, { force: true });
      // After an upgrade the socket file is the successor's.
      if (this.#ownsControl) rmSync(this.paths.socket, { force: true });
      this.log.info({ event: 'dataplane_stopped' }, 'data plane stopped');
    })();
    return this.#stopping;
  }
}

/** How long a replaced data plane may take to confirm a fence or a promotion before it is killed. */
const PEER_ACK_MS = 1000;

/** A coordinator for reading the shared state only: the data plane never writes it. */
function coordinatorFor(config: Config, log: Logger): Coordinator {
  const c = config.coordination;
  return c.backend === 'etcd' ? new EtcdCoordinator(c, log) : new LocalCoordinator(config.stateDir);
}
