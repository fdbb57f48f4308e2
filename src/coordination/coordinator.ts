/**
 * What the managers share: who may act, the journal of recoveries and per-cluster state (anti-
 * flapping, acknowledgements, the primary Regent decided on). `local` keeps it in the state
 * directory for a single manager; an etcd backend shares it between several.
 */

export type JournalEntry =
  | { type: 'plan'; planId: string; cluster: string; at: number; kind: string; plan: unknown }
  | { type: 'step'; planId: string; cluster: string; at: number; step: string; phase: 'start' | 'end'; ok?: boolean; detail?: string; durationMs?: number; data?: unknown }
  | { type: 'end'; planId: string; cluster: string; at: number; outcome: 'success' | 'failed' | 'aborted'; detail: string; newPrimary?: string; durationMs: number };

export interface ClusterState {
  /** The primary Regent decided on; survives manager restarts. */
  decidedPrimary?: string;
  /** When it was decided (ms since epoch). */
  decidedAt?: number;
  /** Written by versions before the decided primary had its one name; read, never written. */
  primary?: string;
  lastRecovery?: { planId: string; at: number; kind: string; oldPrimary: string; newPrimary?: string; outcome: string };
  lastSwitchover?: { planId: string; at: number; oldPrimary: string; newPrimary: string; writePauseMs: number };
  /** When a person acknowledged the last recovery (clears the anti-flapping block). */
  acknowledgedAt?: number;
  /** Former primaries fenced by Regent, waiting for a rejoin. */
  fenced?: string[];
  /** Per former primary: the GTID position its successor was promoted at (the common history). */
  commonPoints?: Record<string, string>;
  /** Errant transactions found on an instance (kept while it waits for a person, rejoin: manual). */
  errant?: Record<string, string>;
  /** Instances in maintenance (observed, never acted on), with when it ends (ms since epoch). */
  maintenance?: Record<string, number>;
}

/**
 * A cluster registered at run time (`regent cluster add` with etcd): its configuration entry as
 * the YAML would hold it (secret references, never secret values), or a tombstone for a cluster
 * the YAML names but that was removed at run time.
 */
export type InventoryEntry =
  | { name: string; cluster: Record<string, unknown>; at: number; by: string }
  | { name: string; removed: true; at: number; by: string };

export interface ManagerInfo {
  id: string;
  host: string;
  pid: number;
  api?: string;
  startedAt: number;
  /** It leads at least one cluster. */
  leader: boolean;
  /** The clusters it leads (each cluster has its own leader). */
  leads?: string[];
  /** Since when this manager leads something (ms since epoch; self only). */
  leaderSince?: number;
  /** When this manager last renewed its lease (self only). */
  leaseRenewedAt?: number;
  /** Seconds left on its lease as etcd sees it, and its TTL. */
  leaseRemainingSeconds?: number;
  leaseTtlSeconds?: number;
}

/**
 * A switchover asks every other manager's data plane to do what its own does: hold new writes for
 * `cluster` and report when no SQL session has a transaction open or a command running on
 * `oldPrimary`, until `until` (ms since epoch) at the latest. Without it, sessions on a follower's
 * endpoint kept writing to the old primary until read_only refused them.
 */
export interface DrainRequest {
  cluster: string;
  planId: string;
  oldPrimary: string;
  until: number;
  /** The acting manager's id. */
  by: string;
}

/** What the other managers answered to a drain request. */
export interface PeerDrain {
  /** Live managers asked (all but the acting one). */
  asked: number;
  answered: number;
  /** Their SQL sessions still in a transaction on the old primary, summed (answers without a data plane count 0). */
  open: number;
}

export type PeerDrainEvent = { request: DrainRequest } | { ended: string };

/**
 * Each cluster has one acting manager, its leader: only it executes plans and writes the cluster's
 * shared state. With the local backend that is the one manager for every cluster; with etcd,
 * managers spread the clusters between them.
 */
export interface Coordinator {
  readonly backend: 'local' | 'etcd';
  /** Joins the coordination (registration, campaigning for a fair share of `clusters`). */
  start(self: Omit<ManagerInfo, 'leader'>, clusters: string[]): Promise<void>;
  /** The clusters to lead changed (the inventory was reloaded). */
  setClusters(clusters: string[]): void;
  /** This manager leads `cluster` now: it alone may act on it. */
  isLeader(cluster: string): boolean;
  /** The clusters this manager leads now. */
  leads(): string[];
  /** Called when this manager starts (true) or stops (false) leading a cluster. */
  onLeadership(listener: (cluster: string, leader: boolean) => void): void;
  /**
   * Asked before a cluster is handed to another manager (one that joined, to even the load): a
   * cluster is given up only between recoveries.
   */
  setReleaseCheck(mayRelease: (cluster: string) => boolean): void;
  /** Every manager known, with what each leads. */
  managers(): Promise<ManagerInfo[]>;
  /** Publishes a cluster's topology for clients (service discovery). */
  publishTopology(cluster: string, topology: { primary?: string; replicas: string[] }): Promise<void>;
  /** Appends entries in order, all or none (one fenced write with etcd); all of one cluster. */
  appendJournal(...entries: JournalEntry[]): Promise<void>;
  readJournal(cluster?: string): Promise<JournalEntry[]>;
  getClusterState(cluster: string): Promise<ClusterState>;
  updateClusterState(cluster: string, update: (s: ClusterState) => ClusterState): Promise<ClusterState>;
  /**
   * The clusters registered at run time, which every manager follows (etcd). With the local
   * backend the configuration file is the whole inventory: this is empty and writing refuses.
   */
  readInventory(): Promise<InventoryEntry[]>;
  writeInventory(entry: InventoryEntry): Promise<void>;
  deleteInventory(name: string): Promise<void>;
  /** Called after the inventory changed (any manager or CLI wrote it). */
  onInventoryChange(listener: () => void): void;
  /**
   * Asks the other live managers to hold writes and drain (DrainRequest); resolves when all have
   * answered or at `until`. The request lives on the acting manager's lease: if it dies, the others
   * see the request end. The local backend has no other managers.
   */
  drainPeers(req: Omit<DrainRequest, 'by'>): Promise<PeerDrain>;
  /** The primary change is over (published or rolled back): the others follow the shared state again. */
  endPeerDrain(cluster: string): Promise<void>;
  /** Another manager's drain request, or its end (by cluster). */
  onPeerDrain(listener: (e: PeerDrainEvent) => void): void;
  /** This manager's answer to a drain request: its sessions still in a transaction (undefined: no answer from its data plane). */
  answerPeerDrain(req: DrainRequest, open: number | undefined): Promise<void>;
  /** Exclusive right to act on a cluster (a plan, a fence); throws when someone else holds it. */
  lockCluster(cluster: string, owner: string): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
