import { parseConfigText, type ClusterConfig } from '../../src/config/load.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import { MariaGtidPosition } from '../../src/gtid/index.ts';
import type { InstanceObservation } from '../../src/monitor/observation.ts';
import type { ReplicaStatus } from '../../src/sql/flavor.ts';
import { emptyDecision, type Decision } from '../../src/decision/decision.ts';

/** Builders for cluster views in pure tests: MariaDB flavor, instances 127.0.0.1:3301.. */

export function cluster(n: number, extra: { promotion?: Record<number, 'prefer' | 'never'>; dc?: Record<number, string> } = {}): ClusterConfig {
  const instances = Array.from({ length: n }, (_, i) => {
    const lines = [`      - host: 127.0.0.1`, `        port: ${3301 + i}`, `        name: n${i + 1}`];
    if (extra.promotion?.[i + 1]) lines.push(`        promotion: ${extra.promotion[i + 1]}`);
    if (extra.dc?.[i + 1]) lines.push(`        dataCenter: ${extra.dc[i + 1]}`);
    return lines.join('\n');
  });
  const text = `clusters:\n  - name: c\n    primary: 127.0.0.1:3301\n    instances:\n${instances.join('\n')}\n`;
  return parseConfigText(text, '/virtual/regent.yaml', {}).clusters[0]!;
}

export const id = (n: number) => `127.0.0.1:${3300 + n}`;

export function primaryObs(n: number, gtid: string, opts: { readOnly?: boolean } = {}): InstanceObservation {
  return serverObs(n, gtid, { readOnly: opts.readOnly ?? false });
}

export function serverObs(n: number, gtid: string, opts: { readOnly?: boolean; replica?: Partial<ReplicaStatus> & { source?: number }; logBin?: boolean; at?: number; lastContact?: number } = {}): InstanceObservation {
  const pos = MariaGtidPosition.parse(gtid);
  const at = opts.at ?? 1000;
  const r = opts.replica;
  return {
    id: id(n),
    at,
    reachable: true,
    latencyMs: 0.3,
    flavor: 'mariadb',
    settings: {
      serverId: n,
      gtidOrigin: String(n),
      version: '10.11.19-MariaDB',
      readOnly: opts.readOnly ?? true,
      superReadOnly: null,
      logBin: opts.logBin ?? true,
      logReplicaUpdates: true,
      binlogFormat: 'ROW',
      gtidStrict: true,
      semiSyncPrimaryEnabled: false,
      semiSyncReplicaEnabled: true,
      semiSyncTimeoutMs: 5000,
      slaveNetTimeout: 4,
    },
    gtids: { executed: pos, binlog: pos, replicated: pos },
    semiSync: { primaryActive: false, primaryClients: 0, replicaActive: Boolean(r) },
    replica: r
      ? {
          sourceHost: '127.0.0.1',
          sourcePort: 3300 + (r.source ?? 1),
          ioThread: 'yes',
          sqlThread: true,
          lastIoErrno: 0,
          lastIoError: '',
          lastSqlErrno: 0,
          lastSqlError: '',
          secondsBehind: 0,
          sqlDelay: 0,
          usesGtid: true,
          receivedGtid: pos,
          readSourceLogFile: 'mariadb-bin.000001',
          readSourceLogPos: 1000n,
          execSourceLogFile: 'mariadb-bin.000001',
          execSourceLogPos: 1000n,
          receivedHeartbeats: 10n,
          heartbeatPeriod: 0.5,
          sourceServerId: r.source ?? 1,
          ...r,
        }
      : undefined,
    replicaLastContactAt: r ? (opts.lastContact ?? at) : undefined,
  };
}

export function replicaObs(n: number, gtid: string, replica: Partial<ReplicaStatus> & { source?: number } = {}, opts: { lastContact?: number; readOnly?: boolean; logBin?: boolean } = {}): InstanceObservation {
  return serverObs(n, gtid, { readOnly: opts.readOnly ?? true, replica, lastContact: opts.lastContact, logBin: opts.logBin });
}

/** An instance that does not answer: refused (crashed) or timing out (stalled, silent since `silentSince`). */
export function deadObs(n: number, kind: 'refused' | 'timeout' = 'refused', silentSince?: number): InstanceObservation {
  return { id: id(n), at: 1000, reachable: false, error: { kind, message: `${id(n)}: ${kind}` }, silentSince };
}

export function view(c: ClusterConfig, obs: InstanceObservation[], extra: Partial<ClusterView> = {}): ClusterView {
  return { cluster: c, observations: new Map(obs.map((o) => [o.id, o])), now: 1000, ...extra };
}

/** A decision record snapshot for pure tests: the decided primary, fenced and maintenance sets. */
export function decided(opts: { primary?: string; decidedAt?: number; fenced?: string[]; maintenance?: string[]; errant?: Record<string, string>; commonPoints?: Record<string, string> } = {}): Decision {
  return {
    ...emptyDecision('c'),
    decidedPrimary: opts.primary,
    decidedAt: opts.decidedAt ?? 0,
    fenced: new Set(opts.fenced ?? []),
    maintenance: new Map((opts.maintenance ?? []).map((m) => [m, Number.MAX_SAFE_INTEGER])),
    errant: new Map(Object.entries(opts.errant ?? {})),
    commonPoints: new Map(Object.entries(opts.commonPoints ?? {})),
  };
}
