import { analyzeCluster, type Analysis } from '../analysis/analyze.ts';
import type { ClusterView } from '../analysis/cluster-view.ts';
import { PROBLEMS, type Problem, type ProblemCode } from '../analysis/problems.ts';
import type { ClusterConfig, InstanceConfig } from '../config/load.ts';
import type { GtidFlavor } from '../gtid/index.ts';
import { unreachable, type InstanceObservation } from '../monitor/observation.ts';
import { chooseCandidate } from '../recovery/candidate.ts';
import { replicaFactsFromView } from '../recovery/plan.ts';
import { emptyDecision } from '../decision/decision.ts';
import { clonePrivileges, managerPrivileges, missingPrivileges, neededForFailover, REPLICATION_PRIVILEGES, sqlAccount } from '../sql/grants.ts';
import { flag } from '../sql/row-values.ts';
import { familyOf } from '../sql/families.ts';
import { familyNameOfVersion } from '../sql/flavors.ts';
import type { DoctorDialect } from '../sql/flavor.ts';
import {
  DEFAULT_THRESHOLDS,
  PASSWORD_PLACEHOLDERS,
  type CheckId,
  type ClusterFacts,
  type DoctorThresholds,
  type Finding,
  type FindingSeverity,
  type InstanceFacts,
  type LoginFacts,
} from './facts.ts';

/**
 * `regent doctor`'s judgement: facts in, findings out, no I/O. Severity means:
 * - critical: a failover would be unsafe or could not happen (wrong credentials, a missing
 *   privilege a failover uses, GTID strictness off, duplicate server_id, errant transactions,
 *   broken replication, heartbeats too slow for Regent's dead-primary confirmation, no candidate);
 * - warning: something degrades safety or operations (lag, async fallback, short binlog
 *   retention, clock skew, a setting that only matters for rejoin or flashback);
 * - ok: checked and fine, said in one line so the operator sees what was looked at.
 */

/** Problems about the primary or the cluster as a whole (the registry's scope) are reported first, as the topology finding. */
const isTopology = (code: ProblemCode): boolean => PROBLEMS[code].scope !== 'instance';

interface Ctx {
  facts: ClusterFacts;
  cluster: ClusterConfig;
  analysis: Analysis;
  view: ClusterView;
  byId: Map<string, InstanceFacts>;
  configHint: string;
}

/** How a problem reads as a finding; its severity is the registry's (src/analysis/problems.ts). */
interface ProblemRule {
  check: CheckId;
  message?: (p: Problem, inst: InstanceConfig | undefined, ctx: Ctx) => string;
  fix: (p: Problem, inst: InstanceConfig | undefined, ctx: Ctx) => string;
}

const nameOf = (ctx: Ctx, id: string | undefined): string => ctx.cluster.instances.find((i) => i.id === id)?.name ?? id ?? '(unknown)';

/**
 * What the analysis found, as doctor findings with fixes: one entry per code of the problem
 * registry (null: reported by another finding), so a new problem code cannot be forgotten here.
 */
const PROBLEM_RULES: { [C in ProblemCode]: ProblemRule | null } = {
  DeadPrimary: {
    check: 'topology',
    fix: (_p, _i, ctx) => `a running manager (regent run) fails over by itself; without one: regent failover ${ctx.cluster.name} --dry-run ${ctx.configHint}, then without --dry-run`,
  },
  DeadPrimaryAndSomeReplicas: {
    check: 'topology',
    fix: (_p, _i, ctx) => `a running manager fails over among the reachable replicas; without one: regent failover ${ctx.cluster.name} --dry-run ${ctx.configHint}`,
  },
  DeadPrimaryAndAllReplicas: { check: 'topology', fix: () => 'start the servers (their error logs say why they stopped); nothing can be promoted while every instance is down' },
  UnreachablePrimary: {
    check: 'topology',
    fix: (p) => `check the network and firewall between this host and ${p.instance}; Regent never fails over a primary that only it cannot reach`,
  },
  NoWritablePrimary: {
    check: 'topology',
    fix: (p, inst, ctx) => `once sure no other instance takes writes, on ${inst?.name ?? p.instance}: ${dialectOf(ctx, inst).setReadOnly(false)} (or promote another one: regent switchover)`,
  },
  TwoWritablePrimaries: {
    check: 'topology',
    fix: (_p, _i, ctx) => `on the one that is not the primary: ${dialectOf(ctx, ctx.cluster.instances.find((i) => i.id === ctx.analysis.topology.primary)).setReadOnly(true)} then regent rejoin NODE ${ctx.configHint} (a running manager fences it by itself)`,
  },
  WritableReplica: {
    check: 'read-only',
    message: (p) => `read_only is OFF on a replica: a write there becomes an errant transaction (${p.evidence[0] ?? ''})`,
    fix: (_p, inst, ctx) => `${dialectOf(ctx, inst).setReadOnly(true)} and read_only=ON under ${dialectOf(ctx, inst).section} in its option file`,
  },
  ReplicationStopped: {
    check: 'replication',
    fix: (_p, inst, ctx) => `${dialectOf(ctx, inst).startReplica}; (a running manager restarts it after repair.afterSeconds, ${ctx.cluster.repair.afterSeconds} s)`,
  },
  ReplicationBroken: {
    check: 'replication',
    message: (p) => `${p.summary.replace(/^[^:]+: /, '')}: ${p.evidence[0] ?? ''}`,
    fix: (p, inst, ctx) =>
      /SQL thread/.test(p.summary)
        ? `resolve the conflict Last_SQL_Error names on ${inst?.name} (with SET SESSION sql_log_bin = 0), then regent repair ${inst?.name} --retry ${ctx.configHint}; or rebuild it: regent repair ${inst?.name} --reclone`
        : `fix what Last_IO_Error names, then regent repair ${inst?.name} --retry ${ctx.configHint}`,
  },
  ReplicaCannotReachPrimary: {
    check: 'replication',
    message: (p) => `its IO thread cannot connect to the primary, which Regent reaches: ${p.evidence[0] ?? ''}`,
    fix: (_p, inst) => `check the network, DNS and firewall from ${inst?.host} to the primary, and the replication account's host part`,
  },
  ReplicaLagging: {
    check: 'lag',
    fix: (_p, _i, ctx) =>
      `find what slows it (long transactions, disk, single-threaded apply: slave_parallel_threads); it stays out of the reader pool meanwhile. If this lag is normal, raise monitor.lagThresholdSeconds (now ${ctx.cluster.monitor.lagThresholdSeconds}) in cluster ${ctx.cluster.name}`,
  },
  ErrantGtid: {
    check: 'errant-gtid',
    message: (p, inst, ctx) => {
      const errant = p.code === 'ErrantGtid' ? p.data.errant.toString() : p.summary;
      return `has transactions the primary lacks (${errant}), written on it directly: Regent never promotes it, and any replica that did would diverge`;
    },
    fix: (_p, inst, ctx) =>
      `if the writes are not needed, rebuild it from a healthy replica: regent repair ${inst?.name} --reclone ${ctx.configHint}; if they are, replay them on the primary first (read them with mariadb-binlog from ${inst?.name}'s binary log), then reclone`,
  },
  ReplicaPointsElsewhere: {
    check: 'replication',
    fix: (_p, inst, ctx) => `regent rejoin ${inst?.name} ${ctx.configHint} (makes it replicate from the primary by GTID, refusing if it holds errant transactions)`,
  },
  OrphanInstance: {
    check: 'replication',
    fix: (_p, inst, ctx) => `regent rejoin ${inst?.name} ${ctx.configHint} (a running manager with rejoin.automatic does it by itself)`,
  },
  // The connect finding already says it, with the fix.
  UnreachableInstance: null,
  // Only a running manager that lost etcd sees it; doctor checks coordination apart.
  PrimaryLeaseExpired: null,
  // Found by the running manager's periodic scan of registered replicas, not by the doctor's facts.
  UnmanagedReplica: null,
};

function dialectOf(ctx: Ctx, inst: InstanceConfig | undefined): DoctorDialect {
  return familyOf(inst ? flavorOf(ctx.byId.get(inst.id)) : undefined).doctor;
}

function flavorOf(fi: InstanceFacts | undefined): GtidFlavor | undefined {
  if (!fi) return undefined;
  if (fi.obs.flavor) return fi.obs.flavor;
  return fi.version ? familyNameOfVersion(fi.version) : undefined;
}

/** Account changes run with binary logging off: on a replica they would otherwise be errant transactions. */
const NO_BINLOG = 'SET SESSION sql_log_bin = 0; ';

const stripEndpoint = (message: string, id: string): string => (message.startsWith(`${id}: `) ? message.slice(id.length + 2) : message);

const num = (v: string | undefined): number | undefined => {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};

function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${seconds} s`;
}

/** Judges one cluster. Pure: the same facts give the same findings. */
export function evaluateCluster(facts: ClusterFacts, thresholds: DoctorThresholds = DEFAULT_THRESHOLDS): Finding[] {
  const { cluster } = facts;
  const byId = new Map(facts.instances.map((i) => [i.id, i]));
  const observations = new Map<string, InstanceObservation>(
    cluster.instances.map((inst) => [inst.id, byId.get(inst.id)?.obs ?? unreachable(inst.id, 'unreachable', 'not inspected', facts.now)]),
  );
  const view: ClusterView = { cluster, observations, now: facts.now };
  const analysis = analyzeCluster(view);
  const ctx: Ctx = { facts, cluster, analysis, view, byId, configHint: facts.configFile ? `--config ${facts.configFile}` : '--config FILE' };
  const findings: Finding[] = [];
  const add = (severity: FindingSeverity, check: CheckId, message: string, fix?: string, inst?: InstanceConfig) =>
    findings.push({ severity, cluster: cluster.name, ...(inst ? { instance: inst.id, name: inst.name } : {}), check, message, ...(fix && severity !== 'ok' ? { fix } : {}) });
  const fromProblem = (p: Problem, inst: InstanceConfig | undefined) => {
    const rule = PROBLEM_RULES[p.code];
    if (!rule) return;
    add(PROBLEMS[p.code].severity === 'critical' ? 'critical' : 'warning', rule.check, rule.message ? rule.message(p, inst, ctx) : p.summary, rule.fix(p, inst, ctx), inst);
  };

  const primaryId = analysis.topology.primary;
  const primaryObs = primaryId ? observations.get(primaryId) : undefined;

  // Instances that refused the manager account's login look unreachable to the analysis, but may
  // be running fine: that comes first, and nothing is concluded from their silence.
  const refused = cluster.instances.filter((i) => !byId.get(i.id)?.connected && observations.get(i.id)?.error?.kind === 'auth');
  const refusedIds = new Set(refused.map((i) => i.id));
  const allRefused = refused.length === cluster.instances.length;
  if (refused.length > 0) {
    const m = cluster.accounts.manager;
    add(
      'critical',
      'authentication',
      allRefused
        ? `every instance refuses the manager account '${m.user}' (access denied): Regent can see nothing of this cluster, so its topology cannot be judged; the servers themselves may be fine`
        : `${refused.map((i) => i.name).join(', ')} refuse${refused.length === 1 ? 's' : ''} the manager account '${m.user}' (access denied): ${refused.length === 1 ? 'it looks' : 'they look'} unreachable to Regent but may be running fine`,
      authFix(ctx),
    );
  }

  // Cluster-wide: who is primary, and whether anything is wrong at that level.
  const topologyProblems = allRefused ? [] : analysis.problems.filter((p) => isTopology(p.code));
  if (allRefused) {
    // nothing to say about the topology: the authentication finding is the whole story
  } else if (!primaryId)
    add('critical', 'topology', 'no primary identified: no instance is replicated from, and none is the only writable one', `look at regent status ${ctx.configHint}; a new cluster is set up with regent bootstrap ${ctx.configHint}`);
  else if (topologyProblems.length === 0) add('ok', 'topology', `primary ${nameOf(ctx, primaryId)} ${primaryId} (${analysis.topology.primaryEvidence})`);
  for (const p of topologyProblems) {
    const inst = cluster.instances.find((i) => i.id === p.instance);
    // "Unreachable" because the login was refused: the fix is the credentials, not the network or a restart.
    if (p.instance && refusedIds.has(p.instance)) add('critical', 'topology', `${p.summary} (Regent's login is refused there: see the authentication finding)`, authFix(ctx), inst);
    else fromProblem(p, inst);
  }

  checkHeartbeatConfig(cluster, add);
  checkHangToleranceConfig(cluster, add);
  if (!cluster.replication.semiSync) add('ok', 'semi-sync', 'semi-sync is not used (replication.semiSync: false): a failover can lose the commits the replicas had not received yet');

  // server_id must be unique among the instances that answered.
  const serverIds = new Map<number, string[]>();
  for (const inst of cluster.instances) {
    const s = observations.get(inst.id)?.settings;
    if (s) serverIds.set(s.serverId, [...(serverIds.get(s.serverId) ?? []), inst.id]);
  }
  const freeServerId = Math.max(0, ...serverIds.keys()) + 1;

  for (const inst of cluster.instances) {
    const fi = byId.get(inst.id);
    const obs = observations.get(inst.id)!;
    const isPrimary = inst.id === primaryId;
    const flavor = flavorOf(fi);
    const d = familyOf(flavor).doctor;
    const manager = cluster.accounts.manager;

    // Can Regent's own account log in and probe?
    if (!fi?.connected) {
      const kind = obs.error?.kind ?? 'unreachable';
      const why = stripEndpoint(obs.error?.message ?? 'not inspected', inst.id);
      if (kind === 'auth')
        add(
          'critical',
          'connect',
          `the manager account '${manager.user}' cannot log in: ${why}`,
          `check credentials.manager (user '${manager.user}', password from ${manager.password?.source ?? 'nowhere: none is configured'}), or create the account here with what regent grants ${ctx.configHint} prints`,
          inst,
        );
      else add(isPrimary ? 'critical' : 'warning', 'connect', `unreachable: ${why}`, unreachableFix(kind, inst, cluster), inst);
      continue;
    }
    const account = fi.managerAccount ? sqlAccount(fi.managerAccount.user, fi.managerAccount.host) : sqlAccount(manager.user, '<host>');
    if (!obs.reachable)
      add('critical', 'connect', `the manager account logs in, but probing failed: ${stripEndpoint(obs.error?.message ?? 'unknown error', inst.id)}`, obs.error?.kind === 'privilege' ? 'grant what the privileges finding names' : 'look at the server\'s error log', inst);
    else add('ok', 'connect', `reachable as ${fi.managerAccount ? `${fi.managerAccount.user}@${fi.managerAccount.host}` : manager.user} (${fi.version ?? obs.settings?.version ?? 'version unknown'}), probe ${obs.latencyMs === undefined ? '?' : obs.latencyMs.toFixed(1)} ms`, undefined, inst);

    // The manager account's privileges, each missing one with the feature that needs it.
    if (fi.managerPrivileges && flavor) {
      const missing = missingPrivileges(new Set(fi.managerPrivileges), managerPrivileges(flavor));
      if (missing.length === 0) add('ok', 'privileges', `the manager account has all ${managerPrivileges(flavor).length} privileges Regent uses`, undefined, inst);
      else {
        const forFailover = missing.filter((m) => neededForFailover(flavor, m.privilege));
        add(
          forFailover.length > 0 ? 'critical' : 'warning',
          'privileges',
          `the manager account lacks ${missing.map((m) => `${m.privilege} (${neededForFailover(flavor, m.privilege) ? 'failover: ' : ''}${m.why})`).join(', ')}`,
          `${NO_BINLOG}GRANT ${missing.map((m) => m.privilege).join(', ')} ON *.* TO ${account};`,
          inst,
        );
      }
    } else add('warning', 'privileges', `could not read the manager account's privileges${fi.errors.length ? ` (${fi.errors.join('; ')})` : ''}`, 'run SHOW GRANTS FOR CURRENT_USER() as the manager account and compare with regent grants', inst);

    const s = obs.settings;
    if (!obs.reachable || !s) continue;
    const v = fi.vars;
    const r = obs.replica;
    const isReplica = analysis.topology.sources.has(inst.id) || Boolean(r?.sourceHost);

    // Binary log: a source needs one, a candidate needs one that also carries what it replicated.
    if (!s.logBin)
      add(
        isPrimary ? 'critical' : 'warning',
        'log-bin',
        isPrimary ? 'the binary log is off on the primary: replicas have nothing to replicate' : 'the binary log is off: it can never be promoted, nor serve as a source',
        `add ${d.logBinConfig} under ${d.section} in its option file and restart it`,
        inst,
      );
    else {
      add('ok', 'log-bin', 'binary log on', undefined, inst);
      if (!s.logReplicaUpdates)
        add('warning', 'log-replica-updates', `${d.logReplicaUpdates(v)} is OFF: its binary log lacks what it replicated, so it cannot be promoted (its replicas would miss those transactions)`, `add ${d.logReplicaUpdates(v)}=ON under ${d.section} in its option file and restart it`, inst);
      else add('ok', 'log-replica-updates', `${d.logReplicaUpdates(v)} ON`, undefined, inst);
    }
    if (s.binlogFormat !== 'ROW')
      add('warning', 'binlog-format', `binlog_format is ${s.binlogFormat || 'unknown'}: rewinding errant transactions with flashback (rejoin.errant: flashback) needs ROW`, `SET GLOBAL binlog_format = ROW; and binlog_format=ROW under ${d.section} in its option file`, inst);
    else add('ok', 'binlog-format', 'binlog_format ROW', undefined, inst);

    if (!s.gtidStrict)
      add('critical', 'gtid-strict', `${d.gtidStrictProblem(v)}: diverging GTID histories are not refused, so a failover or rejoin can silently skip or duplicate transactions`, d.gtidStrictFix, inst);
    else add('ok', 'gtid-strict', d.gtidStrictOk, undefined, inst);

    const sameId = (serverIds.get(s.serverId) ?? []).filter((id) => id !== inst.id);
    if (s.serverId === 0) add('critical', 'server-id', 'server_id is 0: the server refuses to replicate', `SET GLOBAL server_id = ${freeServerId}; and server_id=${freeServerId} under ${d.section} in its option file`, inst);
    else if (sameId.length > 0)
      add(
        'critical',
        'server-id',
        `server_id ${s.serverId} is also used by ${sameId.map((id) => `${nameOf(ctx, id)} ${id}`).join(', ')}: replicas skip events carrying their own server_id, and GTIDs from the two cannot be told apart`,
        `give each server its own: on ${inst.name}, SET GLOBAL server_id = ${freeServerId}; and server_id=${freeServerId} under ${d.section} in its option file`,
        inst,
      );
    else add('ok', 'server-id', `server_id ${s.serverId}, unique in the cluster`, undefined, inst);

    // read_only: problems come from the analysis (WritableReplica, NoWritablePrimary, two writers).
    const problemsHere = analysis.problems.filter((p) => p.instance === inst.id && !isTopology(p.code));
    if (isPrimary && !s.readOnly) add('ok', 'read-only', 'writable (read_only OFF), as the primary must be', undefined, inst);
    else if (!isPrimary && s.readOnly) {
      if (s.superReadOnly === false)
        add('warning', 'read-only', 'read_only is ON but super_read_only is OFF: accounts with CONNECTION_ADMIN or SUPER can still write here', 'SET GLOBAL super_read_only = ON; and super_read_only=ON under [mysqld] in its option file', inst);
      else add('ok', 'read-only', 'read_only ON', undefined, inst);
    }

    checkSemiSync(ctx, inst, fi, obs, isPrimary, isReplica, thresholds, add);

    if (isReplica && r) checkHeartbeat(cluster, inst, fi, obs, d, add);

    if (v['relay_log_recovery'] !== undefined) {
      if (!flag(v['relay_log_recovery']))
        add('warning', 'relay-log-recovery', 'relay_log_recovery is OFF: after a crash this server may apply a damaged relay log instead of fetching it again from its source', `add relay_log_recovery=ON under ${d.section} in its option file and restart it (it is not dynamic)`, inst);
      else add('ok', 'relay-log-recovery', 'relay_log_recovery ON', undefined, inst);
    }

    // Replication health, lag and errant transactions: the analysis's findings, plus what it does
    // not single out (a replica that cannot log in to its source, a replication user Regent would not use).
    for (const p of problemsHere) {
      if (r && r.lastIoErrno === 1045 && (p.code === 'ReplicationBroken' || p.code === 'ReplicaCannotReachPrimary')) continue;
      fromProblem(p, inst);
    }
    if (r && r.lastIoErrno === 1045) {
      const src = `${r.sourceHost}:${r.sourcePort}`;
      const srcLogin = byId.get(src)?.replicationLogin;
      const user = fi.replicaUser || cluster.accounts.replication.user;
      add(
        'critical',
        'replication',
        `its IO thread cannot log in to its source ${nameOf(ctx, src)} ${src} as '${user}' (error 1045, wrong password or unknown account): it receives nothing (${stripEndpoint(r.lastIoError, inst.id)})`,
        `${d.changeReplicationUser(cluster.accounts.replication.user, PASSWORD_PLACEHOLDERS.replication)} with ${PASSWORD_PLACEHOLDERS.replication} = credentials.replication.password${srcLogin && !srcLogin.ok ? ' (which does not work on the source either: fix the replication-account finding first)' : ''}`,
        inst,
      );
    }
    if (isReplica && r && !r.usesGtid)
      add('warning', 'replication', 'replicates by binary log file and position, not by GTID: Regent re-points replicas by GTID', d.useGtid, inst);
    if (isReplica && r) {
      const has = (check: CheckId) => findings.some((f) => f.instance === inst.id && f.check === check && f.severity !== 'ok');
      if (fi.replicaUser && fi.replicaUser !== cluster.accounts.replication.user)
        add(
          'warning',
          'replication',
          `replicates as '${fi.replicaUser}', but credentials.replication.user is '${cluster.accounts.replication.user}': after a failover Regent re-points it with '${cluster.accounts.replication.user}'`,
          `${d.changeReplicationUser(cluster.accounts.replication.user, PASSWORD_PLACEHOLDERS.replication)} (or set credentials.replication.user: ${fi.replicaUser})`,
          inst,
        );
      const src = `${nameOf(ctx, `${r.sourceHost}:${r.sourcePort}`)} ${r.sourceHost}:${r.sourcePort}`;
      if (!has('replication')) {
        if (r.ioThread === 'yes' && r.sqlThread) add('ok', 'replication', `replicates from ${src}: IO and SQL threads running, ${r.usesGtid ? 'by GTID' : 'by file and position'}`, undefined, inst);
        else
          add(
            'warning',
            'replication',
            `not receiving from ${src}: IO thread ${r.ioThread}, SQL thread ${r.sqlThread ? 'yes' : 'no'}${r.lastIoErrno ? ` (IO error ${r.lastIoErrno}: ${r.lastIoError})` : ''}`,
            primaryObs?.reachable ? `${d.startReplica};` : 'its source is not reachable: see the topology finding',
            inst,
          );
      }
      if (!has('lag'))
        add('ok', 'lag', `${r.secondsBehind === null ? 'lag unknown (SQL thread not running)' : `${r.secondsBehind} s behind`} (monitor.lagThresholdSeconds ${cluster.monitor.lagThresholdSeconds})`, undefined, inst);
      if (!has('errant-gtid') && primaryObs?.reachable) add('ok', 'errant-gtid', 'no transactions the primary lacks', undefined, inst);
    }

    if (s.logBin) checkRetention(inst, v, d, thresholds, add, fi);

    if (fi.clock) {
      const off = fi.clock.offsetMs;
      if (Math.abs(off) > thresholds.clockSkewMs)
        add(
          'warning',
          'clock',
          `its clock is ${(Math.abs(off) / 1000).toFixed(2)} s ${off > 0 ? 'ahead of' : 'behind'} this host's (round trip ${fi.clock.roundTripMs.toFixed(1)} ms): replication lag, event times and the journal stop lining up`,
          `synchronise the clocks of every host with NTP (chrony / systemd-timesyncd; timedatectl shows whether it is active)`,
          inst,
        );
      else add('ok', 'clock', `clock within ${Math.abs(off).toFixed(0)} ms of this host's`, undefined, inst);
    }

    if (fi.loginsSkipped)
      add(
        'warning',
        'replication-account',
        `the replication account's password was not tried here: ${fi.loginsSkipped}, and doctor must not risk that`,
        `check it on a replica that replicates from ${inst.name} (an IO thread error 1045 means a wrong password), or log in once by hand as '${cluster.accounts.replication.user}'`,
        inst,
      );
    else checkReplicationAccount(ctx, inst, fi.replicationLogin, fi.replicationAccountHosts, fi.clientHost, isPrimary, add);
  }

  checkCloneAccount(ctx, add);
  // With every login refused there is no candidate to judge: the authentication finding says why.
  if (!allRefused) checkCandidate(ctx, add);
  return findings;
}

/** The manager account's password is wrong or the account is missing: where to fix which. */
function authFix(ctx: Ctx): string {
  const m = ctx.cluster.accounts.manager;
  return `make credentials.manager match the account on the servers: user '${m.user}', password read from ${m.password?.source ?? 'nowhere (none is configured)'}; or create the account and its grants on every server with what regent grants ${ctx.configHint} prints (it runs with sql_log_bin = 0)`;
}

type Add = (severity: FindingSeverity, check: CheckId, message: string, fix?: string, inst?: InstanceConfig) => void;

function unreachableFix(kind: string, inst: InstanceConfig, cluster: ClusterConfig): string {
  switch (kind) {
    case 'refused':
      return `start the server, or correct host/port of ${inst.name} in the config (nothing listens on ${inst.id})`;
    case 'timeout':
      return `the server accepted the connection but did not answer within monitor.connectTimeoutMs (${cluster.monitor.connectTimeoutMs} ms): check whether it is frozen (stopped process, swapping, full disk)`;
    case 'unreachable':
      return `check DNS and routing from this host to ${inst.host}`;
    case 'sql':
      return 'Regent needs MariaDB 10.6+ or MySQL 8.0.23+';
    default:
      return `look at ${inst.name}'s error log`;
  }
}

/** Regent sets replication.heartbeatPeriodSeconds on every replica it points somewhere. */
function checkHeartbeatConfig(cluster: ClusterConfig, add: Add): void {
  const hb = cluster.replication.heartbeatPeriodSeconds;
  const silence = cluster.failover.confirmReplicaSilenceMs;
  const fix = `in cluster ${cluster.name}: replication.heartbeatPeriodSeconds: ${suggestedHeartbeat(silence, Infinity)} (or failover.confirmReplicaSilenceMs: ${Math.ceil(hb * 2000)})`;
  if (hb * 1000 >= silence)
    add('critical', 'heartbeat', `replication.heartbeatPeriodSeconds (${hb} s) is not shorter than failover.confirmReplicaSilenceMs (${silence} ms): replicas of an idle but live primary would look cut off from it`, fix);
  else if (hb * 2000 > silence) add('warning', 'heartbeat', `replication.heartbeatPeriodSeconds (${hb} s) fits less than twice in failover.confirmReplicaSilenceMs (${silence} ms): one late heartbeat looks like silence`, fix);
  else add('ok', 'heartbeat', `replication.heartbeatPeriodSeconds ${hb} s fits twice in failover.confirmReplicaSilenceMs ${silence} ms`);
}

/**
 * failover.hangToleranceMs against what it works with: a stall shorter than it never fails over,
 * so below 2 s the common stalls (VM pauses, fsync stalls) would; and below the replicas' own
 * silence window it changes nothing.
 */
function checkHangToleranceConfig(cluster: ClusterConfig, add: Add): void {
  const tolerance = cluster.failover.hangToleranceMs;
  const silence = cluster.failover.confirmReplicaSilenceMs;
  const where = `in cluster ${cluster.name}`;
  if (tolerance < silence)
    add('warning', 'hang-tolerance', `failover.hangToleranceMs (${tolerance} ms) is shorter than failover.confirmReplicaSilenceMs (${silence} ms): the replicas' silence window decides, so a silent primary is declared dead after ${silence} ms`, `${where}: failover.hangToleranceMs: ${Math.max(silence, 3000)}`);
  else if (tolerance < 2000)
    add('warning', 'hang-tolerance', `failover.hangToleranceMs is ${tolerance} ms: a primary that stalls for 2 s (a VM pause, an fsync stall) is failed over, and its in-flight transactions become errant`, `${where}: failover.hangToleranceMs: 3000 (a crash, seen as a refused connection, is still failed over at once)`);
  else add('ok', 'hang-tolerance', `a silent primary is declared dead after ${tolerance} ms (failover.hangToleranceMs); a refused connection at once`);
}

/** A heartbeat period that fits twice in the silence window and in the net timeout. */
function suggestedHeartbeat(silenceMs: number, netTimeoutSeconds: number): number {
  const s = Math.min(silenceMs / 2000, netTimeoutSeconds / 2);
  return Math.max(0.05, Math.floor(s * 10) / 10 || Math.floor(s * 100) / 100);
}

function checkHeartbeat(cluster: ClusterConfig, inst: InstanceConfig, fi: InstanceFacts, obs: InstanceObservation, d: DoctorDialect, add: Add): void {
  const period = obs.replica?.heartbeatPeriod ?? fi.heartbeatPeriodSeconds ?? null;
  const net = obs.settings!.slaveNetTimeout;
  const netVar = d.netTimeout(fi.vars);
  const silence = cluster.failover.confirmReplicaSilenceMs;
  const cfg = cluster.replication.heartbeatPeriodSeconds;
  const target = cfg * 2000 <= silence && cfg * 2 <= net ? cfg : suggestedHeartbeat(silence, net);
  const fix = d.changeHeartbeat(target);
  if (period === null) {
    add('warning', 'heartbeat', `could not read the replication heartbeat period${fi.errors.length ? ` (${fi.errors.join('; ')})` : ''}`, `make sure it is at most ${target} s: ${fix}`, inst);
    return;
  }
  if (period <= 0)
    add('critical', 'heartbeat', `replication heartbeats are disabled (period 0): an idle primary sends nothing, so if only Regent lost it, its silence would pass for death after failover.confirmReplicaSilenceMs (${silence} ms)`, fix, inst);
  else if (period * 1000 >= silence)
    add(
      'critical',
      'heartbeat',
      `heartbeat period ${period} s is not shorter than failover.confirmReplicaSilenceMs (${silence} ms): an idle but live primary looks silent to this replica, so Regent could fail over a primary only it cannot reach`,
      `${fix} (or raise failover.confirmReplicaSilenceMs to at least ${Math.ceil(period * 2000)})`,
      inst,
    );
  else if (period * 2000 > silence)
    add('warning', 'heartbeat', `heartbeat period ${period} s fits less than twice in failover.confirmReplicaSilenceMs (${silence} ms): one late heartbeat looks like silence`, fix, inst);
  else if (period * 2 > net)
    add(
      'warning',
      'heartbeat',
      `heartbeat period ${period} s is not well below ${netVar} (${net} s): the IO thread may time out and reconnect between heartbeats`,
      `${fix} (or SET GLOBAL ${netVar} = ${Math.ceil(period * 4)}; and ${netVar}=${Math.ceil(period * 4)} under ${d.section} in its option file)`,
      inst,
    );
  else add('ok', 'heartbeat', `heartbeat every ${period} s (${netVar} ${net} s, failover.confirmReplicaSilenceMs ${silence} ms)`, undefined, inst);
  // A replica reconnects after the net timeout; reconnecting to a stalled primary that accepts TCP
  // but never greets, its IO thread cannot be stopped quickly (MariaDB waits about 2 s), which a
  // failover after the hang tolerance then pays.
  const tolerance = cluster.failover.hangToleranceMs;
  const wanted = Math.ceil(tolerance / 1000) + 2;
  if (net * 1000 <= tolerance)
    add(
      'warning',
      'hang-tolerance',
      `${netVar} (${net} s) is not longer than failover.hangToleranceMs (${tolerance} ms): during a long stall this replica reconnects to the frozen primary, and a failover then waits about 2 s to stop its IO thread`,
      `SET GLOBAL ${netVar} = ${wanted}; and ${netVar}=${wanted} under ${d.section} in its option file (keep the heartbeat period well below it)`,
      inst,
    );
}

function checkSemiSync(ctx: Ctx, inst: InstanceConfig, fi: InstanceFacts, obs: InstanceObservation, isPrimary: boolean, isReplica: boolean, t: DoctorThresholds, add: Add): void {
  const { cluster } = ctx;
  if (!cluster.replication.semiSync) return;
  const s = obs.settings!;
  const v = fi.vars;
  const d = familyOf(flavorOf(fi)).doctor;
  const [pv, rv, tv] = [d.semiSyncPrimary(v), d.semiSyncReplica(v), d.semiSyncTimeout(v)];
  const cfgTimeout = cluster.replication.semiSyncTimeoutMs;
  const conf = (assignments: string) => `and ${assignments} under ${d.section} in its option file`;
  if (isPrimary) {
    if (d.semiSyncInstall && v[pv] === undefined) {
      add('warning', 'semi-sync', 'the semi-sync plugin is not loaded: commits do not wait for any replica, so a failover can lose the last acknowledged writes', `${d.semiSyncInstall.primary} ${d.semiSyncInstall.replica} then SET GLOBAL ${pv} = ON;`, inst);
      return;
    }
    if (!s.semiSyncPrimaryEnabled) {
      add('warning', 'semi-sync', `semi-sync is off on the primary (${pv} OFF): commits do not wait for a replica, so a failover can lose the last acknowledged writes`, `SET GLOBAL ${tv} = ${cfgTimeout}; SET GLOBAL ${pv} = ON; ${conf(`${pv}=ON, ${tv}=${cfgTimeout}`)}`, inst);
      return;
    }
    if (!obs.semiSync?.primaryActive) {
      add(
        'warning',
        'semi-sync',
        `semi-sync is enabled but not active (${obs.semiSync?.primaryClients ?? 0} replica(s) acknowledging): the primary fell back to asynchronous replication`,
        `on each replica: SET GLOBAL ${d.semiSyncReplica(v)} = ON; ${d.restartIoThread}`,
        inst,
      );
      return;
    }
    const timeout = s.semiSyncTimeoutMs;
    if (timeout !== null && timeout < t.semiSyncTimeoutMinMs)
      add('warning', 'semi-sync', `${tv} is ${timeout} ms: on any hiccup the primary falls back to asynchronous replication, losing the no-loss guarantee`, `SET GLOBAL ${tv} = ${cfgTimeout}; ${conf(`${tv}=${cfgTimeout}`)}`, inst);
    else if (timeout !== null && timeout > t.semiSyncTimeoutMaxMs)
      add('warning', 'semi-sync', `${tv} is ${timeout} ms: with no replica acknowledging, every commit waits that long`, `SET GLOBAL ${tv} = ${cfgTimeout}; ${conf(`${tv}=${cfgTimeout}`)}`, inst);
    else if (timeout !== null && timeout !== cfgTimeout)
      add('warning', 'semi-sync', `${tv} is ${timeout} ms but replication.semiSyncTimeoutMs is ${cfgTimeout}: a primary Regent promotes gets ${cfgTimeout}`, `SET GLOBAL ${tv} = ${cfgTimeout}; ${conf(`${tv}=${cfgTimeout}`)} (or set replication.semiSyncTimeoutMs: ${timeout})`, inst);
    else add('ok', 'semi-sync', `semi-sync primary active, ${obs.semiSync.primaryClients} replica(s) acknowledging, timeout ${timeout ?? '?'} ms`, undefined, inst);
    return;
  }
  if (!isReplica) return;
  if (d.semiSyncInstall && v[rv] === undefined) {
    add('warning', 'semi-sync', 'the semi-sync plugin is not loaded: this replica never acknowledges commits', `${d.semiSyncInstall.replica} ${d.semiSyncInstall.primary} SET GLOBAL ${rv} = ON; ${d.restartIoThread}`, inst);
    return;
  }
  if (!s.semiSyncReplicaEnabled)
    add('warning', 'semi-sync', `the replica side of semi-sync is off (${rv} OFF): it never acknowledges commits`, `SET GLOBAL ${rv} = ON; ${d.restartIoThread} ${conf(`${rv}=ON`)}`, inst);
  else if (s.semiSyncPrimaryEnabled)
    add(
      'warning',
      'semi-sync',
      `the primary side of semi-sync is on although this is a replica: promoted by anything but Regent, each of its commits would wait up to ${s.semiSyncTimeoutMs ?? '?'} ms for acknowledgements`,
      `SET GLOBAL ${pv} = OFF; ${conf(`${pv}=OFF`)}`,
      inst,
    );
  else if (!obs.semiSync?.replicaActive && obs.replica?.ioThread === 'yes')
    add('warning', 'semi-sync', 'semi-sync is enabled on this replica but not active: its IO thread started before it was enabled', d.restartIoThread, inst);
  else add('ok', 'semi-sync', 'semi-sync replica side on', undefined, inst);
}

function checkRetention(inst: InstanceConfig, v: Record<string, string>, d: DoctorDialect, t: DoctorThresholds, add: Add, fi: InstanceFacts): void {
  const secs = num(v['binlog_expire_logs_seconds']);
  const days = num(v['expire_logs_days']);
  if (secs === undefined && days === undefined) {
    add('warning', 'binlog-retention', `could not read binlog_expire_logs_seconds${fi.errors.length ? ` (${fi.errors.join('; ')})` : ''}`, 'SHOW GLOBAL VARIABLES LIKE \'binlog_expire_logs_seconds\'', inst);
    return;
  }
  const effective = secs && secs > 0 ? secs : days && days > 0 ? Math.round(days * 86400) : 0;
  const suggested = 7 * 86400;
  if (effective === 0) add('ok', 'binlog-retention', 'binary logs never expire (binlog_expire_logs_seconds 0): watch the disk', undefined, inst);
  else if (effective < t.minBinlogRetentionSeconds)
    add(
      'warning',
      'binlog-retention',
      `binary logs expire after ${formatDuration(effective)}: a former primary that stays down longer cannot rejoin by GTID (error 1236) and must be recloned`,
      `SET GLOBAL binlog_expire_logs_seconds = ${suggested}; and binlog_expire_logs_seconds=${suggested} under ${d.section} in its option file`,
      inst,
    );
  else add('ok', 'binlog-retention', `binary logs kept ${formatDuration(effective)}`, undefined, inst);
}

/** MySQL/MariaDB account host matching: LIKE patterns (% and _) and IPv4 address/netmask. */
export function hostMatches(pattern: string, host: string): boolean {
  const mask = /^(\d+\.\d+\.\d+\.\d+)\/(\d+\.\d+\.\d+\.\d+)$/.exec(pattern);
  if (mask) {
    const ip = (s: string) => s.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(host)) return false;
    return ((ip(host) & ip(mask[2]!)) >>> 0) === ((ip(mask[1]!) & ip(mask[2]!)) >>> 0);
  }
  const re = pattern.replace(/\\(.)|([%_])|([^%_\\]+)/g, (_m, escaped: string | undefined, wild: string | undefined, lit: string | undefined) =>
    escaped !== undefined ? escaped.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : wild === '%' ? '.*' : wild === '_' ? '.' : lit!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
  );
  return new RegExp(`^${re}$`, 'i').test(host);
}

function checkReplicationAccount(ctx: Ctx, inst: InstanceConfig, login: LoginFacts | undefined, hosts: string[] | undefined, clientHost: string | undefined, isPrimary: boolean, add: Add): void {
  const repl = ctx.cluster.accounts.replication;
  const role = isPrimary ? 'its replicas cannot reconnect to it' : 'if it is promoted, no replica can replicate from it';
  if (!login) return;
  if (login.ok) {
    const have = new Set(login.privileges ?? []);
    const lacks = missingPrivileges(have, REPLICATION_PRIVILEGES.map((privilege) => ({ privilege, why: '' })));
    if (login.privileges && lacks.length > 0)
      add('critical', 'replication-account', `the replication account '${repl.user}' logs in but lacks ${lacks.map((l) => l.privilege).join(', ')}: ${role}`, `${NO_BINLOG}GRANT ${lacks.map((l) => l.privilege).join(', ')} ON *.* TO ${sqlAccount(repl.user, hosts?.[0] ?? '%')};`, inst);
    else add('ok', 'replication-account', `the replication account '${repl.user}' logs in with the configured password`, undefined, inst);
    return;
  }
  if (login.errorKind !== 'auth') {
    add('warning', 'replication-account', `could not try the replication account '${repl.user}': ${stripEndpoint(login.error ?? 'unknown error', inst.id)}`, 'run regent doctor again once the instance answers', inst);
    return;
  }
  const source = repl.password?.source ?? 'nowhere: no password is configured';
  // The login is tried from this host: an account that only admits the replicas' network says
  // nothing about the password from here.
  if (hosts && hosts.length > 0 && clientHost && !hosts.some((h) => hostMatches(h, clientHost)))
    add(
      'warning',
      'replication-account',
      `the replication account '${repl.user}' admits only ${hosts.map((h) => `'${h}'`).join(', ')}, not this host (${clientHost}), so its password cannot be tried from here`,
      `run regent doctor from a host the account admits, or check on a replica that replicates from it (an IO thread error 1045 means a wrong password)`,
      inst,
    );
  else if (hosts && hosts.length === 0)
    add(
      'critical',
      'replication-account',
      `the replication account '${repl.user}' does not exist here: ${role}`,
      `${NO_BINLOG}CREATE USER ${sqlAccount(repl.user, '%')} IDENTIFIED BY '${PASSWORD_PLACEHOLDERS.replication}'; GRANT REPLICATION SLAVE ON *.* TO ${sqlAccount(repl.user, '%')}; (${PASSWORD_PLACEHOLDERS.replication}: the password from ${source}; regent grants prints all accounts)`,
      inst,
    );
  else
    add(
      'critical',
      'replication-account',
      `the replication account '${repl.user}' rejects the configured password (from ${source}): ${role}`,
      `put the account's real password in credentials.replication.password, or set it on every instance: ${NO_BINLOG}${(hosts?.length ? hosts : ['<host>']).map((h) => `ALTER USER ${sqlAccount(repl.user, h)} IDENTIFIED BY '${PASSWORD_PLACEHOLDERS.replication}';`).join(' ')}`,
      inst,
    );
}

/** credentials.clone, when configured apart from the manager account: one line for the cluster. */
function checkCloneAccount(ctx: Ctx, add: Add): void {
  const clone = ctx.cluster.accounts.clone;
  const tried = ctx.facts.instances.filter((i) => i.cloneLogin);
  if (tried.length === 0) return;
  const failed = tried.filter((i) => !i.cloneLogin!.ok);
  if (failed.length > 0) {
    add(
      'warning',
      'clone-account',
      `the clone account '${clone.user}' cannot log in on ${failed.map((i) => `${nameOf(ctx, i.id)} (${stripEndpoint(i.cloneLogin!.error ?? 'error', i.id)})`).join(', ')}: regent clone and repair --reclone would fail there`,
      `fix credentials.clone.password (from ${clone.password?.source ?? 'nowhere'}) or create the account with what regent grants ${ctx.configHint} prints`,
    );
    return;
  }
  const lacking = tried
    .map((i) => {
      const flavor = flavorOf(i);
      const missing = flavor && i.cloneLogin!.privileges ? missingPrivileges(new Set(i.cloneLogin!.privileges), clonePrivileges(flavor)) : [];
      return { i, missing };
    })
    .filter((x) => x.missing.length > 0);
  if (lacking.length > 0) {
    const all = [...new Set(lacking.flatMap((x) => x.missing.map((m) => m.privilege)))];
    add('warning', 'clone-account', `the clone account '${clone.user}' lacks ${all.join(', ')} on ${lacking.map((x) => nameOf(ctx, x.i.id)).join(', ')}: regent clone could fail there`, `${NO_BINLOG}GRANT ${all.join(', ')} ON *.* TO ${sqlAccount(clone.user, '<host>')};`);
    return;
  }
  add('ok', 'clone-account', `the clone account '${clone.user}' logs in on ${tried.length} instance(s) with the privileges clone needs`);
}

/** Could the cluster fail over right now, and to whom? The same choice a failover makes. */
function checkCandidate(ctx: Ctx, add: Add): void {
  const { cluster, analysis, view } = ctx;
  if (cluster.instances.length === 1) {
    add('warning', 'failover-candidate', 'a single instance: there is nothing to fail over to', `add replicas (regent clone --from ${cluster.instances[0]!.name} --to HOST:PORT) and list them in the config`);
    return;
  }
  const primaryId = analysis.topology.primary;
  if (!primaryId) return;
  const replicas = [...analysis.topology.sources.entries()].filter(([, src]) => src === primaryId).map(([id]) => id);
  // What a manager would know as errant: what the analysis found against the live primary.
  const errant = new Map<string, string>();
  for (const p of analysis.problems) if (p.code === 'ErrantGtid' && p.instance) errant.set(p.instance, p.data.errant.toString());
  const judged = { ...view, decision: { ...(view.decision ?? emptyDecision(cluster.name)), errant } };
  const primaryCfg = cluster.instances.find((i) => i.id === primaryId);
  const pObs = view.observations.get(primaryId);
  const origin = pObs?.settings?.gtidOrigin;
  const choice = chooseCandidate(replicaFactsFromView(judged, replicas, false), {
    oldPrimaryDataCenter: primaryCfg?.dataCenter,
    oldPrimaryOrigin: origin,
    maxLagSeconds: cluster.failover.maxLagForCandidateSeconds,
  });
  // GTID strictness off or a heartbeat problem does not stop the choice, but makes it unsafe.
  const unsafe = (id: string) => view.observations.get(id)?.settings?.gtidStrict === false;
  if (!choice.candidate) {
    add('critical', 'failover-candidate', `no replica could be promoted in a failover from ${nameOf(ctx, primaryId)} now: ${choice.refusal ?? 'no candidate'}`, 'fix the findings above on at least one replica; regent failover --dry-run shows the plan');
    return;
  }
  const rejected = choice.rejected.length ? `; not ${choice.rejected.map((r) => `${nameOf(ctx, r.id)} (${r.why})`).join(', ')}` : '';
  const others = replicas.filter((id) => id !== choice.candidate && !choice.rejected.some((r) => r.id === id));
  if (unsafe(choice.candidate)) {
    add('critical', 'failover-candidate', `a failover from ${nameOf(ctx, primaryId)} now would promote ${nameOf(ctx, choice.candidate)}, whose GTID checks are off${rejected}`, 'fix the gtid-strict finding of that replica');
    return;
  }
  add('ok', 'failover-candidate', `a failover from ${nameOf(ctx, primaryId)} now would promote ${nameOf(ctx, choice.candidate)} ${choice.candidate} (${choice.reasons[0] ?? ''})${others.length ? `; ${others.length} other candidate(s)` : ''}${rejected}`);
}

/** 0 every finding ok, 1 a warning, 2 a critical finding (a failover would be unsafe). */
export function doctorExitCode(findings: Finding[]): 0 | 1 | 2 {
  if (findings.some((f) => f.severity === 'critical')) return 2;
  if (findings.some((f) => f.severity === 'warning')) return 1;
  return 0;
}

export function countBySeverity(findings: Finding[]): Record<FindingSeverity, number> {
  const out: Record<FindingSeverity, number> = { ok: 0, warning: 0, critical: 0 };
  for (const f of findings) out[f.severity]++;
  return out;
}
