import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';

export interface SimClusterSpec {
  name: string;
  primary: string;
  instances: { host: string; port: number; name: string }[];
}

export interface RegentConfigOptions {
  /** Directory for regent.yaml, secrets/ and the manager's state/. */
  dir: string;
  manager: { user: string; password: string };
  replication: { user: string; password: string };
  /** manager.api.listen (host:port); no API when absent. */
  apiListen?: string;
  /** Extra keys merged into every cluster entry (monitor, failover...); defaults otherwise. */
  clusterOverrides?: Record<string, unknown>;
  /** Extra keys merged into the manager section. */
  managerOverrides?: Record<string, unknown>;
}

/**
 * Writes a Regent config for the simulated clusters, in the shape `regent sandbox up` writes:
 * passwords in files under secrets/ (mode 0600), state in state/. No router endpoints: they would
 * take two ports per cluster, and the simulator measures monitoring, not routing. Monitoring and
 * failover settings stay at their defaults (probeIntervalMs 500) unless overridden.
 */
export function writeRegentConfig(clusters: readonly SimClusterSpec[], opts: RegentConfigOptions): string {
  const secrets = join(opts.dir, 'secrets');
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  writeFileSync(join(secrets, 'manager.pw'), `${opts.manager.password}\n`, { mode: 0o600 });
  writeFileSync(join(secrets, 'replication.pw'), `${opts.replication.password}\n`, { mode: 0o600 });
  const doc = {
    manager: {
      stateDir: 'state',
      ...(opts.apiListen ? { api: { listen: opts.apiListen } } : {}),
      ...opts.managerOverrides,
    },
    credentials: {
      manager: { user: opts.manager.user, password: { file: 'secrets/manager.pw' } },
      replication: { user: opts.replication.user, password: { file: 'secrets/replication.pw' } },
    },
    clusters: clusters.map((c) => ({
      name: c.name,
      primary: c.primary,
      instances: c.instances.map((i) => ({ host: i.host, port: i.port, name: i.name })),
      ...opts.clusterOverrides,
    })),
  };
  const file = join(opts.dir, 'regent.yaml');
  writeFileSync(file, `# Written by the Regent probe-load simulator (src/sim): ${clusters.length} simulated clusters.\n${toYaml(doc)}`);
  return file;
}
