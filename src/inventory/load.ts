import { configFromDocument, readConfigDocument, readConfigFile, type Config } from '../config/load.ts';
import type { Coordinator, InventoryEntry } from '../coordination/coordinator.ts';
import { mergeInventory, type ClusterOrigin } from './merge.ts';

export interface EffectiveConfig {
  config: Config;
  /** Where each cluster comes from: the file, or the inventory (registered at run time). */
  origins: Map<string, ClusterOrigin>;
  /** Inventory entries left out because they do not make a valid configuration with the file, and why. */
  skipped: { name: string; error: string }[];
}

/**
 * The clusters a manager runs: the configuration file plus, with etcd, the clusters registered
 * at run time. The file alone must be valid (its error is the error); an inventory entry that
 * does not fit (an instance another cluster already has, a name the file's settings reject) is
 * left out and named, and the others go on.
 */
export function effectiveConfig(file: string, entries: InventoryEntry[], env: NodeJS.ProcessEnv = process.env): EffectiveConfig {
  const { file: path, text } = readConfigFile(file);
  const doc = readConfigDocument(text, path);
  const fileOnly = configFromDocument(doc, path, env);
  if (entries.length === 0) return { config: fileOnly, origins: new Map(fileOnly.clusters.map((c) => [c.name, 'file'])), skipped: [] };
  const attempt = (use: InventoryEntry[]) => {
    const merged = mergeInventory(doc, use);
    return { config: configFromDocument(merged.doc, path, env), origins: merged.origins };
  };
  try {
    return { ...attempt(entries), skipped: [] };
  } catch {
    // Find the entries that do not fit, one at a time against the file.
    const skipped: { name: string; error: string }[] = [];
    const good: InventoryEntry[] = [];
    for (const e of entries) {
      try {
        attempt([e]);
        good.push(e);
      } catch (err) {
        skipped.push({ name: e.name, error: (err as Error).message });
      }
    }
    try {
      return { ...attempt(good), skipped };
    } catch (err) {
      // Entries that fit one by one but clash with each other (the same instance twice).
      return { config: fileOnly, origins: new Map(fileOnly.clusters.map((c) => [c.name, 'file'])), skipped: [...skipped, ...good.map((e) => ({ name: e.name, error: (err as Error).message }))] };
    }
  }
}

/** As effectiveConfig, reading the inventory from the coordinator (nothing to read with the local backend). */
export async function loadEffectiveConfig(file: string, coordinator: Coordinator | undefined, env: NodeJS.ProcessEnv = process.env): Promise<EffectiveConfig> {
  const entries = coordinator && coordinator.backend === 'etcd' ? await coordinator.readInventory() : [];
  return effectiveConfig(file, entries, env);
}
