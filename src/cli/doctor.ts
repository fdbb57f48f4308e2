import type { Config } from '../config/load.ts';
import { evaluateCluster } from '../doctor/evaluate.ts';
import { gatherClusterFacts } from '../doctor/gather.ts';
import { doctorReport, renderDoctorText } from '../doctor/render.ts';
import { UsageError } from '../errors.ts';

/**
 * `regent doctor`: every check failover depends on, for every cluster and instance, each with its
 * fix. Read-only. Exit 0 all ok, 1 warnings, 2 a failover would be unsafe (or unusable input).
 */
export async function doctorCommand(config: Config, opts: { json?: boolean; cluster?: string }): Promise<number> {
  const clusters = opts.cluster ? config.clusters.filter((c) => c.name === opts.cluster) : config.clusters;
  if (clusters.length === 0) throw new UsageError(`no cluster named "${opts.cluster}" in ${config.file} (clusters: ${config.clusters.map((c) => c.name).join(', ')})`);
  const results = [];
  for (const cluster of clusters) {
    const facts = await gatherClusterFacts(cluster, { configFile: config.file || undefined });
    results.push({ name: cluster.name, findings: evaluateCluster(facts) });
  }
  const report = doctorReport(results);
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderDoctorText(report));
  return report.exitCode;
}
