import { analyzeCluster } from '../analysis/analyze.ts';
import { clusterReport, renderClusterText, type ClusterReport } from '../analysis/cluster-report.ts';
import type { Config } from '../config/load.ts';
import { inspectCluster } from '../monitor/inspect.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import { UsageError } from '../errors.ts';
import { callManager } from './api-client.ts';
import type { ManagerInfo } from '../coordination/coordinator.ts';
import { EtcdCoordinator } from '../coordination/etcd.ts';
import { silentLogger } from '../util/log.ts';

/**
 * The managers, from etcd (every manager registers there) or from the local manager's API; a
 * string says why they could not be listed (etcd unreachable, the API's certificate not trusted).
 */
async function managersOf(config: Config): Promise<ManagerInfo[] | string> {
  try {
    if (config.coordination.backend === 'etcd') {
      const c = new EtcdCoordinator(config.coordination, silentLogger);
      try {
        return await c.managers();
      } finally {
        await c.close();
      }
    }
    const answer = await callManager(config, 'GET', '/api/v1/managers', undefined, 3000);
    if (answer && answer.status !== 200) return `the manager's API answered ${answer.status}: ${String(answer.json['error'] ?? '')}`;
    return answer ? (answer.json['managers'] as ManagerInfo[]) : [];
  } catch (e) {
    return config.coordination.backend === 'etcd' ? 'coordination unreachable' : (e as Error).message;
  }
}

function renderManagers(config: Config, managers: ManagerInfo[] | string): string {
  if (typeof managers === 'string') return `managers (${config.coordination.backend}): unknown (${managers})`;
  if (managers.length === 0) return `managers (${config.coordination.backend}): none running`;
  const lines = [`managers (${config.coordination.backend}):`];
  for (const m of managers) {
    const lease = m.leader && m.leaseRemainingSeconds !== undefined ? `, lease ${m.leaseRemainingSeconds}/${m.leaseTtlSeconds} s left` : '';
    const leads = m.leads && config.clusters.length > 1 ? `  leads ${m.leads.join(', ') || 'nothing'}` : '';
    lines.push(`  ${m.leader ? '★ leader  ' : '  follower'} ${m.id}${m.api ? `  api ${m.api}` : ''}  up ${Math.round((Date.now() - m.startedAt) / 1000)} s${lease}${leads}`);
  }
  return lines.join('\n');
}

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
  const managers = await managersOf(config);
  // Each cluster has its own leader: say which manager acts on it.
  if (typeof managers !== 'string') for (const r of reports) r.leader = managers.find((m) => m.leads?.includes(r.name))?.id;
  if (opts.json) process.stdout.write(`${JSON.stringify({ clusters: reports, ...(typeof managers === 'string' ? { managers: undefined, managersError: managers } : { managers }) }, null, 2)}\n`);
  else {
    process.stdout.write(`${reports.map(renderClusterText).join('\n\n')}\n`);
    process.stdout.write(`${renderManagers(config, managers)}\n`);
  }
  return reports.every((r) => r.health === 'healthy') ? 0 : 1;
}
