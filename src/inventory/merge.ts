import type { InventoryEntry } from '../coordination/coordinator.ts';

/** Where a cluster of the effective configuration comes from. */
export type ClusterOrigin = 'file' | 'inventory';

/**
 * The configuration file with the clusters registered at run time merged in: an inventory entry
 * replaces the file's cluster of the same name or joins the list; a tombstone takes the file's
 * cluster out. The file stays the embedded default (etcd only adds to it). Pure.
 */
export function mergeInventory(doc: Record<string, unknown>, entries: InventoryEntry[]): { doc: Record<string, unknown>; origins: Map<string, ClusterOrigin> } {
  const fromFile = Array.isArray(doc['clusters']) ? (doc['clusters'] as unknown[]) : [];
  const nameOf = (c: unknown): string | undefined => (c && typeof c === 'object' && typeof (c as Record<string, unknown>)['name'] === 'string' ? ((c as Record<string, unknown>)['name'] as string) : undefined);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const origins = new Map<string, ClusterOrigin>();
  const clusters: unknown[] = [];
  for (const c of fromFile) {
    const name = nameOf(c);
    const entry = name === undefined ? undefined : byName.get(name);
    if (entry && 'removed' in entry) continue;
    if (entry) {
      clusters.push({ ...entry.cluster, name });
      origins.set(name!, 'inventory');
      byName.delete(name!);
      continue;
    }
    clusters.push(c);
    if (name !== undefined) origins.set(name, 'file');
  }
  for (const entry of [...byName.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if ('removed' in entry) continue;
    clusters.push({ ...entry.cluster, name: entry.name });
    origins.set(entry.name, 'inventory');
  }
  return { doc: { ...doc, clusters }, origins };
}
