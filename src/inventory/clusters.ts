import { configFromDocument, readConfigDocument, readConfigFile, type ClusterConfig, type Config } from '../config/load.ts';
import type { Coordinator, InventoryEntry } from '../coordination/coordinator.ts';
import { evaluateCluster } from '../doctor/evaluate.ts';
import type { Finding } from '../doctor/facts.ts';
import { gatherClusterFacts } from '../doctor/gather.ts';
import { UsageError } from '../errors.ts';
import { clusterEntry, discoverTopology, type Discovery } from '../setup/discover.ts';
import type { ReloadReport } from './diff.ts';
import { mergeInventory, type ClusterOrigin } from './merge.ts';
import { addClusterToFile, addInstanceToFile, removeClusterFromFile } from './yaml-file.ts';

/** What `cluster add` found and would register. */
export interface ClusterProposal {
  name: string;
  seed: string;
  /** The entry as it goes into the YAML or the etcd inventory. */
  entry: Record<string, unknown> & { name: string };
  discovery: Discovery;
  /** The doctor's findings on the discovered cluster (empty when discovery already refused). */
  findings: Finding[];
  /** Why it cannot be registered as found; empty when it can. */
  refusals: string[];
}

/** What `cluster add` through a manager did. */
export interface ClusterAddResult {
  proposal: ClusterProposal;
  registered: boolean;
  /** Why not (refusals, critical findings, or a dry run). */
  why?: string;
  where?: string;
  report?: ReloadReport;
}

/** A proposal as JSON (CLI --json, the API, the dashboard): what was found, not the raw probes. */
export function proposalSummary(p: ClusterProposal) {
  return {
    name: p.name,
    seed: p.seed,
    entry: p.entry,
    primary: p.discovery.primary,
    instances: p.discovery.instances.map((i) => ({
      id: i.id,
      via: i.via,
      reachable: i.obs?.reachable ?? false,
      role: i.id === p.discovery.primary ? 'primary' : i.obs?.replica ? 'replica' : i.obs?.reachable ? 'no source' : 'unreachable',
      source: i.obs?.replica ? `${i.obs.replica.sourceHost}:${i.obs.replica.sourcePort}` : undefined,
      version: i.obs?.settings?.version,
      error: i.error,
    })),
    discoveryFindings: p.discovery.findings,
    doctor: p.findings.filter((f) => f.severity !== 'ok'),
    refusals: p.refusals,
  };
}

/** Why a proposal is not registered as it stands (undefined: it may be). */
export function registrationBlocked(p: ClusterProposal, acceptFindings: boolean): string | undefined {
  if (p.refusals.length > 0) return p.refusals.join('; ');
  const critical = p.findings.filter((f) => f.severity === 'critical');
  if (critical.length > 0 && !acceptFindings)
    return `the doctor found ${critical.length} critical problem${critical.length > 1 ? 's' : ''} (${critical[0]!.message}); fix ${critical.length > 1 ? 'them' : 'it'}, or register anyway with --accept-findings`;
  return undefined;
}

/** Where registrations go: the YAML (local backend) or the etcd inventory. */
export function inventoryLocation(config: Config): string {
  return config.coordination.backend === 'etcd' ? `etcd ${config.coordination.prefix.replace(/\/$/, '')}/_inventory/` : config.file;
}

const TIMEOUTS = { connectTimeoutMs: 1500, queryTimeoutMs: 3000 };

/**
 * Crawls the topology from one server and checks what it found with the doctor: nothing is
 * written. A cluster is refused when the crawl found no primary, the seed cannot be probed, the
 * name is taken, or an instance already belongs to another cluster.
 */
export async function proposeCluster(config: Config, coordinator: Coordinator | undefined, name: string, seed: string): Promise<ClusterProposal> {
  const m = /^([^\s:]+):(\d{1,5})$/.exec(seed);
  if (!m) throw new UsageError(`--seed ${seed}: expected host:port, for example 10.0.0.5:3306`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new UsageError(`cluster name "${name}": letters, digits, _ . - only, starting with a letter or digit`);
  if (config.clusters.some((c) => c.name === name)) throw new UsageError(`a cluster named "${name}" is already registered; choose another name`);
  const discovery = await discoverTopology({ host: m[1]!, port: Number(m[2]) }, config.defaultAccounts.manager, TIMEOUTS);
  const entry = clusterEntry(name, discovery);
  const refusals = discovery.findings.filter((f) => f.severity === 'critical').map((f) => f.message);
  const owners = new Map(config.clusters.flatMap((c) => c.instances.map((i) => [i.id, c.name] as const)));
  for (const i of discovery.instances.filter((x) => x.obs?.reachable)) {
    const owner = owners.get(i.id);
    if (owner) refusals.push(`${i.id} already belongs to cluster ${owner}; an instance belongs to one cluster`);
  }
  let findings: Finding[] = [];
  if (refusals.length === 0) {
    const cluster = await candidate(config, coordinator, entry);
    findings = evaluateCluster(await gatherClusterFacts(cluster, { configFile: config.file || undefined }));
  }
  return { name, seed, entry, discovery, findings, refusals };
}

/** The cluster as the manager would load it (the file's shared settings and accounts applied). */
async function candidate(config: Config, coordinator: Coordinator | undefined, entry: ClusterProposal['entry']): Promise<ClusterConfig> {
  const doc = fileDocument(config.file);
  const inventory = coordinator?.backend === 'etcd' ? await coordinator.readInventory() : [];
  const merged = mergeInventory(doc, [...inventory.filter((e) => e.name !== entry.name), { name: entry.name, cluster: entry, at: Date.now(), by: 'check' }]);
  return configFromDocument(merged.doc, config.file).clusters.find((c) => c.name === entry.name)!;
}

/**
 * Registers a proposed cluster: into the YAML (comments kept) with the local backend, into the
 * etcd inventory otherwise. Refuses a proposal with refusals, and one with critical doctor
 * findings unless `acceptFindings`.
 */
export async function registerCluster(config: Config, coordinator: Coordinator | undefined, p: ClusterProposal, opts: { acceptFindings: boolean; by: string }): Promise<string> {
  const blocked = registrationBlocked(p, opts.acceptFindings);
  if (blocked) throw new UsageError(`cluster ${p.name} not registered: ${blocked}`);
  if (config.coordination.backend === 'etcd') await etcdOnly(coordinator).writeInventory({ name: p.name, cluster: p.entry, at: Date.now(), by: opts.by });
  else addClusterToFile(config.file, p.entry);
  return inventoryLocation(config);
}

/**
 * Stops managing a cluster: out of the YAML with the local backend; with etcd, out of the
 * inventory, or (a cluster the YAML names) a tombstone, so every manager drops it.
 */
export async function unregisterCluster(config: Config, coordinator: Coordinator | undefined, origins: Map<string, ClusterOrigin>, name: string, by: string): Promise<string> {
  const origin = origins.get(name);
  if (!origin) throw new UsageError(`no cluster named "${name}" (clusters: ${[...origins.keys()].join(', ') || 'none'})`);
  if (config.coordination.backend !== 'etcd') {
    removeClusterFromFile(config.file, name);
    return config.file;
  }
  const inFile = (fileDocument(config.file)['clusters'] as { name?: unknown }[] | undefined)?.some((c) => c?.name === name) ?? false;
  if (inFile) {
    const tombstone: InventoryEntry = { name, removed: true, at: Date.now(), by };
    await etcdOnly(coordinator).writeInventory(tombstone);
  } else await etcdOnly(coordinator).deleteInventory(name);
  return inventoryLocation(config);
}

/**
 * Adds an instance to a registered cluster: in the YAML with the local backend; with etcd, in the
 * cluster's inventory entry (a cluster the file names gets an entry that overrides it).
 */
export async function addInstanceToCluster(config: Config, coordinator: Coordinator | undefined, origins: Map<string, ClusterOrigin>, cluster: string, address: string): Promise<string> {
  const m = /^([^\s:]+):(\d{1,5})$/.exec(address);
  if (!m) throw new UsageError(`${address}: expected host:port`);
  const origin = origins.get(cluster);
  if (!origin) throw new UsageError(`no cluster named "${cluster}"`);
  const owner = config.clusters.find((c) => c.instances.some((i) => i.id === address));
  if (owner) throw new UsageError(`${address} already belongs to cluster ${owner.name}`);
  const instance = { host: m[1]!, port: Number(m[2]) };
  if (config.coordination.backend !== 'etcd') {
    addInstanceToFile(config.file, cluster, instance);
    return config.file;
  }
  const etcd = etcdOnly(coordinator);
  const current = origin === 'inventory'
    ? (await etcd.readInventory()).find((e): e is Extract<InventoryEntry, { cluster: unknown }> => e.name === cluster && 'cluster' in e)?.cluster
    : ((fileDocument(config.file)['clusters'] as Record<string, unknown>[] | undefined) ?? []).find((c) => c['name'] === cluster);
  if (!current) throw new UsageError(`cluster ${cluster} changed meanwhile; try again`);
  const next = { ...current, instances: [...((current['instances'] as unknown[] | undefined) ?? []), instance] };
  // The whole configuration must still load with it (an instance listed twice, a bad address).
  const doc = fileDocument(config.file);
  const inventory = (await etcd.readInventory()).filter((e) => e.name !== cluster);
  configFromDocument(mergeInventory(doc, [...inventory, { name: cluster, cluster: next, at: Date.now(), by: 'check' }]).doc, config.file);
  await etcd.writeInventory({ name: cluster, cluster: next, at: Date.now(), by: 'add-instance' });
  return inventoryLocation(config);
}

/** The configuration file as plain data (what the inventory is merged into). */
function fileDocument(file: string): Record<string, unknown> {
  const { file: path, text } = readConfigFile(file);
  return readConfigDocument(text, path);
}

function etcdOnly(c: Coordinator | undefined): Coordinator {
  if (!c || c.backend !== 'etcd') throw new Error('the etcd inventory needs an etcd coordinator');
  return c;
}
