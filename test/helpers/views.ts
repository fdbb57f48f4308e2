import { parseConfigText, type ClusterConfig } from '../../src/config/load.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import { parseGtid, type GtidFlavor, type GtidState } from '../../src/gtid/index.ts';
import type { InstanceObservation } from '../../src/monitor/observation.ts';
import type { ReplicaStatus } from '../../src/sql/flavor.ts';
import { emptyDecision, type Decision } from '../../src/decision/decision.ts';

/**
 * Builders for cluster views in pure tests: instances 127.0.0.1:3301.., MariaDB by default, MySQL
 * through the `mysql` kit (or `flavor: 'mysql'`). In MySQL fixtures, GTID sets are written with
 * `U<n>` standing for instance n's server_uuid: `U1:1-10,U2:1` (see `my`).
 */

export interface ClusterExtra {
  promotion?: Record<number, 'prefer' | 'never'>;
  dc?: Record<number, string>;
  /** Extra cluster-level YAML, indented by four spaces (e.g. "    failover:\n      maxLagForCandidateSeconds: 5"). */
  yaml?: string;
}

export function cluster(n: number, extra: ClusterExtra = {}): ClusterConfig {
  const instances = Array.from({ length: n }, (_, i) => {
    const lines = [`      - host: 127.0.0.1`, `        port: ${3301 + i}`, `        name: n${i + 1}`];
    if (extra.promotion?.[i + 1]) lines.push(`        promotion: ${extra.promotion[i + 1]}`);
    if (extra.dc?.[i + 1]) lines.push(`        dataCenter: ${extra.dc[i + 1]}`);
    return lines.join('\n');
  });
  const text = `clusters:\n  - name: c\n    primary: 127.0.0.1:3301\n    instances:\n${instances.join('\n')}\n${extra.yaml ? `${extra.yaml.replace(/\n?$/, '\n')}` : ''}`;
  return parseConfigText(text, '/virtual/regent.yaml', {}).clusters[0]!;
}

export const id = (n: number) => `127.0.0.1:${3300 + n}`;

/** server_uuid of instance n in MySQL fixtures (the first three are the ones of flavor-mysql.test.ts). */
export function uuid(n: number): string {
  const known = ['3e11fa47-71ca-11e1-9e33-c80aa9429562', '8a94f357-aab4-11df-86ab-c80aa9429562', 'd3b8c2e0-0000-4000-8000-000000000003'];
  return known[n - 1] ?? `d3b8c2e0-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** A MySQL GTID set text with `U<n>` replaced by instance n's server_uuid: my('U1:1-10,U2:1'). */
export function my(text: string): string {
  return text.replace(/\bU(\d+)(?=:)/g, (_, n: string) => uuid(Number(n)));
}

/** A GTID state of either flavor from fixture text (MySQL text may use `U<n>`). */
export function gtid(flavor: GtidFlavor, text: string): GtidState {
  return parseGtid(flavor, flavor === 'mysql' ? my(text) : text);
}

/** What marks instance n's own transactions: MariaDB server_id, MySQL server_uuid. */
export function originOf(flavor: GtidFlavor, n: number): string {
  return flavor === 'mysql' ? uuid(n) : String(n);
}

export interface ObsOpts {
  readOnly?: boolean;
  replica?: Partial<ReplicaStatus> & { source?: number };
  logBin?: boolean;
  logReplicaUpdates?: boolean;
  at?: number;
  lastContact?: number;
  lastMeasuredLagSeconds?: number;
  flavor?: GtidFlavor;
}

export function primaryObs(n: number, gtidText: string, opts: { readOnly?: boolean; at?: number; flavor?: GtidFlavor } = {}): InstanceObservation {
  return serverObs(n, gtidText, { ...opts, readOnly: opts.readOnly ?? false });
}

export function serverObs(n: number, gtidText: string, opts: ObsOpts = {}): InstanceObservation {
  const flavor = opts.flavor ?? 'mariadb';
  const pos = gtid(flavor, gtidText);
  const at = opts.at ?? 1000;
  const r = opts.replica;
  const readOnly = opts.readOnly ?? true;
  const mysql = flavor === 'mysql';
  return {
    id: id(n),
    at,
    reachable: true,
    latencyMs: 0.3,
    flavor,
    settings: {
      serverId: n,
      gtidOrigin: originOf(flavor, n),
      version: mysql ? '8.4.5' : '10.11.19-MariaDB',
      readOnly,
      superReadOnly: mysql ? readOnly : null,
      logBin: opts.logBin ?? true,
      logReplicaUpdates: opts.logReplicaUpdates ?? true,
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
          readSourceLogFile: mysql ? 'binlog.000001' : 'mariadb-bin.000001',
          readSourceLogPos: 1000n,
          execSourceLogFile: mysql ? 'binlog.000001' : 'mariadb-bin.000001',
          execSourceLogPos: 1000n,
          // MySQL reports heartbeats in performance_schema, not in SHOW REPLICA STATUS.
          receivedHeartbeats: mysql ? null : 10n,
          heartbeatPeriod: mysql ? null : 0.5,
          sourceServerId: r.source ?? 1,
          sourceOrigin: originOf(flavor, r.source ?? 1),
          ...r,
        }
      : undefined,
    replicaLastContactAt: r ? (opts.lastContact ?? at) : undefined,
    lastMeasuredLagSeconds: opts.lastMeasuredLagSeconds,
  };
}

export function replicaObs(
  n: number,
  gtidText: string,
  replica: Partial<ReplicaStatus> & { source?: number } = {},
  opts: Omit<ObsOpts, 'replica'> = {},
): InstanceObservation {
  return serverObs(n, gtidText, { ...opts, readOnly: opts.readOnly ?? true, replica });
}

/** An instance that does not answer: refused (crashed) or timing out (stalled, silent since `silentSince`). */
export function deadObs(n: number, kind: 'refused' | 'timeout' = 'refused', at = 1000, silentSince?: number): InstanceObservation {
  return { id: id(n), at, reachable: false, error: { kind, message: `${id(n)}: ${kind}` }, silentSince };
}

export function view(c: ClusterConfig, obs: InstanceObservation[], extra: Partial<ClusterView> = {}): ClusterView {
  return { cluster: c, observations: new Map(obs.map((o) => [o.id, o])), now: 1000, ...extra };
}

/**
 * The observation builders of one flavor, for tables written once and run for both: `g` picks the
 * MariaDB or the MySQL fixture text, so the two sit side by side in each case.
 */
export interface Kit {
  flavor: GtidFlavor;
  /** The fixture of this flavor: g('0-1-10', 'U1:1-10'). */
  g(mariadb: string, mysql: string): string;
  gtid(mariadb: string, mysql: string): GtidState;
  /** The fixture as the server prints it (uuids expanded, normalised): what messages and data show. */
  text(mariadb: string, mysql: string): string;
  origin(n: number): string;
  primaryObs(n: number, gtidText: string, opts?: { readOnly?: boolean; at?: number }): InstanceObservation;
  serverObs(n: number, gtidText: string, opts?: Omit<ObsOpts, 'flavor'>): InstanceObservation;
  replicaObs(n: number, gtidText: string, replica?: Partial<ReplicaStatus> & { source?: number }, opts?: Omit<ObsOpts, 'replica' | 'flavor'>): InstanceObservation;
}

function kit(flavor: GtidFlavor): Kit {
  const g = (m: string, y: string) => (flavor === 'mysql' ? y : m);
  return {
    flavor,
    g,
    gtid: (m, y) => gtid(flavor, g(m, y)),
    text: (m, y) => gtid(flavor, g(m, y)).toString(),
    origin: (n) => originOf(flavor, n),
    primaryObs: (n, t, o = {}) => primaryObs(n, t, { ...o, flavor }),
    serverObs: (n, t, o = {}) => serverObs(n, t, { ...o, flavor }),
    replicaObs: (n, t, r = {}, o = {}) => replicaObs(n, t, r, { ...o, flavor }),
  };
}

export const mariadb: Kit = kit('mariadb');
export const mysql: Kit = kit('mysql');
export const kits: readonly Kit[] = [mariadb, mysql];

/** A decision record snapshot for pure tests: the decided primary, fenced and maintenance sets. */
export function decided(
  opts: {
    primary?: string;
    decidedAt?: number;
    fenced?: string[];
    maintenance?: string[] | Record<string, number>;
    errant?: Record<string, string>;
    commonPoints?: Record<string, string>;
    changing?: Decision['changing'];
    lastRecovery?: Decision['lastRecovery'];
    acknowledgedAt?: number;
  } = {},
): Decision {
  const maintenance = Array.isArray(opts.maintenance) ? opts.maintenance.map((m) => [m, Number.MAX_SAFE_INTEGER] as const) : Object.entries(opts.maintenance ?? {});
  return {
    ...emptyDecision('c'),
    decidedPrimary: opts.primary,
    decidedAt: opts.decidedAt ?? 0,
    changing: opts.changing,
    fenced: new Set(opts.fenced ?? []),
    maintenance: new Map(maintenance),
    errant: new Map(Object.entries(opts.errant ?? {})),
    commonPoints: new Map(Object.entries(opts.commonPoints ?? {})),
    lastRecovery: opts.lastRecovery,
    acknowledgedAt: opts.acknowledgedAt,
  };
}
