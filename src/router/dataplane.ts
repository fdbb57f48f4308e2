import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/load.ts';
import { configFingerprint } from '../inventory/diff.ts';
import { loadEffectiveConfig } from '../inventory/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { EtcdCoordinator } from '../coordination/etcd.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import { decisionFromState } from '../decision/decision.ts';
import { UsageError } from '../errors.ts';
import type { Logger } from '../util/log.ts';
import { isOurProcess, readPidFile } from '../util/processes.ts';
import { RouterHost } from './host.ts';
import { decisionFromWire, observationFromWire, type FromDataPlane, type ToDataPlane } from './wire.ts';

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
  #coordinator: Coordinator;
  #confirmedAt = Date.now();
  #timer?: NodeJS.Timeout;
  #following = false;
  #configHash: string;
  #stopping?: Promise<void>;

  constructor(
    private config: Config,
    readonly paths: DataPlanePaths,
    private readonly log: Logger,
  ) {
    this.host = new RouterHost(config, log);
    this.#coordinator = coordinatorFor(config, log);
    this.#configHash = configFingerprint(config);
  }

  /** How long a decision may go unconfirmed before writers are held (etcd: the lease; local: no limit). */
  get maxDecisionAgeMs(): number {
    const c = this.config.coordination;
    return c.backend === 'etcd' ? c.leaseTtlSeconds * 1000 : Number.POSITIVE_INFINITY;
  }

  async start(): Promise<void> {
    this.#claim();
    // A socket file left by a data plane that died: nobody listens on it any more.
    if (existsSync(this.paths.socket)) rmSync(this.paths.socket, { force: true });
    // Client traffic waits on this process; a manager starting next to it (compiling, probing
    // everything) must not take its CPU. Raising the priority needs root: without it, nothing changes.
    try {
      setPriority(-5);
    } catch {
      // not permitted: runs at the default priority
    }
    await this.host.start();
    await this.#listen();
    this.#timer = setInterval(() => void this.#tick(), 250);
    this.log.info({ event: 'dataplane_started', pid: process.pid, socket: this.paths.socket, clusters: [...this.host.routers.keys()] }, `data plane started (pid ${process.pid})`);
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
      const server = createServer((s) => this.#manager(s));
      server.once('error', reject);
      server.listen(this.paths.socket, () => {
        server.off('error', reject);
        this.#server = server;
        resolve();
      });
    });
  }

  #manager(s: Socket): void {
    this.#managers.add(s);
    this.#confirmedAt = Date.now();
    this.log.info({ event: 'dataplane_manager_attached', managers: this.#managers.size }, 'a manager attached to the data plane');
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line) continue;
        let msg: ToDataPlane;
        try {
          msg = JSON.parse(line) as ToDataPlane;
        } catch {
          this.log.error({ event: 'dataplane_bad_message' }, 'a manager sent a line that is not JSON; closing its link');
          s.destroy();
          return;
        }
        void this.#handle(s, msg);
      }
    });
    const gone = () => {
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
          if (msg.configHash !== this.#configHash && msg.configFile === this.config.file) await this.reload();
          reply({ reply: msg.id, ok: true, pid: process.pid, configHash: this.#configHash });
          return;
        }
        case 'decision': {
          const before = this.host.routers.get(msg.cluster)?.decision;
          const d = decisionFromWire(msg.cluster, msg.decision);
          await this.host.decide(msg.cluster, d, msg.change);
          if (before?.decidedPrimary !== d.decidedPrimary || msg.change.verb === 'fence') this.log.info({ event: 'dataplane_decision', cluster: msg.cluster, verb: msg.change.verb, decidedPrimary: d.decidedPrimary }, `decision for ${msg.cluster}: ${msg.change.verb}`);
          reply({ reply: msg.id, ok: true });
          return;
        }
        case 'observe':
          this.host.observe(msg.cluster, new Map(msg.observations.map((w) => [w.id, observationFromWire(w)])));
          return;
        case 'reload':
          if (msg.configHash !== this.#configHash) await this.reload();
          reply({ reply: msg.id, ok: true, configHash: this.#configHash });
          return;
        case 'metrics':
          reply({ reply: msg.id, ok: true, text: await this.host.registry.metrics() });
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
    if (this.#managers.size === 0 && !this.#following) {
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
      await this.host.decide(name, { ...stored, changing: current.changing }, { verb: 'follow' });
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#timer) clearInterval(this.#timer);
      for (const s of this.#managers) s.destroy();
      await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
      await this.host.stop();
      await this.#coordinator.close().catch(() => undefined);
      if (readPidFile(this.paths.pidFile) === process.pid) rmSync(this.paths.pidFile, { force: true });
      rmSync(this.paths.socket, { force: true });
      this.log.info({ event: 'dataplane_stopped' }, 'data plane stopped');
    })();
    return this.#stopping;
  }
}

/** A coordinator for reading the shared state only: the data plane never writes it. */
function coordinatorFor(config: Config, log: Logger): Coordinator {
  const c = config.coordination;
  return c.backend === 'etcd' ? new EtcdCoordinator(c, log) : new LocalCoordinator(config.stateDir);
}
