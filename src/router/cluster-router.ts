import type { ClusterConfig } from '../config/load.ts';
import { emptyDecision, maintenanceSet, type Decision } from '../decision/decision.ts';
import type { DecisionChange } from '../decision/record.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import type { Logger } from '../util/log.ts';
import type { RouterMetrics } from './metrics.ts';
import type { DataPlane } from './data-plane.ts';
import { ProxyListener } from './proxy-listener.ts';
import { decideReader, decideWriter, routingTable, type RouteDecision, type RoutingTable } from './routing-table.ts';
import { HealthEndpoints } from './health-endpoints.ts';
import { HaproxyAdmin } from './haproxy.ts';
import { SqlEndpoint, type SqlRouting } from './sql/endpoint.ts';

function parseHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/**
 * The writer and reader endpoints of one cluster, plus its HAProxy health endpoints and admin
 * socket. Two inputs: what Regent decided (`onDecision`, from the cluster's decision record: the
 * decided primary, a change under way, fences) and what the servers report (`observe`, every
 * analysis: reader health and lag).
 */
export class ClusterRouter {
  #writer?: ProxyListener;
  #reader?: ProxyListener;
  #health?: HealthEndpoints;
  #haproxy?: HaproxyAdmin;
  #sql?: SqlEndpoint;
  #table: RoutingTable;
  #decision: Decision;
  #observations = new Map<string, InstanceObservation>();
  #heldBecause?: string;
  #cursor = 0;
  /** The last instance the writer endpoint routed to (kept through holds). */
  #lastWriterTarget?: string;

  constructor(
    readonly cluster: ClusterConfig,
    private readonly dataPlane: DataPlane,
    private readonly metrics: RouterMetrics,
    private readonly log: Logger,
  ) {
    this.#decision = emptyDecision(cluster.name);
    this.#table = this.#compute();
  }

  get table(): RoutingTable {
    return this.#table;
  }

  get endpoints(): { writer?: string; reader?: string; sql?: string } {
    return { writer: this.cluster.router.writer, reader: this.cluster.router.reader, sql: this.cluster.router.sql?.listen };
  }

  async start(): Promise<void> {
    const r = this.cluster.router;
    const address = (id: string) => {
      const inst = this.cluster.instances.find((i) => i.id === id);
      return inst ? { host: inst.host, port: inst.port } : undefined;
    };
    const log = this.log.child({ cluster: this.cluster.name });
    // Series exist from the start (at zero), so dashboards and alerts see them before any traffic.
    for (const role of [r.writer ? 'writer' : undefined, r.reader ? 'reader' : undefined].filter((x): x is string => Boolean(x))) {
      const labels = { cluster: this.cluster.name, role };
      this.metrics.accepted.inc(labels, 0);
      this.metrics.refused.inc(labels, 0);
      this.metrics.backendChanges.inc(labels, 0);
      this.metrics.active.set(labels, 0);
      this.metrics.held.set(labels, 0);
      this.metrics.holdSeconds.zero(labels);
      for (const direction of ['from_client', 'to_client']) this.metrics.bytes.inc({ ...labels, direction }, 0);
    }
    if (r.writer) {
      this.#writer = new ProxyListener(this.cluster.name, 'writer', parseHostPort(r.writer), () => this.#decideWriter(), address, this.dataPlane, r.holdTimeoutMs, this.metrics, log);
      await this.#writer.start();
    }
    if (r.reader) {
      this.#reader = new ProxyListener(this.cluster.name, 'reader', parseHostPort(r.reader), () => this.#decideReader(), address, this.dataPlane, r.holdTimeoutMs, this.metrics, log);
      await this.#reader.start();
    }
    if (r.healthCheckBasePort) {
      this.#health = new HealthEndpoints(this.cluster, r.healthCheckListen, r.healthCheckBasePort, () => this.#table);
      await this.#health.start();
    }
    // A pipe process (re)started: connections held for want of one can go now.
    this.dataPlane.on('ready', this.#releaseHeld);
    if (r.haproxySocket) this.#haproxy = new HaproxyAdmin(r.haproxySocket, this.cluster, log);
    const sql = this.cluster.sql;
    if (r.sql && sql) {
      this.#sql = new SqlEndpoint({
        cluster: this.cluster.name,
        listen: parseHostPort(r.sql.listen),
        settings: { ...sql.settings, holdTimeoutMs: r.holdTimeoutMs },
        serviceAccount: this.cluster.accounts.router,
        passwords: sql.passwords,
        clientTls: sql.tls,
        backendTls: sql.backendTls,
        address,
        instances: this.cluster.instances.map((i) => i.id),
        metrics: this.metrics.sql,
        log,
      });
      this.#sql.update(this.#sqlRouting());
      await this.#sql.start();
    }
    log.info({ event: 'router_started', writer: r.writer, reader: r.reader, health: r.healthCheckBasePort, haproxy: r.haproxySocket }, `router of ${this.cluster.name} started`);
  }

  #releaseHeld = (): void => {
    this.#writer?.release();
    this.#reader?.release();
  };

  async stop(): Promise<void> {
    this.dataPlane.off('ready', this.#releaseHeld);
    await Promise.all([this.#writer?.stop(), this.#reader?.stop(), this.#health?.stop(), this.#sql?.stop()]);
  }

  /** The latest observations (every analysis): reader health and lag, the primary's reachability. */
  observe(observations: Map<string, InstanceObservation>): void {
    this.#observations = observations;
    this.#apply();
  }

  /**
   * A decision changed. A fence holds new writers at once and resolves only when every open
   * connection to the fenced instance is closed (the pipe processes have done it); a promotion
   * releases the held writers to the new primary and ends what is left open to the previous one.
   *
   * The same holds whatever brought the news: a router that follows the shared state (its manager
   * is a follower, or gone) learns a fence and a new primary by `follow`, and must close what it
   * has open to them just the same. A write waiting in a frozen old primary would otherwise be
   * acknowledged when the server wakes up, after another manager promoted a replica.
   */
  async onDecision(d: Decision, change: DecisionChange): Promise<void> {
    const before = this.#decision;
    this.#decision = d;
    this.#apply();
    const fenced = new Set([...d.fenced].filter((id) => !before.fenced.has(id)));
    if (change.verb === 'fence') fenced.add(change.instance);
    for (const instance of fenced) {
      const closed = await this.#closeAllTo(instance);
      this.log.warn({ event: 'router_fenced', cluster: this.cluster.name, instance, closed, verb: change.verb }, `router: writes to ${instance} stopped, ${closed} connection(s) closed`);
    }
    const previous = new Set([before.decidedPrimary, change.verb === 'promote' ? change.previous : undefined]);
    for (const id of previous) if (id && id !== d.decidedPrimary && !fenced.has(id)) await this.#writer?.closeConnectionsTo(id);
  }

  /**
   * Holds new writers (and statements that need the primary) for a reason outside the decision:
   * the data plane lost every source of decisions for longer than it may trust the last one.
   * undefined lets them go again.
   */
  holdWriters(reason: string | undefined): void {
    if (reason === this.#heldBecause) return;
    this.#heldBecause = reason;
    this.#apply();
  }

  get decision(): Decision {
    return this.#decision;
  }

  /** The observations routing works from (an upgrade hands them to the next data plane). */
  get observations(): Map<string, InstanceObservation> {
    return this.#observations;
  }

  /**
   * The SQL endpoint's sessions are out of their transactions on `primary` (or `timeoutMs`
   * passed): how many still have one open. A switchover asks before it sets read_only.
   */
  async drain(primary: string, timeoutMs: number): Promise<number> {
    return this.#sql ? this.#sql.drain(primary, timeoutMs) : 0;
  }

  /** Client sessions open through this cluster's endpoints (L4 piped or held, SQL). */
  get sessions(): number {
    return (this.#writer?.sessions ?? 0) + (this.#reader?.sessions ?? 0) + (this.#sql?.sessionCount ?? 0);
  }

  async #closeAllTo(instance: string): Promise<number> {
    const counts = await Promise.all([this.#writer?.closeConnectionsTo(instance), this.#reader?.closeConnectionsTo(instance)]);
    return counts.reduce<number>((a, b) => a + (b ?? 0), 0);
  }

  #compute(): RoutingTable {
    const d = this.#decision;
    return routingTable({
      decidedPrimary: d.decidedPrimary,
      decidedAt: d.decidedAt || undefined,
      changing: d.changing !== undefined,
      fenced: d.fenced,
      heldBecause: this.#heldBecause,
      observations: this.#observations,
      instances: this.cluster.instances.map((i) => i.id),
      maintenance: maintenanceSet(d, Date.now()),
      settings: this.cluster.router,
    });
  }

  #apply(): void {
    const before = this.#table;
    this.#table = this.#compute();
    const w0 = JSON.stringify(before.writer);
    const w1 = JSON.stringify(this.#table.writer);
    if (w0 !== w1) {
      this.metrics.backendChanges.inc({ cluster: this.cluster.name, role: 'writer' });
      this.log.info({ event: 'router_writer_changed', cluster: this.cluster.name, writer: this.#table.writer }, `writer endpoint: ${'target' in this.#table.writer ? `-> ${this.#table.writer.target}` : `holding (${this.#table.writer.reason})`}`);
      // A writer target that changed means connections to the previous one must not live on,
      // also when a hold came in between (primary unreachable, then another one decided).
      if ('target' in this.#table.writer) {
        const last = this.#lastWriterTarget;
        this.#lastWriterTarget = this.#table.writer.target;
        if (last !== undefined && last !== this.#table.writer.target) void this.#writer?.closeConnectionsTo(last);
      }
    }
    if (JSON.stringify(before.readers) !== JSON.stringify(this.#table.readers) || before.readerFallback !== this.#table.readerFallback) {
      this.metrics.backendChanges.inc({ cluster: this.cluster.name, role: 'reader' });
      this.log.info({ event: 'router_readers_changed', cluster: this.cluster.name, readers: this.#table.readers, fallback: this.#table.readerFallback, excluded: this.#table.excluded }, 'reader pool changed');
    }
    this.#writer?.release();
    this.#reader?.release();
    this.#sql?.update(this.#sqlRouting());
    void this.#haproxy?.push(this.#table);
  }

  /** The SQL endpoint's snapshot: the table, and each instance's applied GTIDs and lag from the observations. */
  #sqlRouting(): SqlRouting {
    const applied: SqlRouting['applied'] = new Map();
    const lag = new Map<string, number | null>();
    let flavor: SqlRouting['flavor'] = 'mariadb';
    for (const o of this.#observations.values()) {
      if (o.flavor) flavor = o.flavor;
      if (o.gtids) applied.set(o.id, o.gtids.executed);
      if (o.replica) lag.set(o.id, o.replica.secondsBehind);
    }
    return { table: this.#table, applied, lag, flavor, fenced: this.#decision.fenced, changing: this.#decision.changing !== undefined, stale: this.#heldBecause !== undefined };
  }

  #decideWriter(): RouteDecision {
    return decideWriter(this.#table);
  }

  #decideReader(): RouteDecision {
    const { decision, cursor } = decideReader(this.#table, this.cluster.router.readerPolicy, this.#cursor, this.#reader?.active ?? new Map());
    this.#cursor = cursor;
    return decision;
  }
}
