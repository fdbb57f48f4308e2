import type { Config } from '../config/load.ts';
import { bootstrapCluster } from '../setup/bootstrap.ts';
import { createProgress } from '../util/progress.ts';
import { UsageError } from '../errors.ts';

export async function bootstrapCommand(config: Config, opts: { cluster?: string }): Promise<number> {
  const clusters = opts.cluster ? config.clusters.filter((c) => c.name === opts.cluster) : config.clusters;
  if (clusters.length === 0) throw new UsageError(`no cluster named "${opts.cluster}" in ${config.file}`);
  for (const cluster of clusters) {
    const result = await bootstrapCluster(cluster, { progress: createProgress() });
    for (const w of result.warnings) process.stdout.write(`warning: ${w}\n`);
    if (!result.changed) process.stdout.write(`cluster ${cluster.name}: already bootstrapped, nothing changed\n`);
    else process.stdout.write(`cluster ${cluster.name}: bootstrapped\n${result.actions.map((a) => `  ${a}`).join('\n')}\n`);
  }
  return 0;
}
