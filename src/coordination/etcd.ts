import { createHash } from 'node:crypto';
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, EtcdUserNotFoundError, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../util/log.ts';
import type { Secret } from '../util/secret.ts';
import type { ClusterState, Coordinator, DrainRequest, InventoryEntry, JournalEntry, ManagerInfo, PeerDrain, PeerDrainEvent } from './coordinator.ts';
import { NotLeaderError, EtcdAccessRefused } from '../errors.ts';



function accessRefused(e: unknown, settings: EtcdSettings): EtcdAccessRefused | undefined {
  const who = settings.auth ? `user "${settings.auth.user}"` : 'an anonymous client (no manager.coordination.auth set)';
  if (e instanceof EtcdAuthenticationFailedError || e instanceof EtcdUserNotFoundError)
    return new EtcdAccessRefused(`etcd at ${settings.endpoints.join(', ')} refused ${who}: ${e.message}; check manager.coordination.auth`);
  if (e instanceof EtcdPermissionDeniedError)
    return new EtcdAccessRefused(`etcd at ${settings.endpoints.join(', ')} denied ${who} access to ${settings.prefix}: ${e.message}; grant it a role with readwrite on the prefix`);
  return undefined;
}

export interface EtcdSettings {
  endpoints: string[];
  prefix: string;
  leaseTtlSeconds: number;
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  auth?: { user: string; password: Secret };
}

/** Rendezvous score: each manager ranks the clusters its own way, the same way every time. */
function preference(manager: string, cluster: string): string {
  return createHash('sha1').update(`${manager}\0${cluster}`).digest('hex');
}

interface LeaderKey {
  manager: string;
  createRevision: string;
  lease: string;
}

/**
 * Several managers, each cluster led by one of them, through etcd. A manager leads a cluster while
 * `<prefix>/_leaders/<cluster>` exists with its id, created with its lease. Managers campaign only
 * while they lead fewer than their fair share (ceil(clusters / live managers)) and give a cluster
 * up, between recoveries, when they lead more (a manager joined); a dead manager's keys vanish with
 * its lease and the others take its clusters over. Every write a leader makes for a cluster
 * (journal, state, discovery) is an etcd transaction that also checks that cluster's leader key
 * still carries its id and creation revision, so a manager that lost a cluster (lease expired,
 * partitioned) cannot write anything for it once another leads it. It also stops acting on its
 * own: leadership counts only while the last successful lease renewal is younger than the TTL.
 *
 * Keys: <prefix>/_leaders/<cluster>, <prefix>/_managers/<id>, <prefix>/_journal/<cluster>/<time>-<seq>,
 * <prefix>/_state/<cluster>, a switchover's drain request <prefix>/_drain/<cluster> and the answers
 * <prefix>/_drained/<cluster>/<planId>/<manager> (both on their writer's lease), and for clients
 * <prefix>/<cluster>/primary and .../replicas.
 */
export class EtcdCoordinator implements Coordinator {
  readonly backend = 'etcd' as const;
  #client: Etcd3;
  #lease?: Lease;
  #leaseId?: string;
  #self?: Omit<ManagerInfo, 'leader'>;
  #clusters: string[] = [];
  /** Clusters this manager leads, with the creation revision of its leader key. */
  #leading = new Map<string, string>();
  #leaderSince?: number;
  /** When etcd last renewed our lease, at the latest: the send time of the keepalive it answered. */
  #renewedAt = 0;
  /** Send times of the keepalives on the current stream not answered yet, oldest first. */
  #keepalivesInFlight: number[] = [];
  /** Clusters whose leadership was logged (leader_elected) and not yet its end. */
  #announced = new Set<string>();
  #listeners: ((cluster: string, leader: boolean) => void)[] = [];
  #watchers: Watcher[] = [];
  #closed = false;
  #seq = 0;
  /** What each listener was last told, per cluster. */
  #told = new Map<string, boolean>();
  #timer?: NodeJS.Timeout;
  #reconciling = false;
  #again = false;
  #mayRelease: (cluster: string) => boolean = () => true;

  constructor(
    readonly settings: EtcdSettings,
    private readonly log: Logger,
  ) {
    this.#client = new Etcd3({
      hosts: settings.endpoints,
      credentials: settings.tls && { rootCertificate: settings.tls.ca, certChain: settings.tls.cert, privateKey: settings.tls.key },
      auth: settings.auth && { username: settings.auth.user, password: settings.auth.password.reveal() },
      dialTimeout: 1000,
      // Bounded calls: with etcd gone, a manager must notice within the TTL, not hang.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + Math.min(2000, (settings.leaseTtlSeconds * 1000) / 2) }),
    });
  }

  #key(...parts: string[]): string {
    return [this.settings.prefix.replace(/\/$/, ''), ...parts].join('/');
  }

  async start(self: Omit<ManagerInfo, 'leader'>, clusters: string[]): Promise<void> {
    this.#self = self;
    this.#clusters = [...clusters];
    await this.checkAccess();
    await this.#newLease();
    this.#watch();
    // Leadership is re-evaluated on a timer too: expiry of our own lease is noticed without etcd,
    // even while a call to an unreachable etcd is still waiting for its deadline.
    this.#timer = setInterval(() => {
      this.#tell();
      this.#nudge();
    }, 250);
    this.#nudge();
  }

  setClusters(clusters: string[]): void {
    this.#clusters = [...clusters];
    this.#nudge();
  }

  setReleaseCheck(mayRelease: (cluster: string) => boolean): void {
    this.#mayRelease = mayRelease;
  }

  /**
   * One read under the prefix: throws EtcdAccessRefused when etcd answers with an authentication
   * or permission error (a configuration problem), and returns quietly when etcd is merely
   * unreachable (the manager starts and keeps trying, as it does when etcd goes away later).
   */
  async checkAccess(): Promise<void> {
    try {
      await this.#client.get(this.#key('_managers', '')).string();
    } catch (e) {
      const refused = accessRefused(e, this.settings);
      if (refused) {
        this.#client.close();
        throw refused;
      }
    }
  }

  async #newLease(): Promise<void> {
    const lease = this.#client.lease(this.settings.leaseTtlSeconds, { autoKeepAlive: true });
    this.#lease = lease;
    // Freshness counts from when a keepalive was sent, not from when its answer arrived: etcd
    // renewed the lease somewhere in between, and an answer read late (a busy event loop) must not
    // stretch this manager's leadership past the moment etcd may give the cluster to another.
    lease.on('keepaliveEstablished', () => {
      this.#keepalivesInFlight = [];
    });
    lease.on('keepaliveFired', () => {
      this.#keepalivesInFlight.push(Date.now());
    });
    lease.on('keepaliveSucceeded', () => {
      this.#renewedAt = this.#keepalivesInFlight.shift() ?? this.#renewedAt;
      this.#tell(); // leadership kept through a short etcd outage counts again from now
    });
    lease.on('lost', (err) => {
      if (this.#lease !== lease || this.#closed) return;
      this.log.warn({ event: 'etcd_lease_lost', err: err.message }, 'etcd lease lost; leading nothing until a new lease is granted');
      this.#leading.clear();
      this.#lease = undefined;
      this.#leaseId = undefined;
      this.#tell();
      setTimeout(() => void this.#newLease().catch(() => undefined), 500);
    });
    try {
      const askedAt = Date.now();
      this.#leaseId = await lease.grant();
      this.#renewedAt = askedAt;
      await lease.put(this.#key('_managers', this.#self!.id)).value(JSON.stringify(this.#self));
    } catch (e) {
      this.log.warn({ event: 'etcd_unavailable', err: (e as Error).message }, 'etcd not reachable; retrying');
    }
  }

  /** Leader keys vanishing (a manager died, one gave a cluster up) and managers joining or leaving: look again at once. */
  #watch(): void {
    for (const prefix of [this.#key('_leaders', ''), this.#key('_managers', '')])
      this.#watchPrefix(prefix, (w) => {
        w.on('delete', () => this.#nudge());
        w.on('put', () => this.#nudge());
      });
  }

  /** A watch on `prefix` kept until close; `attach` adds its handlers (the client reconnects by itself). */
  #watchPrefix(prefix: string, attach: (w: Watcher) => void): void {
    void this.#client
      .watch()
      .prefix(prefix)
      .create()
      .then((w) => {
        if (this.#closed) return void w.cancel();
        this.#watchers.push(w);
        w.on('error', () => undefined);
        attach(w);
      })
      .catch(() => undefined);
  }

  #nudge(): void {
    if (this.#reconciling) {
      this.#again = true;
      return;
    }
    this.#reconciling = true;
    void (async () => {
      try {
        do {
          this.#again = false;
          await this.#reconcile();
        } while (this.#again && !this.#closed);
      } finally {
        this.#reconciling = false;
      }
    })();
  }

  /**
   * Compares what this manager believes it leads with etcd, then campaigns for free clusters while
   * under its fair share, or gives one up while over it.
   */
  async #reconcile(): Promise<void> {
    if (this.#closed) return;
    if (!this.#fresh() || !this.#leaseId) {
      this.#tell();
      return;
    }
    let leaders: Map<string, LeaderKey>;
    let managers: string[];
    try {
      const [l, m] = await Promise.all([this.#client.getAll().prefix(this.#key('_leaders', '')).exec(), this.#client.getAll().prefix(this.#key('_managers', '')).keys()]);
      leaders = new Map(
        l.kvs.map((kv) => [kv.key.toString().slice(this.#key('_leaders', '').length), { manager: kv.value.toString(), createRevision: String(kv.create_revision), lease: String(kv.lease) }]),
      );
      managers = m;
    } catch {
      this.#tell(); // etcd unreachable: freshness decides
      return;
    }
    const me = this.#self!.id;
    // What etcd says is ours (a key we created on this lease), and nothing else.
    for (const [cluster, rev] of [...this.#leading]) {
      const k = leaders.get(cluster);
      if (!k || k.manager !== me || k.createRevision !== rev) this.#leading.delete(cluster);
    }
    for (const [cluster, k] of leaders) if (k.manager === me && k.lease === this.#leaseId && !this.#leading.has(cluster)) this.#leading.set(cluster, k.createRevision);
    const wanted = new Set(this.#clusters);
    // Clusters no longer in the inventory are let go.
    for (const cluster of [...this.#leading.keys()]) if (!wanted.has(cluster)) await this.#release(cluster);
    const share = Math.ceil(this.#clusters.length / Math.max(1, managers.length));
    if (this.#leading.size < share) {
      const free = this.#clusters.filter((c) => !leaders.has(c)).sort((a, b) => (preference(me, b) < preference(me, a) ? -1 : 1));
      for (const cluster of free) {
        if (this.#leading.size >= share) break;
        await this.#campaign(cluster);
      }
    } else if (this.#leading.size > share) {
      // One at a time, the one this manager cares least for, and never in the middle of a recovery.
      const mine = [...this.#leading.keys()].filter((c) => this.#mayRelease(c)).sort((a, b) => (preference(me, a) < preference(me, b) ? -1 : 1));
      if (mine[0]) await this.#release(mine[0]);
    }
    this.#tell();
  }

  async #campaign(cluster: string): Promise<void> {
    const key = this.#key('_leaders', cluster);
    try {
      const res = await this.#client.if(key, 'Create', '==', 0).then(this.#client.put(key).value(this.#self!.id).lease(this.#leaseId!)).commit();
      if (!res.succeeded) return;
      this.#leading.set(cluster, String(res.header.revision));
      this.#leaderSince ??= Date.now();
      this.#announced.add(cluster);
      this.log.warn({ event: 'leader_elected', cluster, manager: this.#self!.id, revision: String(res.header.revision) }, `this manager now leads cluster ${cluster}`);
    } catch {
      // etcd unreachable: try again next time
    }
  }

  /** Stops acting on the cluster first, then removes its leader key (if it is still ours). */
  async #release(cluster: string): Promise<void> {
    const rev = this.#leading.get(cluster);
    this.#leading.delete(cluster);
    this.#tell();
    if (rev === undefined) return;
    const key = this.#key('_leaders', cluster);
    try {
      await this.#client.if(key, 'Create', '==', Number(rev)).and(key, 'Value', '==', this.#self!.id).then(this.#client.delete().key(key)).commit();
      this.log.warn({ event: 'leadership_released', cluster, manager: this.#self!.id }, `cluster ${cluster} handed over: another manager may lead it`);
    } catch {
      // its lease will expire anyway
    }
  }

  /** A margin below the TTL: stop acting before etcd could hand leadership to someone else. */
  #freshForMs(): number {
    return this.settings.leaseTtlSeconds * 1000 * 0.8;
  }

  #fresh(): boolean {
    return Date.now() - this.#renewedAt < this.#freshForMs() && !this.#closed;
  }

  /** Tells the listeners of every change in what this manager leads. */
  #tell(): void {
    for (const cluster of new Set([...this.#told.keys(), ...this.#leading.keys(), ...this.#announced])) {
      const leader = this.isLeader(cluster);
      // The log tells every start and end of acting (the chaos suite checks that no two managers'
      // intervals overlap), including a key kept through a short etcd outage.
      if (leader && !this.#announced.has(cluster)) {
        this.#announced.add(cluster);
        this.log.warn({ event: 'leader_elected', cluster, manager: this.#self?.id, revision: this.#leading.get(cluster), regained: true }, `this manager leads cluster ${cluster} again (its lease was renewed in time)`);
      }
      if (!leader && this.#announced.has(cluster)) {
        this.#announced.delete(cluster);
        // When it stopped counting itself leader: at the lapse of freshness, which may be earlier
        // than this line (the timer or an etcd call noticed it late).
        const stoppedAt = this.#fresh() ? Date.now() : Math.min(Date.now(), this.#renewedAt + this.#freshForMs());
        this.log.warn({ event: 'leadership_lost', cluster, manager: this.#self?.id, stoppedAt }, `this manager no longer leads cluster ${cluster}: it stops acting on it`);
        // Our key may still exist (renewals failed but the lease did not expire yet): forget it so
        // we campaign properly once etcd answers again.
        if (Date.now() - this.#renewedAt >= this.settings.leaseTtlSeconds * 1000) this.#leading.delete(cluster);
      }
      if (this.#told.get(cluster) === leader) continue;
      this.#told.set(cluster, leader);
      for (const l of this.#listeners) l(cluster, leader);
    }
  }

  /** How long since etcd last confirmed this manager's lease (ms); 0 before the first grant (nothing known). */
  contactAgeMs(): number {
    return this.#renewedAt === 0 ? 0 : Date.now() - this.#renewedAt;
  }

  isLeader(cluster: string): boolean {
    return this.#leading.has(cluster) && this.#fresh();
  }

  leads(): string[] {
    return [...this.#leading.keys()].filter((c) => this.isLeader(c)).sort();
  }

  onLeadership(listener: (cluster: string, leader: boolean) => void): void {
    this.#listeners.push(listener);
  }

  async managers(): Promise<ManagerInfo[]> {
    const [all, leaders] = await Promise.all([this.#client.getAll().prefix(this.#key('_managers', '')).strings(), this.#client.getAll().prefix(this.#key('_leaders', '')).strings()]);
    const leads = new Map<string, string[]>();
    for (const [key, manager] of Object.entries(leaders)) leads.set(manager, [...(leads.get(manager) ?? []), key.slice(this.#key('_leaders', '').length)].sort());
    return Promise.all(
      Object.values(all).map(async (v) => {
        const m = JSON.parse(v) as ManagerInfo;
        const isSelf = m.id === this.#self?.id;
        const mine = leads.get(m.id) ?? [];
        let remaining: number | undefined;
        const kv = (await this.#client.get(this.#key('_managers', m.id)).exec()).kvs[0];
        if (kv && String(kv.lease) !== '0') remaining = Number((await this.#client.leaseClient.leaseTimeToLive({ ID: kv.lease })).TTL);
        return {
          ...m,
          leader: mine.length > 0,
          leads: mine,
          leaderSince: isSelf ? this.#leaderSince : undefined,
          leaseRenewedAt: isSelf ? this.#renewedAt : undefined,
          leaseRemainingSeconds: remaining,
          leaseTtlSeconds: this.settings.leaseTtlSeconds,
        };
      }),
    );
  }

  /** A write that only succeeds while we still hold the cluster's leader key we created. */
  async #fencedPut(cluster: string, pairs: [string, string][]): Promise<void> {
    const rev = this.#leading.get(cluster);
    if (!this.isLeader(cluster) || rev === undefined) throw new NotLeaderError(`this manager does not lead cluster ${cluster}: refusing to write to etcd`);
    const key = this.#key('_leaders', cluster);
    const res = await this.#client
      .if(key, 'Create', '==', Number(rev))
      .and(key, 'Value', '==', this.#self!.id)
      .then(...pairs.map(([k, v]) => this.#client.put(k).value(v)))
      .commit();
    if (!res.succeeded) {
      this.#leading.delete(cluster);
      this.#tell();
      throw new NotLeaderError(`etcd rejected the write: another manager leads cluster ${cluster} now`);
    }
  }

  async appendJournal(...entries: JournalEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const cluster = entries[0]!.cluster;
    if (entries.some((e) => e.cluster !== cluster)) throw new Error('journal entries of several clusters in one write');
    const pairs: [string, string][] = entries.map((e) => [this.#key('_journal', cluster, `${String(e.at).padStart(15, '0')}-${String(++this.#seq).padStart(6, '0')}-${this.#self?.id ?? ''}`), JSON.stringify(e)]);
    await this.#fencedPut(cluster, pairs);
  }

  async readJournal(cluster?: string): Promise<JournalEntry[]> {
    const prefix = cluster ? this.#key('_journal', cluster, '') : this.#key('_journal', '');
    const all = await this.#client.getAll().prefix(prefix).sort('Key', 'Ascend').strings();
    return Object.entries(all)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, v]) => JSON.parse(v) as JournalEntry);
  }

  async getClusterState(cluster: string): Promise<ClusterState> {
    const v = await this.#client.get(this.#key('_state', cluster)).string();
    return v ? (JSON.parse(v) as ClusterState) : {};
  }

  async updateClusterState(cluster: string, update: (s: ClusterState) => ClusterState): Promise<ClusterState> {
    const next = update(await this.getClusterState(cluster));
    await this.#fencedPut(cluster, [[this.#key('_state', cluster), JSON.stringify(next)]]);
    return next;
  }

  async readInventory(): Promise<InventoryEntry[]> {
    const all = await this.#client.getAll().prefix(this.#key('_inventory', '')).strings();
    return Object.values(all).map((v) => JSON.parse(v) as InventoryEntry);
  }

  /** Operator input, not a leader's decision: any manager or CLI may write it (not fenced). */
  async writeInventory(entry: InventoryEntry): Promise<void> {
    await this.#client.put(this.#key('_inventory', entry.name)).value(JSON.stringify(entry));
  }

  async deleteInventory(name: string): Promise<void> {
    await this.#client.delete().key(this.#key('_inventory', name));
  }

  onInventoryChange(listener: () => void): void {
    this.#watchPrefix(this.#key('_inventory', ''), (w) => {
      w.on('put', () => listener());
      w.on('delete', () => listener());
      // A watch that reconnects after etcd was away may have missed changes: look again.
      w.on('connected', () => listener());
    });
  }

  async drainPeers(r: Omit<DrainRequest, 'by'>): Promise<PeerDrain> {
    const me = this.#self!.id;
    const managersPrefix = this.#key('_managers', '');
    const peers = (await this.#client.getAll().prefix(managersPrefix).keys()).map((k) => k.slice(managersPrefix.length)).filter((id) => id !== me);
    if (peers.length === 0) return { asked: 0, answered: 0, open: 0 };
    const req: DrainRequest = { ...r, by: me };
    const answersPrefix = this.#key('_drained', r.cluster, r.planId, '');
    const answers = new Map<string, number>();
    let allIn!: () => void;
    const done = new Promise<void>((resolve) => (allIn = resolve));
    const note = (key: string, value: string) => {
      const id = key.slice(answersPrefix.length);
      if (!peers.includes(id)) return;
      let open: number | undefined;
      try {
        open = (JSON.parse(value) as { open?: number }).open;
      } catch {
        open = undefined;
      }
      answers.set(id, typeof open === 'number' ? open : -1);
      if (answers.size === peers.length) allIn();
    };
    // Watching before asking: no answer can come before the watch is there.
    const watcher = await this.#client.watch().prefix(answersPrefix).create();
    watcher.on('put', (kv) => note(kv.key.toString(), kv.value.toString()));
    watcher.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      // Fenced (only the cluster's leader asks) and on our lease (it ends if we die).
      const rev = this.#leading.get(r.cluster);
      const leaderKey = this.#key('_leaders', r.cluster);
      if (!this.isLeader(r.cluster) || rev === undefined || !this.#leaseId) throw new NotLeaderError(`this manager does not lead cluster ${r.cluster}: it asks no one to drain`);
      const res = await this.#client
        .if(leaderKey, 'Create', '==', Number(rev))
        .and(leaderKey, 'Value', '==', me)
        .then(this.#client.put(this.#key('_drain', r.cluster)).value(JSON.stringify(req)).lease(this.#leaseId))
        .commit();
      if (!res.succeeded) throw new NotLeaderError(`etcd rejected the drain request: another manager leads cluster ${r.cluster} now`);
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, r.until - Date.now()))))]);
    } finally {
      if (timer) clearTimeout(timer);
      await watcher.cancel().catch(() => undefined);
    }
    return { asked: peers.length, answered: answers.size, open: [...answers.values()].reduce((a, b) => a + Math.max(0, b), 0) };
  }

  async endPeerDrain(cluster: string): Promise<void> {
    await this.#client.delete().key(this.#key('_drain', cluster));
    await this.#client.delete().prefix(this.#key('_drained', cluster, ''));
  }

  onPeerDrain(listener: (e: PeerDrainEvent) => void): void {
    const prefix = this.#key('_drain', '');
    const requestOf = (key: string, value: string): DrainRequest | undefined => {
      if (key.slice(prefix.length).includes('/')) return undefined;
      let req: DrainRequest;
      try {
        req = JSON.parse(value) as DrainRequest;
      } catch {
        return undefined; // not ours to read: written by something else under the prefix
      }
      return req.by === this.#self?.id || typeof req.cluster !== 'string' ? undefined : req;
    };
    this.#watchPrefix(prefix, (w) => {
      w.on('put', (kv) => {
        const req = requestOf(kv.key.toString(), kv.value.toString());
        if (req) listener({ request: req });
      });
      w.on('delete', (kv) => listener({ ended: kv.key.toString().slice(prefix.length) }));
      // A watch that reconnects after etcd was away may have missed a request: look again
      // (a missed end is bounded by the listener's own timer).
      w.on('connected', () => {
        void this.#client
          .getAll()
          .prefix(prefix)
          .strings()
          .then((all) => {
            for (const [key, value] of Object.entries(all)) {
              const req = requestOf(key, value);
              if (req) listener({ request: req });
            }
          })
          .catch(() => undefined);
      });
    });
  }

  async answerPeerDrain(req: DrainRequest, open: number | undefined): Promise<void> {
    if (!this.#leaseId) return;
    await this.#client.put(this.#key('_drained', req.cluster, req.planId, this.#self!.id)).value(JSON.stringify({ open: open ?? -1 })).lease(this.#leaseId);
  }

  async lockCluster(cluster: string): Promise<() => Promise<void>> {
    // The cluster's leadership is its lock: one manager acts on it.
    if (!this.isLeader(cluster)) throw new NotLeaderError(`this manager does not lead cluster ${cluster}: another manager acts on it`);
    return async () => {};
  }

  async publishTopology(cluster: string, topology: { primary?: string; replicas: string[] }): Promise<void> {
    await this.#fencedPut(cluster, [
      [this.#key(cluster, 'primary'), topology.primary ?? ''],
      [this.#key(cluster, 'replicas'), JSON.stringify(topology.replicas)],
    ]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    // Acting ends here (no longer fresh); the keys go with the lease just below.
    for (const cluster of this.#announced) this.log.warn({ event: 'leadership_released', cluster, manager: this.#self?.id, reason: 'shutdown' }, `cluster ${cluster} released: this manager stops`);
    this.#announced.clear();
    await Promise.all(this.#watchers.map((w) => w.cancel().catch(() => undefined)));
    await this.#lease?.revoke().catch(() => undefined);
    this.#client.close();
  }
}
