import { writeFileSync } from 'node:fs';
import { analyzeCluster } from '../analysis/analyze.ts';
import type { Config } from '../config/load.ts';
import { inspectCluster } from '../monitor/inspect.ts';
import { haproxyConfig } from '../router/haproxy.ts';
import { UsageError } from '../errors.ts';
import { pickCluster } from './recovery.ts';

/** `regent haproxy-config`: probes the cluster for the current primary, then writes haproxy.cfg. */
export async function haproxyConfigCommand(config: Config, o: { cluster?: string; writerBind: string; readerBind?: string; socket: string; out?: string }): Promise<number> {
  const cluster = pickCluster(config, o.cluster);
  if (!cluster.router.healthCheckBasePort) throw new UsageError(`cluster ${cluster.name}: set router.healthCheckBasePort in ${config.file}; HAProxy checks Regent's per-instance health endpoints`);
  const inspected = await inspectCluster(cluster);
  const observations = new Map(inspected.map((i) => [i.instance.id, i.obs]));
  const { topology } = analyzeCluster({ cluster, observations, now: Date.now() });
  const text = haproxyConfig(cluster, { writerBind: o.writerBind, readerBind: o.readerBind, adminSocket: o.socket, primary: topology.primary });
  if (o.out) {
    writeFileSync(o.out, text);
    process.stdout.write(`wrote ${o.out} (primary ${topology.primary ?? 'unknown: every writer server starts disabled'})\n`);
  } else process.stdout.write(text);
  return 0;
}
