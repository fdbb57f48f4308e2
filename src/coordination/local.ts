import { appendFileSync, mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../util/processes.ts';
import type { ClusterState, Coordinator, InventoryEntry, JournalEntry, ManagerInfo } from './coordinator.ts';
import { ClusterLockedError, UsageError } from '../errors.ts';


/**
 * One manager, state in a directory: journal.jsonl (append-only, one JSON object a line),
 * clusters/<name>.json (replaced atomically), and locks/<name>.lock holding the PID of the process
 * acting on that cluster, so a CLI command and a running manager never act at the same time.
 */
export class LocalCoordinator implements Coordinator {
  readonly backend = 'local' as const;

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'clusters'), { recursive: true });
    mkdirSync(join(dir, 'locks'), { recursive: true });
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

  async appendJournal(entry: JournalEntry): Promise<void> {
    appendFileSync(join(this.dir, 'journal.jsonl'), `${JSON.stringify(entry)}\n`);
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

  async getClusterState(cluster: string): Promise<ClusterState> {
    try {
      return JSON.parse(readFileSync(this.#statePath(cluster), 'utf8')) as ClusterState;
    } catch {
      return {};
    }
  }

  async updateClusterState(cluster: string, update: (s: ClusterState) => ClusterState): Promise<ClusterState> {
    const next = update(await this.getClusterState(cluster));
    const tmp = `${this.#statePath(cluster)}.tmp`;
    writeFileSync(tmp, JSON.stringify(next, null, 2));
    renameSync(tmp, this.#statePath(cluster));
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

  async close(): Promise<void> {}

  #statePath(cluster: string): string {
    return join(this.dir, 'clusters', `${cluster}.json`);
  }
}
