import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, EtcdUserNotFoundError, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../util/log.ts';
import type { Secret } from '../util/secret.ts';
import type { ClusterState, Coordinator, JournalEntry, ManagerInfo } from './coordinator.ts';
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

/**
 * Several managers, one leader, through etcd. The leader is whoever created `<prefix>/_leader`
 * with its lease; only the leader acts, and every write it makes (journal, state, discovery) is an
 * etcd transaction that also checks that key still carries its id and creation revision, so a
 * manager that lost its lease (expired, partitioned) cannot write anything once another leader
 * exists. It also stops acting on its own: leadership counts only while the last successful lease
 * renewal is younger than the TTL.
 *
 * Keys: <prefix>/_leader, <prefix>/_managers/<id>, <prefix>/_journal/<cluster>/<time>-<seq>,
 * <prefix>/_state/<cluster>, and for clients <prefix>/<cluster>/primary and .../replicas.
 */
export class EtcdCoordinator implements Coordinator {
  readonly backend = 'etcd' as const;
  #client: Etcd3;
  #lease?: Lease;
  #leaseId?: string;
  #self?: Omit<ManagerInfo, 'leader'>;
  #leaderRevision?: string;
  #leaderSince?: number;
  #renewedAt = 0;
  #listeners: ((leader: boolean) => void)[] = [];
  #watcher?: Watcher;
  #closed = false;
  #seq = 0;
  #wasLeader = false;
  #timer?: NodeJS.Timeout;

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

  async start(self: Omit<ManagerInfo, 'leader'>): Promise<void> {
    this.#self = self;
    await this.checkAccess();
    await this.#newLease();
    this.#watchLeader();
    // Leadership is re-evaluated on a timer too: expiry of our own lease is noticed without etcd.
    this.#timer = setInterval(() => {
      this.#checkLeadership();
      if (!this.#leaderRevision) void this.#campaign();
    }, 250);
    void this.#campaign();
  }

  /**
   * One read under the prefix: throws EtcdAccessRefused when etcd answers with an authentication
   * or permission error (a configuration problem), and returns quietly when etcd is merely
   * unreachable (the manager starts and keeps trying, as it does when etcd goes away later).
   */
  async checkAccess(): Promise<void> {
    try {
      await this.#client.get(this.#key('_leader')).string();
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
    lease.on('keepaliveSucceeded', () => {
      this.#renewedAt = Date.now();
    });
    lease.on('lost', (err) => {
      if (this.#lease !== lease || this.#closed) return;
      this.log.warn({ event: 'etcd_lease_lost', err: err.message }, 'etcd lease lost; not leader until a new lease is granted');
      this.#leaderRevision = undefined;
      this.#lease = undefined;
      this.#checkLeadership();
      setTimeout(() => void this.#newLease().catch(() => undefined), 500);
    });
    try {
      this.#leaseId = await lease.grant();
      this.#renewedAt = Date.now();
      await lease.put(this.#key('_managers', this.#self!.id)).value(JSON.stringify(this.#self));
    } catch (e) {
      this.log.warn({ event: 'etcd_unavailable', err: (e as Error).message }, 'etcd not reachable; retrying');
    }
  }

  #watchLeader(): void {
    void this.#client
      .watch()
      .key(this.#key('_leader'))
      .create()
      .then((w) => {
        this.#watcher = w;
        w.on('delete', () => void this.#campaign());
        w.on('error', () => undefined);
      })
      .catch(() => undefined);
  }

  /** Tries to become leader: create the leader key with our lease if nobody holds it. */
  async #campaign(): Promise<void> {
    if (this.#closed || !this.#lease || !this.#leaseId || this.#leaderRevision) return;
    try {
      const key = this.#key('_leader');
      const res = await this.#client
        .if(key, 'Create', '==', 0)
        .then(this.#client.put(key).value(this.#self!.id).lease(this.#leaseId))
        .else(this.#client.get(key))
        .commit();
      if (res.succeeded) {
        this.#leaderRevision = String(res.header.revision);
        this.#leaderSince = Date.now();
        this.log.warn({ event: 'leader_elected', manager: this.#self!.id, revision: this.#leaderRevision }, `this manager is now the leader`);
      } else {
        const kv = res.responses[0]?.response_range?.kvs?.[0];
        // Our own key from a previous campaign on this same lease (e.g. after a watch hiccup).
        if (kv && kv.value.toString() === this.#self!.id && String(kv.lease) === this.#leaseId) this.#leaderRevision = String(kv.create_revision);
      }
    } catch {
      // etcd unreachable: stay a follower
    }
    this.#checkLeadership();
  }

  #checkLeadership(): void {
    const leader = this.isLeader();
    if (leader === this.#wasLeader) return;
    this.#wasLeader = leader;
    if (!leader) {
      this.log.warn({ event: 'leadership_lost', manager: this.#self?.id }, 'this manager is no longer the leader: it stops acting');
      // Our key may still exist (renewals failed but the lease did not expire yet): forget it so we
      // re-campaign properly once etcd answers again.
      if (Date.now() - this.#renewedAt >= this.settings.leaseTtlSeconds * 1000) this.#leaderRevision = undefined;
    }
    for (const l of this.#listeners) l(leader);
  }

  /** How long since etcd last confirmed this manager's lease (ms); 0 before the first grant (nothing known). */
  contactAgeMs(): number {
    return this.#renewedAt === 0 ? 0 : Date.now() - this.#renewedAt;
  }

  isLeader(): boolean {
    // A margin below the TTL: stop acting before etcd could hand leadership to someone else.
    const fresh = Date.now() - this.#renewedAt < this.settings.leaseTtlSeconds * 1000 * 0.8;
    return Boolean(this.#leaderRevision) && fresh && !this.#closed;
  }

  onLeadership(listener: (leader: boolean) => void): void {
    this.#listeners.push(listener);
  }

  async managers(): Promise<ManagerInfo[]> {
    const all = await this.#client.getAll().prefix(this.#key('_managers', '')).strings();
    const leaderKv = (await this.#client.get(this.#key('_leader')).exec()).kvs[0];
    const leaderId = leaderKv?.value.toString();
    let remaining: number | undefined;
    if (leaderKv && String(leaderKv.lease) !== '0') {
      const ttl = await this.#client.leaseClient.leaseTimeToLive({ ID: leaderKv.lease });
      remaining = Number(ttl.TTL);
    }
    return Object.values(all).map((v) => {
      const m = JSON.parse(v) as ManagerInfo;
      const isSelf = m.id === this.#self?.id;
      const leader = m.id === leaderId;
      return {
        ...m,
        leader,
        leaderSince: isSelf ? this.#leaderSince : undefined,
        leaseRenewedAt: isSelf ? this.#renewedAt : undefined,
        leaseRemainingSeconds: leader ? remaining : undefined,
        leaseTtlSeconds: leader ? this.settings.leaseTtlSeconds : undefined,
      };
    });
  }

  /** A write that only succeeds while we still hold the leader key we created. */
  async #fencedPut(pairs: [string, string][]): Promise<void> {
    if (!this.isLeader()) throw new NotLeaderError('not the leader: refusing to write to etcd');
    const res = await this.#client
      .if(this.#key('_leader'), 'Create', '==', Number(this.#leaderRevision))
      .and(this.#key('_leader'), 'Value', '==', this.#self!.id)
      .then(...pairs.map(([k, v]) => this.#client.put(k).value(v)))
      .commit();
    if (!res.succeeded) {
      this.#leaderRevision = undefined;
      this.#checkLeadership();
      throw new NotLeaderError('etcd rejected the write: another manager is leader now');
    }
  }

  async appendJournal(entry: JournalEntry): Promise<void> {
    const key = this.#key('_journal', entry.cluster, `${String(entry.at).padStart(15, '0')}-${String(++this.#seq).padStart(6, '0')}-${this.#self?.id ?? ''}`);
    await this.#fencedPut([[key, JSON.stringify(entry)]]);
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
    await this.#fencedPut([[this.#key('_state', cluster), JSON.stringify(next)]]);
    return next;
  }

  async lockCluster(cluster: string): Promise<() => Promise<void>> {
    // Leadership is the lock: one leader acts on every cluster.
    if (!this.isLeader()) throw new NotLeaderError(`not the leader: another manager acts on ${cluster}`);
    return async () => {};
  }

  async publishTopology(cluster: string, topology: { primary?: string; replicas: string[] }): Promise<void> {
    await this.#fencedPut([
      [this.#key(cluster, 'primary'), topology.primary ?? ''],
      [this.#key(cluster, 'replicas'), JSON.stringify(topology.replicas)],
    ]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#watcher?.cancel().catch(() => undefined);
    await this.#lease?.revoke().catch(() => undefined);
    this.#client.close();
  }
}
