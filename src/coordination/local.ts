import { appendFileSync, mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../util/processes.ts';
import type { ClusterState, Coordinator, InventoryEntry, JournalEntry, ManagerInfo, PeerDrain } from './coordinator.ts';
import { ClusterLockedError, UsageError } from '../errors.ts';


/**
 * One manager, state in a directory: journal.jsonl (append-only, one JSON object a line),
 * clusters/<name>.json (replaced atomically), and locks/<name>.lock holding the PID of the process
 * acting on that cluster, so a CLI command and a running manager never act at the same time.
 */
export class LocalCoordinator implements Coordinator {
  readonly backend = 'local' as const;
  /**
   * Cluster states as last read or written, dropped when the file changes (inotify): every
   * supervisor re-reads its state a few times a second, and reading and parsing the file each
   * time cost ~3 % of a manager's CPU at 1,000 instances. Without a working watch, no cache.
   */
  readonly #states = new Map<string, ClusterState>();
  #watcher?: FSWatcher;

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'clusters'), { recursive: true });
    mkdirSync(join(dir, 'locks'), { recursive: true });
    try {
      // Another process (a CLI command) may write a state file: forget what it replaced.
      this.#watcher = watch(join(dir, 'clusters'), { persistent: false }, (_event, file) => {
        if (!file) this.#states.clear();
        else this.#states.delete(String(file).replace(/\.json(\.tmp)?$/, ''));
      });
      this.#watcher.on('error', () => this.#stopCaching());
    } catch {
      this.#watcher = undefined;
    }
  }

  #stopCaching(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#states.clear();
  }

  #self?: ManagerInfo;
  #clusters: string[] = [];

  async start(self: Omit<ManagerInfo, 'leader'>, clusters: string[]): Promise<void> {
    this.#clusters = [...clusters];
    this.#self = { ...self, leader: true, leaderSince: self.startedAt };
  }

  setClusters(clusters: string[]): void {
    this.#clusters = [...clusters];
  }

  /** One manager (or a CLI command acting alone under the cluster lock) leads every cluster. */
  isLeader(): boolean {
    return true;
  }

  leads(): string[] {
    return [...this.#clusters];
  }

  onLeadership(): void {
    // a single manager leads everything, always
  }

  setReleaseCheck(): void {
    // nobody to hand a cluster to
  }

  async managers(): Promise<ManagerInfo[]> {
    return this.#self ? [{ ...this.#self, leads: this.leads() }] : [];
  }

  async publishTopology(cluster: string, topology: { primary?: string; replicas: string[] }): Promise<void> {
    // Readable by scripts on the same host; there is no remote discovery without etcd.
    const path = join(this.dir, 'clusters', `${cluster}.topology.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify({ ...topology, at: Date.now() }));
    renameSync(`${path}.tmp`, path);
  }

  async appendJournal(...entries: JournalEntry[]): Promise<void> {
    if (entries.length > 0) appendFileSync(join(this.dir, 'journal.jsonl'), entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
  }

  async readJournal(cluster?: string): Promise<JournalEntry[]> {
    const path = join(this.dir, 'journal.jsonl');
    if (!existsSync(path)) return [];
    const out: JournalEntry[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line) as JournalEntry;
        if (!cluster || e.cluster === cluster) out.push(e);
      } catch {
        // a torn last line after a crash: everything before it is intact
      }
    }
    return out;
  }

  /** The returned state is shared and frozen: callers build a new one through updateClusterState. */
  async getClusterState(cluster: string): Promise<ClusterState> {
    const cached = this.#watcher ? this.#states.get(cluster) : undefined;
    if (cached) return cached;
    const state = deepFreeze(this.#readState(cluster));
    if (this.#watcher) this.#states.set(cluster, state);
    return state;
  }

  #readState(cluster: string): ClusterState {
    try {
      return JSON.parse(readFileSync(this.#statePath(cluster), 'utf8')) as ClusterState;
    } catch {
      return {};
    }
  }

  async updateClusterState(cluster: string, update: (s: ClusterState) => ClusterState): Promise<ClusterState> {
    // Read-modify-write always from the file: a change by another process must not be lost to the cache.
    const next = deepFreeze(update(this.#readState(cluster)));
    const tmp = `${this.#statePath(cluster)}.tmp`;
    writeFileSync(tmp, JSON.stringify(next, null, 2));
    renameSync(tmp, this.#statePath(cluster));
    this.#states.delete(cluster);
    return next;
  }

  /** The configuration file is the local inventory (src/inventory/yaml-file.ts edits it). */
  async readInventory(): Promise<InventoryEntry[]> {
    return [];
  }

  async writeInventory(): Promise<void> {
    throw new UsageError('with the local backend the configuration file is the inventory: register the cluster in the YAML (regent cluster add does)');
  }

  async deleteInventory(): Promise<void> {
    throw new UsageError('with the local backend the configuration file is the inventory: remove the cluster from the YAML (regent cluster remove does)');
  }

  onInventoryChange(): void {
    // the file changes by an edit, and the manager takes it on reload (SIGHUP, regent reload)
  }

  /** One manager: nobody else has a data plane to drain. */
  async drainPeers(): Promise<PeerDrain> {
    return { asked: 0, answered: 0, open: 0 };
  }
  async endPeerDrain(): Promise<void> {}
  onPeerDrain(): void {}
  async answerPeerDrain(): Promise<void> {}

  async lockCluster(cluster: string, owner: string): Promise<() => Promise<void>> {
    const path = join(this.dir, 'locks', `${cluster}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeFileSync(fd, JSON.stringify({ pid: process.pid, owner, at: Date.now() }));
        closeSync(fd);
        return async () => rmSync(path, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        let holder: { pid?: number; owner?: string } = {};
        try {
          holder = JSON.parse(readFileSync(path, 'utf8')) as { pid?: number; owner?: string };
        } catch {
          // unreadable lock: treat as stale
        }
        if (holder.pid && holder.pid !== process.pid && isAlive(holder.pid))
          throw new ClusterLockedError(`cluster ${cluster} is being acted on by ${holder.owner ?? 'another process'} (pid ${holder.pid})`);
        if (holder.pid === process.pid) throw new ClusterLockedError(`cluster ${cluster}: another action of this manager (${holder.owner}) is under way`);
        rmSync(path, { force: true }); // left by a process that died
      }
    }
    throw new ClusterLockedError(`cluster ${cluster}: could not take the action lock`);
  }

  async close(): Promise<void> {
    this.#stopCaching();
  }

  #statePath(cluster: string): string {
    return join(this.dir, 'clusters', `${cluster}.json`);
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
