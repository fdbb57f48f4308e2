import type { ClusterConfig, Config } from '../config/load.ts';
import { fingerprint } from '../util/fingerprint.ts';

/** How the clusters of two configurations differ, by name. */
export interface ClusterChanges {
  added: string[];
  removed: string[];
  /** Same name, different settings, instances or accounts: the cluster restarts (the others do not). */
  changed: string[];
  unchanged: string[];
}

/** What a reload did (or, with `error`, why it did nothing). */
export interface ReloadReport extends ClusterChanges {
  /** Inventory entries left out (they do not fit the file), with why. */
  skipped: { name: string; error: string }[];
  /** Settings that changed but only take effect on a restart of the manager. */
  needsRestart: string[];
}

/** Everything a cluster's behaviour depends on, secrets included (hashed, never in clear). */
export function clusterFingerprint(c: ClusterConfig): string {
  return fingerprint(c);
}

export function diffClusters(before: ClusterConfig[], after: ClusterConfig[]): ClusterChanges {
  const old = new Map(before.map((c) => [c.name, clusterFingerprint(c)]));
  const changes: ClusterChanges = { added: [], removed: [], changed: [], unchanged: [] };
  for (const c of after) {
    const was = old.get(c.name);
    if (was === undefined) changes.added.push(c.name);
    else if (was !== clusterFingerprint(c)) changes.changed.push(c.name);
    else changes.unchanged.push(c.name);
  }
  const now = new Set(after.map((c) => c.name));
  changes.removed = before.map((c) => c.name).filter((n) => !now.has(n));
  return changes;
}

/** Manager settings a running manager cannot take over: they need `regent run` restarted. */
export function settingsNeedingRestart(before: Config, after: Config): string[] {
  const view = (c: Config) => ({
    'manager.api': fingerprint(c.api ?? null),
    'manager.coordination': fingerprint(c.coordination),
    'manager.stateDir': c.stateDir,
    'manager.routerProcesses': String(c.routerProcesses),
  });
  const a = view(before);
  const b = view(after);
  return (Object.keys(a) as (keyof typeof a)[]).filter((k) => a[k] !== b[k]);
}

/** One fingerprint for a whole effective configuration: manager and data plane compare theirs. */
export function configFingerprint(config: Config): string {
  return fingerprint(config.clusters.map((c) => `${c.name}=${clusterFingerprint(c)}`).sort());
}
