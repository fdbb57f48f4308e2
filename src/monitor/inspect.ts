import type { ClusterConfig, InstanceConfig } from '../config/load.ts';
import { classifyError, DbConnection } from '../sql/connection.ts';
import type { Flavor } from '../sql/flavor.ts';
import { unreachable, type InstanceObservation } from './observation.ts';
import { detectFlavor, probeInstance } from './probe.ts';

export interface InspectedInstance {
  instance: InstanceConfig;
  obs: InstanceObservation;
  /** Open manager connection (callers close it with closeAll), absent when unreachable. */
  conn?: DbConnection;
  flavor?: Flavor;
}

/**
 * One-shot look at every instance of a cluster, in parallel, each bounded by the cluster's timeouts:
 * used by commands that work without a running manager (status, bootstrap, doctor).
 */
export async function inspectCluster(cluster: ClusterConfig, opts: { keepOpen?: boolean } = {}): Promise<InspectedInstance[]> {
  const timeouts = { connectTimeoutMs: cluster.monitor.connectTimeoutMs, queryTimeoutMs: cluster.monitor.queryTimeoutMs };
  return Promise.all(
    cluster.instances.map(async (instance): Promise<InspectedInstance> => {
      let conn: DbConnection | undefined;
      try {
        conn = await DbConnection.open(instance.host, instance.port, cluster.accounts.manager, timeouts);
        const flavor = await detectFlavor(conn);
        const obs = await probeInstance(conn, flavor, instance.id);
        if (!opts.keepOpen) {
          await conn.close();
          return { instance, obs, flavor };
        }
        return { instance, obs, conn, flavor };
      } catch (e) {
        conn?.destroy();
        const err = classifyError(e, instance.id, cluster.accounts.manager.user);
        return { instance, obs: unreachable(instance.id, err.kind, err.message) };
      }
    }),
  );
}

export async function closeAll(items: InspectedInstance[]): Promise<void> {
  await Promise.all(items.map((i) => i.conn?.close()));
}
