import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import type { ClusterConfig, Config } from '../config/load.ts';
import type { Coordinator, DrainRequest, ManagerInfo, PeerDrainEvent } from '../coordination/coordinator.ts';
import { LocalCoordinator } from '../coordination/local.ts';
import { EtcdCoordinator } from '../coordination/etcd.ts';
import type { Decision } from '../decision/decision.ts';
import { dataPlanePaths } from '../router/dataplane.ts';
import { DataPlaneLink } from '../router/dataplane-link.ts';
import { routes } from '../router/host.ts';
import { diffClusters, settingsNeedingRestart, type ReloadReport } from '../inventory/diff.ts';
import { addInstanceToCluster, proposeCluster, registerCluster, registrationBlocked, unregisterCluster, type ClusterAddResult } from '../inventory/clusters.ts';
import { loadEffectiveConfig, type EffectiveConfig } from '../inventory/load.ts';
import type { ClusterOrigin } from '../inventory/merge.ts';
import type { Logger } from '../util/log.ts';
import type { SupervisorOptions } from './cluster-context.ts';
import { ClusterSupervisor } from './cluster-supervisor.ts';
import { createManagerMetrics, type ManagerMetrics } from './metrics.ts';
import { CredentialsWatch, refuseRejectedCredentials } from './credentials-watch.ts';

export function createCoordinator(config: Config, log: Logger): Coordinator {
  const c = config.coordination;
  return c.backend === 'etcd' ? new EtcdCoordinator(c, log) : new LocalCoordinator(config.stateDir);
}

export interface ManagerOptions {
  coordinator?: Coordinator;
  pauseAfterStep?: string;
  delayBeforeStep?: { step: string; ms: number };
  skipDrain?: boolean;
  withRouter?: boolean;
  observeOnly?: boolean;
  /** Where this manager's HTTP API answers (http://host:port), for the registry of managers. */
  apiAddress?: string;
}

/**
 * `regent run`: one supervisor per cluster sharing a coordinator. The endpoints live in the data
 * plane, a process of their own that outlives this one: the manager starts or adopts it and feeds
 * it each cluster's decisions and observations. The HTTP API is wired to the manager by the
 * composition root (cli/run.ts) through the interface the API declares.
 *
 * The clusters are not fixed: a reload (SIGHUP, `regent reload`, an etcd inventory change) adds,
 * removes and restarts clusters one by one; the others go on untouched. A cluster in the middle
 * of a recovery is changed only once the recovery ended.
 */
export class Manager {
  readonly supervisors = new Map<string, ClusterSupervisor>();
  readonly coordinator: Coordinator;
  readonly registry = new Registry();
  readonly observeOnly: boolean;
  /** Everything worth telling a live display: problems, steps, failovers, topology changes. */
  readonly events = new EventEmitter<{ event: [Record<string, unknown>] }>();
  readonly metrics: ManagerMetrics;
  readonly startedAt = Date.now();
  #config: Config;
  #origins = new Map<string, ClusterOrigin>();
  #dataPlane?: DataPlaneLink;
  #supervisorOptions: SupervisorOptions;
  #leaseTimer?: NodeJS.Timeout;
  #credentialsWatch?: CredentialsWatch;
  /** Reloads run one at a time, in order. */
  #reloads: Promise<unknown> = Promise.resolve();
  #inventoryTimer?: NodeJS.Timeout;
  #stopped = false;

  constructor(
    config: Config,
    readonly log: Logger,
    private readonly opts: ManagerOptions = {},
  ) {
    this.#config = config;
    this.coordinator = opts.coordinator ?? createCoordinator(config, log);
    this.observeOnly = opts.observeOnly ?? false;
    this.events.setMaxListeners(100);
    this.metrics = createManagerMetrics(this.registry, () => this.supervisors.values(), (cluster) => this.coordinator.isLeader(cluster));
    this.#supervisorOptions = {
      pauseAfterStep: opts.pauseAfterStep,
      delayBeforeStep: opts.delayBeforeStep,
      skipDrain: opts.skipDrain,
      drainSessions: async (cluster, primary, ms) => {
        const c = this.#config.clusters.find((x) => x.name === cluster);
        const link = this.#dataPlane;
        return link && c?.router.sql ? link.drain(cluster, primary, ms) : 0;
      },
      coordination: config.coordination,
      observeOnly: opts.observeOnly,
      stateDir: config.stateDir,
      leaseLostForMs: () => this.#leaseLostForMs(),
      addInstance: async (cluster, address) => {
        const coordinator = this.#config.coordination.backend === 'etcd' ? this.coordinator : undefined;
        const where = await addInstanceToCluster(this.#config, coordinator, this.#origins, cluster, address);
        // Not awaited: the reload restarts this cluster's supervisor, which waits for this action to end.
        void this.reload('replica added').catch((e: Error) => this.log.error({ event: 'reload_failed', trigger: 'replica added', err: e.message }, `replica registered but not taken on: ${e.message}`));
        return where;
      },
    };
  }

  /** The configuration in effect: the file, and with etcd the clusters registered at run time. */
  get config(): Config {
    return this.#config;
  }

  /** The link to the data-plane process, once any cluster has endpoints. */
  get dataPlane(): DataPlaneLink | undefined {
    return this.#dataPlane;
  }

  /** Where a cluster comes from: the configuration file or the inventory (etcd). */
  origins(): Map<string, ClusterOrigin> {
    return new Map(this.#origins);
  }

  #addCluster(c: ClusterConfig): ClusterSupervisor {
    for (const outcome of ['success', 'failed']) this.metrics.failovers.inc({ cluster: c.name, outcome }, 0);
    this.metrics.switchovers.inc({ cluster: c.name, outcome: 'success' }, 0);
    this.metrics.failoverSeconds.zero({ cluster: c.name });
    this.metrics.switchoverSeconds.zero({ cluster: c.name });
    const supervisor = new ClusterSupervisor(c, this.coordinator, this.log, this.#supervisorOptions);
    this.supervisors.set(c.name, supervisor);
    // Only a decision loaded from the shared state is news: a manager just started knows nothing
    // yet, and must not tell a data plane that has routed all along to hold.
    supervisor.decision.subscribe((d, change) => {
      const link = this.#dataPlane;
      return link && routes(c) && supervisor.decision.loaded ? link.decide(c.name, d, change) : undefined;
    });
    supervisor.on('analysis', () => {
      if (this.#dataPlane && routes(c)) this.#dataPlane.observe(c.name, supervisor.monitor.observations());
    });
    this.#forwardEvents(supervisor);
    return supervisor;
  }

  /** Stops watching a cluster, once no recovery runs on it. */
  async #removeCluster(name: string): Promise<void> {
    const s = this.supervisors.get(name);
    if (!s) return;
    if (s.acting) {
      this.log.warn({ event: 'cluster_change_waits', cluster: name }, `cluster ${name}: a recovery runs; its configuration changes once it ends`);
      while (s.acting) await new Promise((r) => setTimeout(r, 100));
    }
    this.supervisors.delete(name);
    await s.stop();
    for (const outcome of ['success', 'failed']) this.metrics.failovers.remove({ cluster: name, outcome });
    for (const outcome of ['success', 'failed', 'rolled_back']) this.metrics.switchovers.remove({ cluster: name, outcome });
    this.metrics.failoverSeconds.remove({ cluster: name });
    this.metrics.switchoverSeconds.remove({ cluster: name });
  }

  emitEvent(e: Record<string, unknown>): void {
    this.events.emit('event', { at: Date.now(), ...e });
  }

  onEvent(listener: (e: Record<string, unknown>) => void): () => void {
    this.events.on('event', listener);
    return () => this.events.off('event', listener);
  }

  clusterNames(): string[] {
    return [...this.supervisors.keys()];
  }

  /** This manager leads the cluster: it alone acts on it. */
  isLeader(cluster: string): boolean {
    return this.coordinator.isLeader(cluster);
  }

  readJournal(cluster?: string) {
    return this.coordinator.readJournal(cluster);
  }

  /** One cluster as the HTTP API sees it (api/manager-api.ts). */
  cluster(name: string) {
    const s = this.supervisors.get(name);
    if (!s) return undefined;
    const link = this.#dataPlane;
    const c = s.cluster;
    return {
      config: s.cluster,
      report: () => ({ ...s.report(), leader: this.coordinator.isLeader(c.name) ? this.managerId : undefined }),
      decision: (): Decision => s.decision.snapshot,
      blockedUntil: () => s.blockedUntil(),
      acting: () => s.acting,
      routing: () => (link && routes(c) ? { endpoints: { writer: c.router.writer, reader: c.router.reader, sql: c.router.sql?.listen }, table: link.table(c) } : undefined),
      observation: (id: string) => s.monitor.probers.get(id)?.latest,
      plan: () => s.manual.plan(),
      failover: (o: { force: boolean; trigger: string }) => s.manual.failover(o),
      switchover: (target: string | undefined, trigger: string) => s.manual.switchover(target, trigger),
      rejoin: (id: string, trigger: string) => s.manual.rejoin(id, trigger),
      repair: (id: string, action: 'retry' | 'reclone') => s.manual.repair(id, action),
      acknowledge: async (): Promise<Decision> => {
        await s.decision.acknowledge();
        s.schedule();
        return s.decision.snapshot;
      },
      setMaintenance: async (id: string, until: number | undefined) => {
        await s.decision.setMaintenance(id, until);
        s.schedule();
      },
    };
  }

  #forwardEvents(s: ClusterSupervisor): void {
    const cluster = s.cluster.name;
    let lastTopology = '';
    s.on('problem', ({ kind, problem }) => this.emitEvent({ type: `problem_${kind}`, cluster, problem }));
    s.on('step', (e) => this.emitEvent({ type: 'recovery_step', cluster, ...e }));
    s.on('action', (a) => {
      this.metrics.actions.inc({ cluster, action: a.action, outcome: a.outcome });
      this.emitEvent({ type: 'action', cluster, ...a });
    });
    s.on('failover', (r) => {
      this.metrics.failovers.inc({ cluster, outcome: r.ok ? 'success' : 'failed' });
      this.metrics.failoverSeconds.observe({ cluster }, r.durationMs / 1000);
      this.emitEvent({ type: 'failover', cluster, ok: r.ok, oldPrimary: r.oldPrimary, newPrimary: r.newPrimary, durationMs: r.durationMs, error: r.error });
    });
    s.on('switchover', (r) => {
      this.metrics.switchovers.inc({ cluster, outcome: r.ok ? 'success' : r.rolledBack ? 'rolled_back' : 'failed' });
      this.metrics.switchoverSeconds.observe({ cluster }, r.durationMs / 1000);
      this.emitEvent({ type: 'switchover', cluster, ok: r.ok, oldPrimary: r.oldPrimary, newPrimary: r.newPrimary, writePauseMs: r.writePauseMs, rolledBack: r.rolledBack, error: r.error });
    });
    s.on('rejoin', (r) => this.emitEvent({ type: 'rejoin', cluster, ok: r.ok, instance: r.instance, action: r.action, errant: r.errant, savedTo: r.savedTo, error: r.error }));
    s.on('repair', (r) => this.emitEvent({ type: 'repair', cluster, ...r }));
    let lastPublished = '';
    s.on('analysis', (a) => {
      // One event per visible change (roles, reachability, threads), not per probe.
      const observations = s.monitor.observations();
      const key = JSON.stringify([a.topology.primary, [...a.topology.sources], [...observations.values()].map((o) => [o.id, o.reachable, o.settings?.readOnly, o.replica?.ioThread, o.replica?.sqlThread])]);
      if (key !== lastTopology) {
        lastTopology = key;
        this.emitEvent({ type: 'topology', cluster, primary: a.topology.primary, decidedPrimary: s.decision.snapshot.decidedPrimary });
      }
      // Service discovery: the primary Regent decided on and the replicas fit for reads.
      if (!this.coordinator.isLeader(cluster) || this.observeOnly) return;
      const primary = s.decision.snapshot.decidedPrimary;
      const replicas = this.dataPlane && routes(s.cluster)
        ? this.dataPlane.table(s.cluster).readers
        : [...observations.values()].filter((o) => o.id !== primary && o.reachable && o.replica?.ioThread === 'yes' && o.replica.sqlThread).map((o) => o.id);
      const published = JSON.stringify([primary, replicas]);
      if (published === lastPublished) return;
      lastPublished = published;
      void this.coordinator.publishTopology(cluster, { primary, replicas }).catch((e: Error) => {
        lastPublished = '';
        this.log.warn({ event: 'discovery_publish_failed', cluster, err: e.message }, 'could not publish the topology');
      });
    });
  }

  get managerId(): string {
    const port = this.opts.apiAddress ? new URL(this.opts.apiAddress).port : '';
    return `${hostname()}:${process.pid}${port ? `:${port}` : ''}`;
  }

  async managers(): Promise<(ManagerInfo & { self: boolean; backend: string })[]> {
    try {
      return (await this.coordinator.managers()).map((m) => ({ ...m, self: m.id === this.managerId, backend: this.coordinator.backend }));
    } catch {
      // coordination unreachable: at least say who we are
      return [{ id: this.managerId, host: hostname(), pid: process.pid, startedAt: this.startedAt, leader: false, self: true, backend: this.coordinator.backend, api: this.opts.apiAddress }];
    }
  }

  /**
   * Primary-side lease (coordination.primaryLease): how long this manager has been cut off from
   * etcd beyond the lease TTL, undefined while in contact (or when the lease is not used).
   */
  #leaseLostForMs(): number | undefined {
    const c = this.#config.coordination;
    if (c.backend !== 'etcd' || !c.primaryLease || !(this.coordinator instanceof EtcdCoordinator) || this.observeOnly) return undefined;
    const age = this.coordinator.contactAgeMs();
    return age > c.leaseTtlSeconds * 1000 ? age : undefined;
  }

  async start(): Promise<void> {
    // With etcd, the clusters registered at run time join the file's.
    let effective: EffectiveConfig = { config: this.#config, origins: new Map(this.#config.clusters.map((c) => [c.name, 'file'])), skipped: [] };
    if (this.#config.coordination.backend === 'etcd' && this.#config.file) {
      try {
        effective = await loadEffectiveConfig(this.#config.file, this.coordinator);
      } catch (e) {
        if (e instanceof Error && e.name === 'ConfigError') throw e;
        this.log.warn({ event: 'inventory_unreadable', err: (e as Error).message }, 'cannot read the cluster inventory from etcd yet; starting with the clusters of the file, the others follow once etcd answers');
      }
    }
    this.#config = effective.config;
    this.#origins = effective.origins;
    this.#logSkipped(effective.skipped);
    for (const c of this.#config.clusters) this.#addCluster(c);
    if (this.opts.withRouter !== false && this.#config.clusters.some(routes)) this.#dataPlane = this.#newDataPlaneLink();
    this.coordinator.onLeadership((cluster, leader) => {
      this.emitEvent({ type: 'leadership', cluster, leader, manager: this.managerId });
      const s = this.supervisors.get(cluster);
      if (!s) return;
      if (leader) void s.becomeActive();
      else s.becomePassive();
    });
    // A cluster is handed to another manager only between recoveries.
    this.coordinator.setReleaseCheck((cluster) => !this.supervisors.get(cluster)?.acting);
    await this.coordinator.start({ id: this.managerId, host: hostname(), pid: process.pid, api: this.opts.apiAddress, startedAt: this.startedAt }, [...this.supervisors.keys()]);
    // After start: a coordinator that refused us (etcd authentication) must not keep a watch retrying.
    this.coordinator.onPeerDrain((e) => void this.#peerDrain(e));
    if (this.#config.coordination.backend === 'etcd' && this.#config.coordination.primaryLease && !this.observeOnly) {
      // Losing etcd is noticed by time, not by any probe: judge the clusters again while it lasts.
      this.#leaseTimer = setInterval(() => {
        if (this.#leaseLostForMs() !== undefined) for (const s of this.supervisors.values()) s.schedule();
      }, 250);
    }
    await Promise.all([...this.supervisors.values()].map((s) => s.start()));
    // Wait for the first probe round: credentials every instance rejects end the start (exit 2),
    // before a data plane is started for a configuration that cannot work.
    if (this.supervisors.size > 0) {
      const firstRoundMs = Math.max(...this.#config.clusters.map((c) => c.monitor.connectTimeoutMs + 2 * c.monitor.queryTimeoutMs)) + 500;
      await refuseRejectedCredentials(this.supervisors.values(), firstRoundMs);
    }
    this.#credentialsWatch = new CredentialsWatch({ [Symbol.iterator]: () => this.supervisors.values() }, this.log).start();
    // Decisions made until now wait in the link and go first once it is up.
    await this.#dataPlane?.start();
    // Every manager follows the inventory: a cluster registered or removed anywhere shows up here.
    this.coordinator.onInventoryChange(() => this.#inventoryChanged());
    if (this.supervisors.size === 0) this.log.warn({ event: 'no_clusters' }, 'no clusters yet: register one with `regent cluster add NAME --seed HOST:PORT`');
    this.log.info(
      { event: 'manager_started', observeOnly: this.observeOnly, clusters: [...this.supervisors.keys()], stateDir: this.#config.stateDir, coordination: this.coordinator.backend, dataPlane: this.#dataPlane?.pid, api: this.opts.apiAddress },
      'regent manager started',
    );
  }

  /**
   * Another manager switches a cluster over: this manager's data plane holds new writes for it as
   * the acting manager's does, drains its SQL sessions off the old primary and answers; when the
   * change is over it follows the outcome. A hold whose end never arrives (a watch lost while etcd
   * was away) ends by itself once the switchover could no longer be running.
   */
  async #peerDrain(e: PeerDrainEvent): Promise<void> {
    if ('ended' in e) {
      const s = this.supervisors.get(e.ended);
      if (s?.decision.snapshot.changing && !this.coordinator.isLeader(e.ended)) await s.decision.follow({ settle: true }).catch(() => undefined);
      return;
    }
    const req: DrainRequest = e.request;
    const s = this.supervisors.get(req.cluster);
    const c = this.#config.clusters.find((x) => x.name === req.cluster);
    if (!s || !c || this.#stopped || this.coordinator.isLeader(req.cluster)) return;
    if (s.decision.snapshot.changing?.planId === req.planId) return; // seen already (a watch that reconnected)
    await s.decision.hold('switchover', req.planId);
    const bound = Math.max(0, req.until - Date.now()) + c.switchover.catchUpTimeoutSeconds * 1000 + 5000;
    setTimeout(() => {
      if (s.decision.snapshot.changing?.planId === req.planId) void s.decision.follow({ settle: true }).catch(() => undefined);
    }, bound).unref();
    const link = this.#dataPlane;
    let open: number | undefined = 0;
    if (link && routes(c) && c.router.sql) open = await link.drain(req.cluster, req.oldPrimary, Math.max(0, req.until - Date.now())).catch(() => undefined);
    this.log.info({ event: 'peer_drain', cluster: req.cluster, planId: req.planId, by: req.by, open }, `switchover of ${req.cluster} by ${req.by}: this manager's data plane holds writes (${open ?? 'no answer'} session(s) still in a transaction)`);
    await this.coordinator.answerPeerDrain(req, open).catch(() => undefined);
  }

  #newDataPlaneLink(): DataPlaneLink {
    return new DataPlaneLink(() => this.#config, dataPlanePaths(this.#config, this.observeOnly ? 'proxy' : 'run'), this.log, this.managerId);
  }

  #logSkipped(skipped: EffectiveConfig['skipped']): void {
    for (const s of skipped) this.log.error({ event: 'inventory_entry_skipped', cluster: s.name, err: s.error }, `cluster ${s.name} from the inventory is left out: ${s.error}`);
  }

  /** Several inventory events in a burst (a cluster add writes once, a watch reconnect repeats) make one reload. */
  #inventoryChanged(): void {
    if (this.#stopped || this.#inventoryTimer) return;
    this.#inventoryTimer = setTimeout(() => {
      this.#inventoryTimer = undefined;
      void this.reload('inventory').catch((e: Error) => this.log.error({ event: 'reload_failed', trigger: 'inventory', err: e.message }, `inventory change not applied: ${e.message}`));
    }, 100);
  }

  /**
   * Reads the configuration again (the file, and with etcd the inventory) and applies the
   * difference. A file that does not load changes nothing: the error is thrown (ConfigError, one
   * line) for the caller to report.
   */
  reload(trigger: string): Promise<ReloadReport> {
    const run = this.#reloads.then(async () => {
      if (this.#stopped) throw new Error('the manager is stopping');
      const effective = await loadEffectiveConfig(this.#config.file, this.#config.coordination.backend === 'etcd' ? this.coordinator : undefined);
      return this.#apply(effective, trigger);
    });
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  async #apply(next: EffectiveConfig, trigger: string): Promise<ReloadReport> {
    const before = this.#config;
    const changes = diffClusters(before.clusters, next.config.clusters);
    const needsRestart = settingsNeedingRestart(before, next.config);
    this.#logSkipped(next.skipped);
    if (next.config.logLevel !== before.logLevel) this.log.level = next.config.logLevel;
    for (const name of [...changes.removed, ...changes.changed]) await this.#removeCluster(name);
    // Settings a running manager cannot take over keep their running values until a restart.
    this.#config = { ...next.config, api: before.api, coordination: before.coordination, stateDir: before.stateDir, routerProcesses: before.routerProcesses };
    this.#origins = next.origins;
    const fresh = [...changes.changed, ...changes.added].map((name) => this.#addCluster(next.config.clusters.find((c) => c.name === name)!));
    await Promise.all(fresh.map((s) => s.start()));
    // After the supervisors exist: leadership of a new cluster finds its supervisor.
    this.coordinator.setClusters([...this.supervisors.keys()]);
    if (!this.#dataPlane && this.opts.withRouter !== false && this.#config.clusters.some(routes)) {
      this.#dataPlane = this.#newDataPlaneLink();
      await this.#dataPlane.start();
    } else if (changes.added.length + changes.removed.length + changes.changed.length > 0) await this.#dataPlane?.reload();
    const report: ReloadReport = { ...changes, skipped: next.skipped, needsRestart };
    const summary = `added ${changes.added.join(', ') || 'none'}, removed ${changes.removed.join(', ') || 'none'}, changed ${changes.changed.join(', ') || 'none'}`;
    this.log.warn({ event: 'config_reloaded', trigger, ...report, unchanged: changes.unchanged.length }, `configuration reloaded (${trigger}): ${summary}${needsRestart.length ? `; ${needsRestart.join(', ')} changed and take effect on a restart` : ''}`);
    this.emitEvent({ type: 'config_reloaded', trigger, added: changes.added, removed: changes.removed, changed: changes.changed, needsRestart });
    return report;
  }

  /**
   * Crawls a topology from one server and registers it (the API's `cluster add`): into the YAML
   * with the local backend, the etcd inventory otherwise; then takes it on at once.
   */
  async addCluster(req: { name: string; seed: string; dryRun: boolean; acceptFindings: boolean }): Promise<ClusterAddResult> {
    const coordinator = this.#config.coordination.backend === 'etcd' ? this.coordinator : undefined;
    const proposal = await proposeCluster(this.#config, coordinator, req.name, req.seed);
    const blocked = registrationBlocked(proposal, req.acceptFindings);
    if (blocked || req.dryRun) return { proposal, registered: false, why: blocked ?? 'dry run' };
    const where = await registerCluster(this.#config, coordinator, proposal, { acceptFindings: req.acceptFindings, by: this.managerId });
    const report = await this.reload('cluster add');
    return { proposal, registered: true, where, report };
  }

  /** Stops managing a cluster everywhere (the API's `cluster remove`). */
  async removeCluster(name: string): Promise<{ where: string; report: ReloadReport }> {
    const coordinator = this.#config.coordination.backend === 'etcd' ? this.coordinator : undefined;
    const where = await unregisterCluster(this.#config, coordinator, this.#origins, name, this.managerId);
    return { where, report: await this.reload('cluster remove') };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#inventoryTimer) clearTimeout(this.#inventoryTimer);
    await this.#reloads;
    if (this.#leaseTimer) clearInterval(this.#leaseTimer);
    this.#credentialsWatch?.stop();
    await Promise.all([...this.supervisors.values()].map((s) => s.stop()));
    // The data plane goes on: clients keep their sessions while no manager runs.
    await this.dataPlane?.detach();
    await this.coordinator.close();
    this.log.info({ event: 'manager_stopped' }, 'regent manager stopped');
  }
}
