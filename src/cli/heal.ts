import type { Config, InstanceConfig } from '../config/load.ts';
import { instanceId } from '../config/load.ts';
import type { ClusterSupervisor } from '../manager/cluster-supervisor.ts';
import { analyzeCluster } from '../analysis/analyze.ts';
import { inspectCluster } from '../monitor/inspect.ts';
import { cloneInstance } from '../setup/clone.ts';
import { createProgress } from '../util/progress.ts';
import { callManager, managerRefusal } from './api-client.ts';
import { withOneShotSupervisor } from './one-shot.ts';
import { UsageError } from '../errors.ts';
import { pickCluster } from './recovery.ts';

function findInstance(config: Config, clusterName: string | undefined, ref: string): { cluster: ReturnType<typeof pickCluster>; id: string } {
  const cluster = pickCluster(config, clusterName);
  const inst = cluster.instances.find((i) => i.id === ref || i.name === ref);
  if (!inst) throw new UsageError(`no instance "${ref}" in cluster ${cluster.name} (instances: ${cluster.instances.map((i) => i.name).join(', ')})`);
  return { cluster, id: inst.id };
}

/** Runs an action through the running manager, or alone with a one-shot supervisor. */
async function viaManagerOrLocal<T extends { ok?: boolean }>(
  config: Config,
  path: string,
  body: unknown,
  local: (s: ClusterSupervisor) => Promise<T | { refusal: string }>,
  cluster: ReturnType<typeof pickCluster>,
  what: string,
): Promise<{ result?: T; refusal?: { code: 1 | 2; line: string } }> {
  const answer = await callManager(config, 'POST', path, body);
  if (answer) return answer.status >= 400 && answer.json['error'] ? { refusal: managerRefusal(answer, what) } : { result: answer.json as unknown as T };
  const r = await withOneShotSupervisor(config, cluster, 'this action', local);
  return 'refusal' in r ? { refusal: { code: 1, line: `regent: ${what} refused: ${r.refusal}` } } : { result: r };
}

export async function rejoinCommand(config: Config, ref: string, opts: { cluster?: string }): Promise<number> {
  const { cluster, id } = findInstance(config, opts.cluster, ref);
  const { result, refusal } = await viaManagerOrLocal(config, `/api/v1/clusters/${encodeURIComponent(cluster.name)}/instances/${encodeURIComponent(id)}/rejoin`, {}, (s) => s.manual.rejoin(id, 'manual (CLI)'), cluster, `rejoin of ${id}`);
  if (refusal) {
    process.stderr.write(`${refusal.line}\n`);
    return refusal.code;
  }
  const r = result as unknown as { ok: boolean; action: string; errant?: string; savedTo?: string; error?: string; steps: { name: string; ok: boolean; durationMs: number; detail: string }[] };
  for (const s of r.steps ?? []) process.stdout.write(`${s.ok ? '✔' : '✖'} ${s.name} (${s.durationMs} ms): ${s.detail}\n`);
  if (!r.ok) {
    process.stderr.write(`regent: rejoin of ${id} not done: ${r.error}\n`);
    return 1;
  }
  process.stdout.write(`${id} rejoined (${r.action})${r.errant ? `; errant transactions ${r.errant} were saved to ${r.savedTo} and rewound` : ''}\n`);
  return 0;
}

export async function repairCommand(config: Config, ref: string, opts: { cluster?: string; retry?: boolean; reclone?: boolean }): Promise<number> {
  if (Boolean(opts.retry) === Boolean(opts.reclone)) throw new UsageError('choose one: --retry (start replication again) or --reclone (rebuild the data from another instance; its own data is discarded)');
  const action = opts.retry ? 'retry' : 'reclone';
  const { cluster, id } = findInstance(config, opts.cluster, ref);
  const { result, refusal } = await viaManagerOrLocal(config, `/api/v1/clusters/${encodeURIComponent(cluster.name)}/instances/${encodeURIComponent(id)}/repair`, { action }, (s) => s.manual.repair(id, action), cluster, `repair of ${id}`);
  if (refusal) {
    process.stderr.write(`${refusal.line}\n`);
    return refusal.code;
  }
  const r = result as unknown as { ok: boolean; detail: string };
  process.stdout.write(`${id}: ${r.detail}\n`);
  return r.ok ? 0 : 1;
}

function parseEndpoint(s: string): InstanceConfig {
  const m = /^([^\s:]+):(\d+)$/.exec(s);
  if (!m) throw new UsageError(`expected host:port, got "${s}"`);
  const port = Number(m[2]);
  return { host: m[1]!, port, id: instanceId(m[1]!, port), name: instanceId(m[1]!, port), promotion: 'neutral', labels: {} };
}

/** `regent clone --from SOURCE --to TARGET`: the target may be a new server not yet in the config. */
export async function cloneCommand(config: Config, opts: { cluster?: string; from: string; to: string }): Promise<number> {
  const cluster = pickCluster(config, opts.cluster);
  const known = (ref: string) => cluster.instances.find((i) => i.id === ref || i.name === ref);
  const source = known(opts.from);
  if (!source) throw new UsageError(`--from ${opts.from} is not an instance of cluster ${cluster.name}`);
  const target = known(opts.to) ?? parseEndpoint(opts.to);
  const inspected = await inspectCluster(cluster);
  const { topology } = analyzeCluster({ cluster, observations: new Map(inspected.map((i) => [i.instance.id, i.obs])), now: Date.now() });
  const primary = topology.primary ? known(topology.primary) : undefined;
  if (!primary) throw new UsageError(`cluster ${cluster.name} has no primary to replicate from`);
  const r = await cloneInstance(cluster, { source, target, primary, progress: createProgress() });
  process.stdout.write(`cloned ${source.id} -> ${target.id}: ${r.databases.join(', ') || 'no application databases'}, ${(r.bytes / 1048576).toFixed(1)} MiB at GTID ${r.gtid || '(empty)'} in ${r.durationMs} ms; replicating from ${primary.id}\n`);
  if (!known(opts.to)) process.stdout.write(`add ${target.id} to the instances of ${cluster.name} in ${config.file} so Regent watches it\n`);
  return 0;
}
