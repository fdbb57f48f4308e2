import { analyzeCluster } from '../analysis/analyze.ts';
import { clusterReport, renderClusterText, type ClusterReport } from '../analysis/cluster-report.ts';
import type { Config } from '../config/load.ts';
import { inspectCluster } from '../monitor/inspect.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import { UsageError } from './errors.ts';

/**
 * `regent status` without a running manager: probe every instance once, analyse, print.
 * Exit code 0 healthy, 1 degraded, 2 unusable input (credentials wrong, nothing reachable).
 */
export async function statusCommand(config: Config, opts: { json?: boolean; cluster?: string }): Promise<number> {
  const clusters = opts.cluster ? config.clusters.filter((c) => c.name === opts.cluster) : config.clusters;
  if (clusters.length === 0) throw new UsageError(`no cluster named "${opts.cluster}" in ${config.file} (clusters: ${config.clusters.map((c) => c.name).join(', ')})`);
  const reports: ClusterReport[] = [];
  for (const cluster of clusters) {
    const inspected = await inspectCluster(cluster);
    // Wrong credentials or nothing reachable at all means the input is unusable, not the cluster degraded.
    const auth = inspected.find((i) => i.obs.error?.kind === 'auth' || i.obs.error?.kind === 'privilege');
    if (auth) throw new UsageError(auth.obs.error!.message);
    if (inspected.every((i) => !i.obs.reachable)) throw new UsageError(`cluster ${cluster.name}: no instance reachable; first error: ${inspected[0]?.obs.error?.message ?? 'unknown'}`);
    const observations = new Map<string, InstanceObservation>(inspected.map((i) => [i.instance.id, i.obs]));
    const analysis = analyzeCluster({ cluster, observations, now: Date.now() });
    reports.push(clusterReport(cluster, observations, analysis));
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ clusters: reports }, null, 2)}\n`);
  else process.stdout.write(`${reports.map(renderClusterText).join('\n\n')}\n`);
  return reports.every((r) => r.health === 'healthy') ? 0 : 1;
}
