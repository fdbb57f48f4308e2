import type { ClusterConfig, Config } from '../config/load.ts';
import { PASSWORD_PLACEHOLDERS } from '../doctor/facts.ts';
import { readServerVersion } from '../doctor/server-version.ts';
import type { GtidFlavor } from '../gtid/index.ts';
import { flavorForVersion } from '../sql/flavors.ts';
import { FAMILIES } from '../sql/families.ts';
import { renderAccountScript, type AccountToGrant } from '../sql/grants.ts';
import { UnsupportedServerError, UsageError } from '../errors.ts';

/**
 * `regent grants`: the CREATE USER / GRANT statements for Regent's accounts, minimal privileges with
 * a comment each, passwords as placeholders. The server family comes from the greeting of the first
 * instance that answers (no account needed, so it works before the accounts exist), or --flavor.
 */
export async function grantsCommand(config: Config, opts: { cluster?: string; host?: string; flavor?: GtidFlavor }): Promise<number> {
  const clusters = opts.cluster ? config.clusters.filter((c) => c.name === opts.cluster) : config.clusters;
  if (clusters.length === 0) throw new UsageError(`no cluster named "${opts.cluster}" in ${config.file} (clusters: ${config.clusters.map((c) => c.name).join(', ')})`);
  const host = opts.host ?? '%';
  const scripts: string[] = [];
  for (const cluster of clusters) {
    const { flavor, how } = opts.flavor ? { flavor: opts.flavor, how: 'given with --flavor' } : await detectClusterFlavor(cluster);
    const accounts: AccountToGrant[] = [
      { role: 'manager', user: cluster.accounts.manager.user, host, passwordPlaceholder: PASSWORD_PLACEHOLDERS.manager, passwordSource: cluster.accounts.manager.password?.source },
      { role: 'replication', user: cluster.accounts.replication.user, host, passwordPlaceholder: PASSWORD_PLACEHOLDERS.replication, passwordSource: cluster.accounts.replication.password?.source },
    ];
    if (cluster.accounts.clone !== cluster.accounts.manager)
      accounts.push({ role: 'clone', user: cluster.accounts.clone.user, host, passwordPlaceholder: PASSWORD_PLACEHOLDERS.clone, passwordSource: cluster.accounts.clone.password?.source });
    if (cluster.accounts.router !== cluster.accounts.manager)
      accounts.push({ role: 'router', user: cluster.accounts.router.user, host, passwordPlaceholder: PASSWORD_PLACEHOLDERS.router, passwordSource: cluster.accounts.router.password?.source });
    scripts.push(
      renderAccountScript(flavor, accounts, [
        `Regent accounts for cluster ${cluster.name}: ${FAMILIES[flavor].displayName} (${how}).`,
        `Host part '${host}'${opts.host ? '' : ' (any host; narrow it with --host, e.g. the manager hosts and the replicas\' network)'}.`,
        'Afterwards `regent doctor` checks that every instance has them.',
      ]),
    );
  }
  process.stdout.write(scripts.join('\n'));
  return 0;
}

async function detectClusterFlavor(cluster: ClusterConfig): Promise<{ flavor: GtidFlavor; how: string }> {
  const errors: string[] = [];
  for (const inst of cluster.instances) {
    try {
      const version = await readServerVersion(inst.host, inst.port, cluster.monitor.connectTimeoutMs);
      return { flavor: flavorForVersion(version).name, how: `${inst.name} ${inst.id} says ${version}` };
    } catch (e) {
      if (e instanceof UnsupportedServerError) throw e;
      errors.push((e as Error).message);
    }
  }
  throw new UsageError(`cluster ${cluster.name}: no instance answered (${errors[0] ?? 'no instances'}), so the server family is unknown; pass --flavor mariadb or --flavor mysql`);
}
