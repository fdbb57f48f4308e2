import type { Analysis } from '../analysis/analyze.ts';
import type { ClusterConfig, Config } from '../config/load.ts';
import { ClusterSupervisor } from '../manager/cluster-supervisor.ts';
import { actionLogger } from '../util/log.ts';
import { localCoordinatorFor } from './api-client.ts';

/**
 * Runs an action without a running manager: a supervisor for one cluster that probes once, takes
 * the decision from the shared state (or the topology when none was made), acts through the same
 * manual actions the API uses, and stops. Only with the local backend: with etcd, acting outside
 * the leader would break the one-actor rule.
 */
export async function withOneShotSupervisor<T>(config: Config, cluster: ClusterConfig, what: string, fn: (s: ClusterSupervisor, analysis: Analysis) => Promise<T>): Promise<T> {
  const supervisor = new ClusterSupervisor(cluster, localCoordinatorFor(config, what), actionLogger(), { stateDir: config.stateDir });
  try {
    return await fn(supervisor, await supervisor.prepareOneShot());
  } finally {
    await supervisor.stop();
  }
}
