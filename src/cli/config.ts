import { loadConfigFile, type Config } from '../config/load.ts';
import type { Coordinator } from '../coordination/coordinator.ts';
import { EtcdCoordinator } from '../coordination/etcd.ts';
import { effectiveConfig, type EffectiveConfig } from '../inventory/load.ts';
import { silentLogger } from '../util/log.ts';

/**
 * The configuration a command works on: the file, and with etcd the clusters registered at run
 * time (`regent cluster add`). When etcd cannot be read, the file alone, with a line on stderr
 * saying what may be missing.
 */
export async function loadConfig(path: string): Promise<Config> {
  return (await loadConfigWithOrigins(path)).config;
}

export async function loadConfigWithOrigins(path: string): Promise<EffectiveConfig> {
  const fileOnly = loadConfigFile(path);
  if (fileOnly.coordination.backend !== 'etcd') return effectiveConfig(fileOnly.file, []);
  return withCoordinator(fileOnly, async (c) => {
    try {
      if (!c) return effectiveConfig(fileOnly.file, []);
      const e = effectiveConfig(fileOnly.file, await c.readInventory());
      for (const s of e.skipped) process.stderr.write(`regent: cluster ${s.name} of the inventory is left out: ${s.error}\n`);
      return e;
    } catch (e) {
      if ((e as Error).name === 'ConfigError') throw e;
      process.stderr.write(`regent: cannot read the cluster inventory from etcd (${(e as Error).message}); clusters registered at run time are not included\n`);
      return effectiveConfig(fileOnly.file, []);
    }
  });
}

/**
 * With etcd, a coordinator for one command's reads and inventory writes (it never campaigns),
 * closed afterwards; with the local backend there is nothing to coordinate through (undefined).
 */
export async function withCoordinator<T>(config: Config, fn: (c: Coordinator | undefined) => Promise<T>): Promise<T> {
  if (config.coordination.backend !== 'etcd') return fn(undefined);
  const c = new EtcdCoordinator(config.coordination, silentLogger);
  try {
    await c.checkAccess();
    return await fn(c);
  } finally {
    await c.close();
  }
}
