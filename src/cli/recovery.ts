import type { ClusterConfig, Config } from '../config/load.ts';
import type { ClusterState } from '../coordination/coordinator.ts';
import { renderPlan } from '../recovery/plan.ts';
import type { FailoverResult } from '../recovery/failover.ts';
import { callManager, localCoordinatorFor, managerRefusal } from './api-client.ts';
import { withOneShotSupervisor } from './one-shot.ts';
import { UsageError } from '../errors.ts';

export function pickCluster(config: Config, name: string | undefined): ClusterConfig {
  if (name) {
    const c = config.clusters.find((x) => x.name === name);
    if (!c) throw new UsageError(`no cluster named "${name}" in ${config.file} (clusters: ${config.clusters.map((x) => x.name).join(', ')})`);
    return c;
  }
  if (config.clusters.length !== 1) throw new UsageError(`${config.file} has ${config.clusters.length} clusters; name one (${config.clusters.map((x) => x.name).join(', ')})`);
  return config.clusters[0]!;
}

/**
 * `regent failover`: a person decided. Always allowed (no anti-flapping block), but a live primary
 * is only failed over with --force, and the candidate rules are the same as for automatic failover.
 */
export async function failoverCommand(config: Config, clusterName: string | undefined, opts: { dryRun?: boolean; force?: boolean }): Promise<number> {
  const cluster = pickCluster(config, clusterName);
  if (!opts.dryRun) {
    // A running manager does it (its router is the fence); otherwise this process acts alone.
    const viaManager = await callManager(config, 'POST', `/api/v1/clusters/${encodeURIComponent(cluster.name)}/failover`, { force: Boolean(opts.force) });
    if (viaManager && viaManager.status >= 400 && !viaManager.json['steps']) {
      const refusal = managerRefusal(viaManager, 'failover');
      process.stderr.write(`${refusal.line}\n`);
      return refusal.code;
    }
    if (viaManager) return printFailover(viaManager.json as unknown as FailoverResult, cluster.name);
  }
  return withOneShotSupervisor(config, cluster, 'failover', async (supervisor) => {
    if (opts.dryRun) {
      const plan = await supervisor.manual.plan();
      process.stdout.write(`${renderPlan(plan)}\n`);
      return 'refusal' in plan || !plan.choice.candidate ? 1 : 0;
    }
    return printFailover(await supervisor.manual.failover({ force: Boolean(opts.force), trigger: 'manual' }), cluster.name);
  });
}

function printFailover(result: FailoverResult | { refusal: string }, cluster = ''): number {
  if ('refusal' in result) {
    process.stderr.write(`regent: failover refused: ${result.refusal.replace(/^no failover: /, '')}\n`);
    return 1;
  }
  for (const s of result.steps) process.stdout.write(`${s.ok ? '✔' : '✖'} ${s.name} (${s.durationMs} ms): ${s.detail}\n`);
  if (!result.ok) {
    process.stderr.write(`regent: failover failed: ${result.error}\n`);
    return 1;
  }
  process.stdout.write(`failover${cluster ? ` of ${cluster}` : ''} done in ${result.durationMs} ms: ${result.oldPrimary} -> ${result.newPrimary}\n`);
  return 0;
}

/** `regent ack`: a person saw the last recovery; automatic failover of the cluster is allowed again. */
export async function ackCommand(config: Config, clusterName: string | undefined): Promise<number> {
  const cluster = pickCluster(config, clusterName);
  const viaManager = await callManager(config, 'POST', `/api/v1/clusters/${encodeURIComponent(cluster.name)}/ack`);
  if (viaManager && viaManager.status >= 400) {
    const refusal = managerRefusal(viaManager, 'ack');
    process.stderr.write(`${refusal.line}\n`);
    return refusal.code;
  }
  const coordinator = viaManager ? undefined : localCoordinatorFor(config, 'ack');
  const state = viaManager ? (viaManager.json as { lastRecovery?: ClusterState['lastRecovery'] }) : await coordinator!.updateClusterState(cluster.name, (s) => ({ ...s, acknowledgedAt: Date.now() }));
  const last = state.lastRecovery;
  process.stdout.write(
    last
      ? `acknowledged the ${last.kind} of ${cluster.name} at ${new Date(last.at).toISOString()} (${last.oldPrimary} -> ${last.newPrimary ?? 'none'}); automatic failover is allowed again\n`
      : `cluster ${cluster.name} had no recovery to acknowledge; automatic failover is allowed\n`,
  );
  return 0;
}
