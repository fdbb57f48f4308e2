import { randomBytes } from 'node:crypto';
import { InstanceServer, newStats, type ServerContext, type SimStats } from './instance-server.ts';
import { writeRegentConfig, type RegentConfigOptions, type SimClusterSpec } from './regent-config.ts';
import { formatGtid, ReplicationModel, SimInstance, type ScriptedIo } from './replication-model.ts';
import { StatementCache } from './statements.ts';
import { nativePasswordHash } from './wire.ts';

export interface FleetOptions {
  clusters: number;
  /** Instances per cluster: the first is the primary, the others replicate from it. */
  size: number;
  /**
   * First two octets of the loopback addresses: instance g listens on <net>.<g / 250>.<1 + g % 250>
   * (Linux routes all of 127.0.0.0/8 to lo). Default: a random 127.64-127.191, so two simulators
   * rarely meet.
   */
  net?: string;
  /** The one port every instance listens on. Default: a free one in 61000-64999 (above the ephemeral range). */
  port?: number;
  /** Cluster names are <prefix>0001, <prefix>0002... */
  prefix?: string;
  /** Transactions per second on each primary (GTIDs advance). Default 10. */
  writeRate?: number;
  /** slave_net_timeout: replicas of a hung primary reconnect after this long. Default 10 s. */
  slaveNetTimeoutSec?: number;
  /** Heartbeat period the replicas start with (MASTER_HEARTBEAT_PERIOD). Default 0.5 s. */
  heartbeatPeriodSec?: number;
  /** Every query is answered this much later (ms). Default 0. */
  latencyMs?: number;
  manager?: { user: string; password: string };
  replication?: { user: string; password: string };
}

/** What an instance reports right now, as JSON (the control API and tests read this). */
export interface InstanceDescription {
  id: string;
  cluster: string;
  name: string;
  liveness: string;
  readOnly: boolean;
  source?: string;
  io?: string;
  sql?: boolean;
  lagSeconds: number;
  gtidBinlogPos: string;
  gtidSlavePos: string;
  heartbeats?: number;
  sessions: number;
}

const pad = (n: number) => String(n).padStart(4, '0');

/**
 * Many simulated MariaDB instances in one process, grouped in clusters of one primary and its
 * replicas, each on its own loopback address and the same port. The control methods (crash, hang,
 * recover, script) change what they report and how their sockets behave; `writeRegentConfig`
 * writes the config a `regent run` needs to watch them.
 */
export class FleetSimulator {
  readonly model: ReplicationModel;
  readonly stats: SimStats = newStats();
  readonly servers = new Map<string, InstanceServer>();
  readonly clusters: SimClusterSpec[] = [];
  readonly manager: { user: string; password: string };
  readonly replication: { user: string; password: string };
  #ctx: ServerContext;

  private constructor(
    readonly port: number,
    readonly net: string,
    opts: FleetOptions,
  ) {
    this.manager = opts.manager ?? { user: 'regent', password: randomBytes(12).toString('base64url') };
    this.replication = opts.replication ?? { user: 'repl', password: randomBytes(12).toString('base64url') };
    this.model = new ReplicationModel(Date.now, { writeRate: opts.writeRate, slaveNetTimeoutSec: opts.slaveNetTimeoutSec });
    this.#ctx = {
      model: this.model,
      statements: new StatementCache(),
      stats: this.stats,
      accounts: new Map([
        [this.manager.user, nativePasswordHash(this.manager.password)],
        [this.replication.user, nativePasswordHash(this.replication.password)],
      ]),
      latencyMs: opts.latencyMs ?? 0,
    };
    const at = Date.now();
    const prefix = opts.prefix ?? 'sim';
    let g = 0;
    for (let c = 0; c < opts.clusters; c++) {
      const name = `${prefix}${pad(c + 1)}`;
      const hosts: string[] = [];
      for (let j = 0; j < opts.size; j++, g++) hosts.push(`${net}.${Math.floor(g / 250)}.${1 + (g % 250)}`);
      const primaryHost = hosts[0]!;
      const spec: SimClusterSpec = { name, primary: `${primaryHost}:${port}`, instances: [] };
      hosts.forEach((host, j) => {
        const inst = new SimInstance(`${host}:${port}`, host, port, j + 1, name, `n${j + 1}`, at, {
          readOnly: j > 0,
          own: { server: 1, seq: 100 },
          channel:
            j === 0
              ? undefined
              : { host: primaryHost, port, user: this.replication.user, heartbeatPeriodSec: opts.heartbeatPeriodSec ?? 0.5, connectRetrySec: 1, useGtid: 'Slave_Pos', ioRunning: true, sqlRunning: true },
        });
        this.model.add(inst);
        this.servers.set(inst.id, new InstanceServer(inst, this.#ctx));
        spec.instances.push({ host, port, name: inst.name });
      });
      this.clusters.push(spec);
    }
  }

  /** Builds the fleet and listens on every address; retries with another port when one is taken. */
  static async start(opts: FleetOptions): Promise<FleetSimulator> {
    if (opts.clusters * opts.size > 250 * 256) throw new Error('at most 64,000 instances');
    const net = opts.net ?? `127.${64 + Math.floor(Math.random() * 128)}`;
    if (!/^127\.\d{1,3}$/.test(net)) throw new Error(`net must be "127.N" (loopback), got "${net}"`);
    for (let attempt = 0; ; attempt++) {
      const port = opts.port ?? 61000 + Math.floor(Math.random() * 4000);
      const fleet = new FleetSimulator(port, net, opts);
      try {
        await fleet.#listenAll();
        return fleet;
      } catch (e) {
        await fleet.stop();
        if (opts.port !== undefined || attempt >= 20 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  async #listenAll(): Promise<void> {
    const all = [...this.servers.values()];
    // In batches: thousands of concurrent listen() calls gain nothing.
    for (let i = 0; i < all.length; i += 200) await Promise.all(all.slice(i, i + 200).map((s) => s.listen()));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => s.close()));
  }

  get instanceCount(): number {
    return this.servers.size;
  }

  /** An instance by id (host:port) or cluster/name (sim0001/n1). */
  instance(ref: string): SimInstance {
    const direct = this.model.byId.get(ref);
    if (direct) return direct;
    const [cluster, name] = ref.split('/');
    const found = this.model.byCluster.get(cluster ?? '')?.find((i) => i.name === name);
    if (!found) throw new Error(`no simulated instance "${ref}" (use host:port or cluster/name, e.g. ${this.clusters[0]?.name}/n1)`);
    return found;
  }

  /** The writable instance that replicates from nobody (what Regent should call the primary). */
  primaryOf(cluster: string): SimInstance | undefined {
    return this.model.byCluster.get(cluster)?.find((i) => i.liveness === 'up' && !i.readOnly && !i.channel);
  }

  /** kill -9: every session closed, new connections refused; its replicas report IO "Connecting". Returns when (ms since epoch). */
  crash(ref: string): { at: number } {
    const inst = this.instance(ref);
    const at = Date.now();
    this.model.crash(inst, at);
    this.servers.get(inst.id)!.crash();
    return { at };
  }

  /** SIGSTOP: sockets stay open and nothing is answered; its replicas go silent (no events, no heartbeats). */
  hang(ref: string): { at: number } {
    const inst = this.instance(ref);
    const at = Date.now();
    this.model.hang(inst, at);
    this.servers.get(inst.id)!.hang();
    return { at };
  }

  /** Restart after a crash (read_only=ON, replication started) or SIGCONT after a hang. */
  async recover(ref: string): Promise<{ at: number }> {
    const inst = this.instance(ref);
    if (inst.liveness === 'up') return { at: Date.now() };
    const wasCrashed = inst.liveness === 'crashed';
    const at = Date.now();
    this.model.recover(inst, at);
    await this.servers.get(inst.id)!.recover(wasCrashed);
    return { at };
  }

  /** Scripted replica trouble: IO thread forced to connecting/no (or back to normal), lag in seconds. */
  script(ref: string, s: { io?: ScriptedIo | 'normal'; lagSeconds?: number }): void {
    const inst = this.instance(ref);
    this.model.change(inst, () => {
      if (s.io !== undefined) inst.scriptedIo = s.io === 'normal' ? undefined : s.io;
      if (s.lagSeconds !== undefined) inst.lagSeconds = s.lagSeconds;
    });
  }

  describe(ref: string): InstanceDescription {
    const inst = this.instance(ref);
    const m = this.model;
    const link = m.link(inst);
    return {
      id: inst.id,
      cluster: inst.cluster,
      name: inst.name,
      liveness: inst.liveness,
      readOnly: inst.readOnly,
      source: inst.channel ? `${inst.channel.host}:${inst.channel.port}` : undefined,
      io: link?.io,
      sql: inst.channel?.sqlRunning,
      lagSeconds: inst.lagSeconds,
      gtidBinlogPos: formatGtid(m.own(inst)),
      gtidSlavePos: formatGtid(m.applied(inst)),
      heartbeats: inst.channel ? m.heartbeats(inst) : undefined,
      sessions: this.servers.get(inst.id)!.openSessions,
    };
  }

  /** Regent probes done so far: each probe ends with one SHOW ALL SLAVES STATUS. */
  get probes(): number {
    return this.stats.statements.get('probe:replica-status') ?? 0;
  }

  statsSnapshot(): { instances: number; openSessions: number; connectionsAccepted: number; authFailures: number; probes: number; statements: Record<string, number>; unknown: string[] } {
    let open = 0;
    for (const s of this.servers.values()) open += s.openSessions;
    return {
      instances: this.servers.size,
      openSessions: open,
      connectionsAccepted: this.stats.connectionsAccepted,
      authFailures: this.stats.authFailures,
      probes: this.probes,
      statements: Object.fromEntries(this.stats.statements),
      unknown: [...this.stats.unknown],
    };
  }

  writeRegentConfig(opts: Omit<RegentConfigOptions, 'manager' | 'replication'>): string {
    return writeRegentConfig(this.clusters, { ...opts, manager: this.manager, replication: this.replication });
  }
}
