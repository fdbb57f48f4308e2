import type { Account } from '../config/load.ts';
import { detectFlavor, probeInstance } from '../monitor/probe.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import { classifyError, DbConnection } from '../sql/connection.ts';
import { binlogDumpClients } from '../sql/queries.ts';

/** One server the crawl reached (or tried to). */
export interface FoundInstance {
  host: string;
  port: number;
  id: string;
  /** How the crawl learnt of it. */
  via: string;
  obs?: InstanceObservation;
  /** Why it could not be probed. */
  error?: string;
  /** The same server (same server_id) already found under another address: not listed twice. */
  aliasOf?: string;
}

export interface DiscoveryFinding {
  severity: 'warning' | 'critical';
  message: string;
  fix: string;
}

export interface Discovery {
  instances: FoundInstance[];
  /** The instance nothing replicates from upstream of, replicated from by others, and writable: the primary. */
  primary?: string;
  findings: DiscoveryFinding[];
}

const key = (host: string, port: number) => `${host}:${port}`;

/**
 * Walks a replication topology from one server: its source (replica status), its replicas (the
 * replicas registered with it, SHOW SLAVE HOSTS, and the binlog dump threads in its process list),
 * then theirs, until nothing new turns up. Read-only. Addresses a replica reports that Regent cannot
 * reach (report_host behind NAT, a name that does not resolve here) and replicas reading the binlog
 * without registering an address are named as findings with the fix.
 */
export async function discoverTopology(
  seed: { host: string; port: number },
  account: Account,
  timeouts: { connectTimeoutMs: number; queryTimeoutMs: number },
  opts: { limit?: number; onFound?: (inst: FoundInstance) => void } = {},
): Promise<Discovery> {
  const limit = opts.limit ?? 200;
  const found = new Map<string, FoundInstance>();
  const findings: DiscoveryFinding[] = [];
  const queue: { host: string; port: number; via: string }[] = [{ ...seed, via: 'the seed' }];
  while (queue.length > 0 && found.size < limit) {
    const next = queue.shift()!;
    const id = key(next.host, next.port);
    if (found.has(id)) continue;
    const inst: FoundInstance = { host: next.host, port: next.port, id, via: next.via };
    found.set(id, inst);
    let conn: DbConnection | undefined;
    try {
      conn = await DbConnection.open(next.host, next.port, account, timeouts);
      const flavor = await detectFlavor(conn);
      inst.obs = await probeInstance(conn, flavor, id);
      const serverId = inst.obs.settings?.serverId;
      const same = [...found.values()].find((o) => o !== inst && o.obs?.settings?.serverId === serverId && !o.aliasOf);
      if (same) {
        // One server known by two names (a host name and an address, say): keep the first.
        inst.aliasOf = same.id;
        continue;
      }
      const r = inst.obs.replica;
      if (r?.sourceHost) queue.push({ host: r.sourceHost, port: r.sourcePort, via: `the source of ${id}` });
      const registered = flavor.parseRegisteredReplicas(await conn.query(flavor.registeredReplicasQuery).catch(() => []));
      for (const rep of registered) queue.push({ host: rep.host || next.host, port: rep.port, via: `registered as a replica of ${id} (server_id ${rep.serverId})` });
      // A replica that reads the binlog without registering an address can be seen, not reached.
      // Counted per client host: several replicas on one host (or loopback) share an address.
      const dumps = await binlogDumpClients(conn).catch(() => []);
      const countBy = (hosts: string[]) => hosts.reduce((m, h) => m.set(h, (m.get(h) ?? 0) + 1), new Map<string, number>());
      const registeredPerHost = countBy(registered.map((x) => x.host));
      for (const [host, readers] of countBy(dumps.map((d) => d.host)))
        if (readers > (registeredPerHost.get(host) ?? 0))
          findings.push({
            severity: 'warning',
            message: `a replica at ${host} reads the binary log of ${id} but registered no address (no report_host/report_port), so its port is unknown`,
            fix: `on that replica set report_host (an address Regent reaches) and report_port in its option file and restart replication, or add it by hand to the cluster's instances`,
          });
    } catch (e) {
      const err = classifyError(e, id, account.user);
      inst.error = err.message;
      findings.push({
        severity: next.via === 'the seed' ? 'critical' : 'warning',
        message: `${id} (${next.via}) cannot be probed: ${err.message}`,
        fix:
          err.kind === 'auth' || err.kind === 'privilege'
            ? 'give the manager account access there (regent grants prints the statements)'
            : next.via.startsWith('registered')
              ? `the replica reports an address Regent cannot reach (report_host behind NAT, or a name that does not resolve here): set report_host and report_port on it to an address reachable from Regent, or add the instance by hand`
              : 'check that the server runs and that this host reaches it',
      });
    } finally {
      await conn?.close();
    }
    opts.onFound?.(inst);
  }
  if (queue.some((q) => !found.has(key(q.host, q.port)))) findings.push({ severity: 'warning', message: `stopped after ${limit} instances; more were named`, fix: 'add the rest by hand, or split the cluster' });
  const instances = [...found.values()].filter((i) => !i.aliasOf);
  const picked = pickPrimary(instances);
  return { instances, primary: picked.primary, findings: [...findings, ...picked.findings] };
}

/**
 * The primary of crawled instances: reachable, replicating from nobody, writable and replicated
 * from; else the only instance that replicates from nobody. Several candidates, or none, are
 * findings (a cluster has one primary). Pure.
 */
export function pickPrimary(instances: FoundInstance[]): { primary?: string; findings: DiscoveryFinding[] } {
  const findings: DiscoveryFinding[] = [];
  const sources = new Set(instances.map((i) => i.obs?.replica && key(i.obs.replica.sourceHost, i.obs.replica.sourcePort)).filter(Boolean));
  const roots = instances.filter((i) => i.obs?.reachable && !i.obs.replica?.sourceHost);
  const writableSources = roots.filter((i) => sources.has(i.id) && i.obs?.settings && !i.obs.settings.readOnly);
  const primary = writableSources.length === 1 ? writableSources[0] : writableSources.length === 0 && roots.length === 1 ? roots[0] : undefined;
  if (!primary)
    findings.push(
      writableSources.length > 1
        ? { severity: 'critical', message: `${writableSources.length} writable instances replicate from nobody and are replicated from (${writableSources.map((r) => r.id).join(', ')}): split brain, or two topologies`, fix: 'crawl from one topology at a time; fence the one that is not the primary first' }
        : { severity: 'critical', message: 'no primary found: no reachable instance replicates from nobody and is replicated from', fix: 'seed the crawl from a server of a running replication topology' },
    );
  if (roots.length > 1) findings.push({ severity: 'warning', message: `${roots.length} instances replicate from nobody: ${roots.map((r) => r.id).join(', ')}`, fix: 'a cluster has one primary; rejoin the others (regent rejoin) once it is registered' });
  return { primary: primary?.id, findings };
}

/** The discovered topology as a cluster entry of the configuration (what `cluster add` registers). */
export function clusterEntry(name: string, d: Discovery): Record<string, unknown> & { name: string } {
  // The primary first, then in the order the crawl reached them.
  const reachable = d.instances.filter((i) => i.obs?.reachable).sort((a, b) => Number(b.id === d.primary) - Number(a.id === d.primary));
  return { name, ...(d.primary ? { primary: d.primary } : {}), instances: reachable.map((i) => ({ host: i.host, port: i.port })) };
}
