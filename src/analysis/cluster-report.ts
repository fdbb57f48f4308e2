import type { ClusterConfig } from '../config/load.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import type { Analysis } from './analyze.ts';
import type { Problem } from './problems.ts';
import type { Decision } from '../decision/decision.ts';

/**
 * A cluster as plain JSON: what `regent status --json`, the API and the dashboard show. GTIDs become
 * strings, BigInts become strings, and nothing secret is in it.
 */
export interface InstanceReport {
  id: string;
  name: string;
  role: 'primary' | 'replica' | 'orphan' | 'unknown';
  source?: string;
  reachable: boolean;
  error?: string;
  errorKind?: string;
  serverId?: number;
  version?: string;
  readOnly?: boolean;
  gtidExecuted?: string;
  gtidBinlog?: string;
  latencyMs?: number;
  dataCenter?: string;
  promotion: string;
  semiSync?: { primaryActive: boolean; primaryClients: number; replicaActive: boolean };
  replication?: {
    sourceHost: string;
    sourcePort: number;
    ioThread: string;
    sqlThread: boolean;
    secondsBehind: number | null;
    lastIoError?: string;
    lastSqlError?: string;
    receivedGtid: string;
    sqlDelay: number;
  };
}

export type Health = 'healthy' | 'degraded' | 'down';

export interface ClusterReport {
  name: string;
  /** Router endpoints from the config (writer/reader listen addresses, the SQL endpoint's). */
  endpoints: { writer?: string; reader?: string; sql?: string };
  health: Health;
  /** The primary the topology shows (what the servers say). */
  primary?: string;
  primaryEvidence: string;
  /** The primary Regent decided on (what the writer endpoints follow), when a manager's record is known. */
  decidedPrimary?: string;
  /** Former primaries Regent fenced. */
  fenced?: string[];
  /** The manager that leads (acts on) this cluster, when known. */
  leader?: string;
  instances: InstanceReport[];
  problems: Problem[];
}

export function healthOf(problems: Problem[], instances: InstanceReport[]): Health {
  if (instances.every((i) => !i.reachable)) return 'down';
  if (problems.some((p) => p.code === 'DeadPrimaryAndAllReplicas')) return 'down';
  return problems.some((p) => p.severity !== 'info') ? 'degraded' : 'healthy';
}

export function clusterReport(cluster: ClusterConfig, observations: Map<string, InstanceObservation>, analysis: Analysis, decision?: Decision): ClusterReport {
  const { topology } = analysis;
  const instances = cluster.instances.map((inst): InstanceReport => {
    const o = observations.get(inst.id);
    const role = inst.id === topology.primary ? 'primary' : topology.sources.has(inst.id) ? 'replica' : topology.orphans.includes(inst.id) ? 'orphan' : 'unknown';
    const r = o?.replica;
    return {
      id: inst.id,
      name: inst.name,
      role,
      source: topology.sources.get(inst.id) ?? (r?.sourceHost ? `${r.sourceHost}:${r.sourcePort}` : undefined),
      reachable: o?.reachable ?? false,
      error: o?.error?.message,
      errorKind: o?.error?.kind,
      serverId: o?.settings?.serverId,
      version: o?.settings?.version,
      readOnly: o?.settings?.readOnly,
      gtidExecuted: o?.gtids?.executed.toString(),
      gtidBinlog: o?.gtids?.binlog.toString(),
      latencyMs: o?.latencyMs === undefined ? undefined : Math.round(o.latencyMs * 100) / 100,
      dataCenter: inst.dataCenter,
      promotion: inst.promotion,
      semiSync: o?.semiSync,
      replication: r && {
        sourceHost: r.sourceHost,
        sourcePort: r.sourcePort,
        ioThread: r.ioThread,
        sqlThread: r.sqlThread,
        secondsBehind: r.secondsBehind,
        lastIoError: r.lastIoErrno ? `${r.lastIoErrno}: ${r.lastIoError}` : undefined,
        lastSqlError: r.lastSqlErrno ? `${r.lastSqlErrno}: ${r.lastSqlError}` : undefined,
        receivedGtid: r.receivedGtid.toString(),
        sqlDelay: r.sqlDelay,
      },
    };
  });
  return {
    name: cluster.name,
    endpoints: { writer: cluster.router.writer, reader: cluster.router.reader, sql: cluster.router.sql?.listen },
    health: healthOf(analysis.problems, instances),
    primary: topology.primary,
    primaryEvidence: topology.primaryEvidence,
    decidedPrimary: decision?.decidedPrimary,
    fenced: decision ? [...decision.fenced] : undefined,
    instances,
    problems: analysis.problems,
  };
}

/** The report as a terminal tree: the primary, its replicas under it, then orphans and problems. */
export function renderClusterText(report: ClusterReport): string {
  const lines: string[] = [];
  lines.push(`cluster ${report.name}: ${report.health.toUpperCase()}${report.primary ? `, primary ${report.primary}` : ', no primary'}${report.leader ? `, led by ${report.leader}` : ''}`);
  const e = report.endpoints;
  if (e.writer || e.reader || e.sql) lines.push(`  endpoints: writer ${e.writer ?? '(none)'}, reader ${e.reader ?? '(none)'}${e.sql ? `, sql ${e.sql}` : ''}`);
  const byId = new Map(report.instances.map((i) => [i.id, i]));
  const children = (id: string) => report.instances.filter((i) => i.role === 'replica' && i.source === id);
  const describe = (i: InstanceReport): string => {
    // An instance without a short name is named by its address: once is enough.
    const who = i.name === i.id ? i.id : `${i.name} ${i.id}`;
    if (!i.reachable) return `${who}  ${i.role.toUpperCase()}  UNREACHABLE (${i.error ?? 'no answer'})`;
    const parts = [who, i.role, i.readOnly ? 'read_only' : 'writable', `server_id ${i.serverId}`, `gtid ${i.gtidExecuted || '(empty)'}`];
    const r = i.replication;
    if (r) {
      parts.push(`IO ${r.ioThread} SQL ${r.sqlThread ? 'yes' : 'no'}`, `lag ${r.secondsBehind === null ? '?' : `${r.secondsBehind}s`}`);
      if (r.lastIoError) parts.push(`IO error ${r.lastIoError}`);
      if (r.lastSqlError) parts.push(`SQL error ${r.lastSqlError}`);
    }
    if (i.semiSync?.primaryActive) parts.push(`semi-sync primary (${i.semiSync.primaryClients} replica${i.semiSync.primaryClients === 1 ? '' : 's'})`);
    if (i.promotion !== 'neutral') parts.push(`promotion ${i.promotion}`);
    return parts.join('  ');
  };
  const walk = (id: string, prefix: string, seen: Set<string>) => {
    const kids = children(id).filter((k) => !seen.has(k.id));
    kids.forEach((k, idx) => {
      const last = idx === kids.length - 1;
      seen.add(k.id);
      lines.push(`${prefix}${last ? '└─ ' : '├─ '}${describe(k)}`);
      walk(k.id, `${prefix}${last ? '   ' : '│  '}`, seen);
    });
  };
  const seen = new Set<string>();
  if (report.primary) {
    const p = byId.get(report.primary);
    if (p) {
      seen.add(p.id);
      lines.push(`● ${describe(p)}`);
      walk(p.id, '  ', seen);
    }
  }
  for (const i of report.instances) if (!seen.has(i.id)) lines.push(`○ ${describe(i)}`);
  if (report.problems.length > 0) {
    lines.push('problems:');
    for (const p of report.problems) {
      lines.push(`  [${p.severity}] ${p.code}: ${p.summary}`);
      for (const e of p.evidence) lines.push(`      ${e}`);
    }
  }
  return lines.join('\n');
}
