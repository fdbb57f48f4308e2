/**
 * The replication state the simulator reports, computed lazily from time: nothing ticks per
 * instance. Between two changes of configuration (a crash, a STOP SLAVE, a CHANGE MASTER...) every
 * value is a simple function of the time since the last change, so a change first freezes the
 * values of every instance of the cluster at that moment (a snapshot), then applies itself.
 *
 * One GTID domain (0), as the sandboxes use. Positions are MariaDB's domain-server-seq.
 */

export type Liveness = 'up' | 'crashed' | 'hung';

export interface Gtid {
  server: number;
  seq: number;
}

export function formatGtid(g: Gtid | undefined): string {
  return g ? `0-${g.server}-${g.seq}` : '';
}

/** Parses a one-domain position ("0-1-100"); other domains are not simulated and are ignored. */
export function parseGtid(text: string): Gtid | undefined {
  for (const part of text.split(',')) {
    const m = /^\s*0-(\d+)-(\d+)\s*$/.exec(part);
    if (m) return { server: Number(m[1]), seq: Number(m[2]) };
  }
  return undefined;
}

const maxGtid = (a: Gtid | undefined, b: Gtid | undefined): Gtid | undefined => (!a ? b : !b ? a : b.seq > a.seq ? b : a);

export interface Channel {
  host: string;
  port: number;
  user: string;
  heartbeatPeriodSec: number;
  connectRetrySec: number;
  useGtid: 'Slave_Pos' | 'Current_Pos';
  ioRunning: boolean;
  sqlRunning: boolean;
}

/** Values frozen at `at`; later values follow from them and the (unchanged) configuration. */
interface Snapshot {
  at: number;
  /** Last GTID in the server's own binary log (gtid_binlog_pos). */
  own?: Gtid;
  /** Last GTID the IO thread fetched (Gtid_IO_Pos). */
  received?: Gtid;
  /** Last GTID the SQL thread applied (gtid_slave_pos). */
  applied?: Gtid;
  heartbeats: number;
}

export interface LinkState {
  io: 'yes' | 'connecting' | 'no';
  /** Events and heartbeats arrive (the source is up and the thread runs). */
  delivering: boolean;
  ioErrno: number;
  ioError: string;
  ioState: string;
}

/** Scripted replica trouble on top of what the topology implies. */
export type ScriptedIo = 'connecting' | 'no' | undefined;

export class SimInstance {
  liveness: Liveness = 'up';
  livenessSince: number;
  readOnly: boolean;
  semiSyncMaster: boolean;
  semiSyncSlave: boolean;
  semiSyncTimeoutMs = 5000;
  channel?: Channel;
  scriptedIo: ScriptedIo;
  /** Seconds_Behind_Master while replicating; the SQL thread applies that far behind. */
  lagSeconds = 0;
  snap: Snapshot;
  /** The replication IO thread's connection id (what KILL CONNECTION names). */
  readonly ioThreadId: number;

  constructor(
    readonly id: string,
    readonly host: string,
    readonly port: number,
    readonly serverId: number,
    readonly cluster: string,
    readonly name: string,
    at: number,
    opts: { readOnly: boolean; own?: Gtid; channel?: Channel },
  ) {
    this.livenessSince = at;
    this.readOnly = opts.readOnly;
    this.semiSyncMaster = !opts.readOnly;
    this.semiSyncSlave = true;
    this.channel = opts.channel;
    this.snap = { at, own: opts.own, received: opts.channel ? opts.own : undefined, applied: opts.channel ? opts.own : undefined, heartbeats: 0 };
    this.ioThreadId = 5;
  }
}

/** Delay between a source's crash and its replicas' IO threads reporting "Connecting" (measured on real servers: ~10 ms). */
export const CRASH_NOTICE_MS = 5;

/**
 * Every simulated instance and the rules that derive what each reports at a given time.
 * `now` is injectable so tests can step time.
 */
export class ReplicationModel {
  readonly byId = new Map<string, SimInstance>();
  readonly byCluster = new Map<string, SimInstance[]>();
  /** Transactions per second a writable primary commits. */
  writeRate: number;
  /** slave_net_timeout: a replica of a hung source reconnects after this much silence. */
  slaveNetTimeoutSec: number;

  constructor(
    readonly now: () => number = Date.now,
    opts: { writeRate?: number; slaveNetTimeoutSec?: number } = {},
  ) {
    this.writeRate = opts.writeRate ?? 10;
    this.slaveNetTimeoutSec = opts.slaveNetTimeoutSec ?? 10;
  }

  add(inst: SimInstance): void {
    this.byId.set(inst.id, inst);
    const list = this.byCluster.get(inst.cluster) ?? [];
    list.push(inst);
    this.byCluster.set(inst.cluster, list);
  }

  sourceOf(inst: SimInstance): SimInstance | undefined {
    const c = inst.channel;
    return c ? this.byId.get(`${c.host}:${c.port}`) : undefined;
  }

  // ---- derived values ------------------------------------------------------------------------

  writing(inst: SimInstance): boolean {
    return inst.liveness === 'up' && !inst.readOnly && !inst.channel && this.writeRate > 0;
  }

  link(inst: SimInstance, t = this.now()): LinkState | undefined {
    const c = inst.channel;
    if (!c) return undefined;
    const refused = (since: string): LinkState => ({
      io: 'connecting',
      delivering: false,
      ioErrno: 2003,
      ioError: `error reconnecting to master '${c.user}@${c.host}:${c.port}' - retry-time: ${c.connectRetrySec}  maximum-retries: 100000  message: Can't connect to server on '${c.host}' (111 "Connection refused")`,
      ioState: since,
    });
    if (!c.ioRunning) return { io: 'no', delivering: false, ioErrno: 0, ioError: '', ioState: '' };
    if (inst.scriptedIo === 'no') return { io: 'no', delivering: false, ioErrno: 0, ioError: '', ioState: '' };
    if (inst.scriptedIo === 'connecting') return refused('Connecting to master');
    const src = this.sourceOf(inst);
    if (!src) return refused('Connecting to master');
    if (src.liveness === 'crashed') {
      if (t - src.livenessSince < CRASH_NOTICE_MS) return { io: 'yes', delivering: false, ioErrno: 0, ioError: '', ioState: 'Waiting for master to send event' };
      return refused('Reconnecting after a failed master event read');
    }
    if (src.liveness === 'hung') {
      // A frozen source keeps the TCP connection: the IO thread sees silence until slave_net_timeout.
      if (t - src.livenessSince < this.slaveNetTimeoutSec * 1000) return { io: 'yes', delivering: false, ioErrno: 0, ioError: '', ioState: 'Waiting for master to send event' };
      return {
        io: 'connecting',
        delivering: false,
        ioErrno: 2013,
        ioError: `error reconnecting to master '${c.user}@${c.host}:${c.port}' - retry-time: ${c.connectRetrySec}  maximum-retries: 100000  message: Lost connection to server at 'handshake: reading initial communication packet', system error: 110`,
        ioState: 'Reconnecting after a failed master event read',
      };
    }
    return { io: 'yes', delivering: true, ioErrno: 0, ioError: '', ioState: 'Waiting for master to send event' };
  }

  /** gtid_binlog_pos: the server's own writes, or (log_slave_updates) what it applied. */
  own(inst: SimInstance, t = this.now(), depth = 0): Gtid | undefined {
    const s = inst.snap;
    if (this.writing(inst)) {
      const n = Math.floor(((t - s.at) * this.writeRate) / 1000);
      const head = maxGtid(s.own, s.applied);
      if (n <= 0) return s.own;
      return { server: inst.serverId, seq: (head?.seq ?? 0) + n };
    }
    if (inst.channel?.sqlRunning && depth < 16) return maxGtid(s.own, this.applied(inst, t, depth));
    return s.own;
  }

  received(inst: SimInstance, t = this.now(), depth = 0): Gtid | undefined {
    const s = inst.snap;
    if (depth >= 16) return s.received;
    const l = this.link(inst, t);
    const src = this.sourceOf(inst);
    if (!l?.delivering || !src) return s.received;
    return maxGtid(s.received, this.own(src, t, depth + 1));
  }

  /** gtid_slave_pos: what the SQL thread applied, `lagSeconds` behind what was received. */
  applied(inst: SimInstance, t = this.now(), depth = 0): Gtid | undefined {
    const s = inst.snap;
    if (!inst.channel?.sqlRunning) return s.applied;
    const r = this.received(inst, t, depth);
    if (!r) return s.applied;
    // Without a running IO thread the relay log drains at once: lag only holds while events flow.
    const behind = this.link(inst, t)?.delivering ? Math.round(inst.lagSeconds * this.writeRate) : 0;
    const seq = Math.max(r.seq - behind, s.applied?.seq ?? 0);
    return seq === r.seq ? r : { server: r.server, seq };
  }

  heartbeats(inst: SimInstance, t = this.now()): number {
    const c = inst.channel;
    const s = inst.snap;
    if (!c || c.heartbeatPeriodSec <= 0 || !this.link(inst, t)?.delivering) return s.heartbeats;
    return s.heartbeats + Math.floor((t - s.at) / (c.heartbeatPeriodSec * 1000));
  }

  secondsBehind(inst: SimInstance, t = this.now()): number | null {
    const l = this.link(inst, t);
    if (!l || l.io !== 'yes' || !inst.channel?.sqlRunning) return null;
    return inst.lagSeconds;
  }

  semiSyncClients(inst: SimInstance, t = this.now()): number {
    let n = 0;
    for (const r of this.byCluster.get(inst.cluster) ?? []) {
      if (r.liveness !== 'up' || !r.semiSyncSlave || this.sourceOf(r) !== inst) continue;
      if (this.link(r, t)?.io === 'yes') n++;
    }
    return n;
  }

  // ---- changes -------------------------------------------------------------------------------

  /** Freezes every value of the cluster (and of the source's cluster) at `t` before a change. */
  snapshot(inst: SimInstance, t = this.now()): void {
    const groups = new Set([inst.cluster]);
    const src = this.sourceOf(inst);
    if (src) groups.add(src.cluster);
    const frozen: [SimInstance, Snapshot][] = [];
    for (const g of groups)
      for (const i of this.byCluster.get(g) ?? [])
        frozen.push([i, { at: t, own: this.own(i, t), received: this.received(i, t), applied: this.applied(i, t), heartbeats: this.heartbeats(i, t) }]);
    // Computed first, assigned after: each value must come from the old configuration.
    for (const [i, s] of frozen) i.snap = s;
  }

  change(inst: SimInstance, apply: () => void, t = this.now()): void {
    this.snapshot(inst, t);
    apply();
  }

  crash(inst: SimInstance, t = this.now()): void {
    this.change(inst, () => {
      inst.liveness = 'crashed';
      inst.livenessSince = t;
    }, t);
  }

  hang(inst: SimInstance, t = this.now()): void {
    this.change(inst, () => {
      inst.liveness = 'hung';
      inst.livenessSince = t;
    }, t);
  }

  /**
   * Back from a crash (a restarted server: read_only=ON from its config, replication threads
   * started if it had a source) or from a hang (SIGCONT: exactly as it was).
   */
  recover(inst: SimInstance, t = this.now()): void {
    this.change(inst, () => {
      if (inst.liveness === 'crashed') {
        inst.readOnly = true;
        if (inst.channel) {
          inst.channel.ioRunning = true;
          inst.channel.sqlRunning = true;
        }
      }
      inst.liveness = 'up';
      inst.livenessSince = t;
    }, t);
  }
}
