import type { ClusterConfig } from '../config/load.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import type { Flavor } from '../sql/flavor.ts';
import { managerPrivileges, missingPrivileges } from '../sql/grants.ts';

/** Everything bootstrap learned before deciding, per instance. */
export interface BootstrapFacts {
  obs: InstanceObservation;
  flavor: Flavor;
  /** Global privileges of the manager account on this instance. */
  managerGrants: Set<string>;
}

export interface ReplicationAccountCheck {
  /** Could the replication account log in to the primary with the configured password? */
  loginOk: boolean;
  /** Does an account with that name exist on the primary (any host)? */
  exists: boolean;
  /** Can the manager create it (CREATE USER + GRANT OPTION + REPLICATION SLAVE)? */
  managerCanCreate: boolean;
  loginError?: string;
}

export interface BootstrapStep {
  instance: string;
  description: string;
  statements: { sql: string; params?: unknown[] }[];
}

export interface BootstrapPlan {
  primary: string;
  refusals: string[];
  warnings: string[];
  steps: BootstrapStep[];
  /** Replicas to wait for after the steps ran. */
  replicas: string[];
}

/**
 * Decides what bootstrap must do, or why it must not. Pure: every refusal names the instance, the
 * fact and the fix, and nothing is changed on any server when there is one.
 */
export function planBootstrap(cluster: ClusterConfig, facts: Map<string, BootstrapFacts>, repl: ReplicationAccountCheck): BootstrapPlan {
  const refusals: string[] = [];
  const warnings: string[] = [];
  const steps: BootstrapStep[] = [];
  const primaryId = cluster.primary;
  if (!primaryId) {
    return { primary: '', refusals: [`cluster ${cluster.name}: set "primary: host:port" in the config so bootstrap knows which server is the source`], warnings, steps, replicas: [] };
  }
  const primary = facts.get(primaryId);
  if (!primary?.obs.settings || !primary.obs.gtids) {
    return { primary: primaryId, refusals: [`${primaryId}: the configured primary could not be inspected`], warnings, steps, replicas: [] };
  }

  // Server settings every node needs, since any node may be promoted one day.
  const serverIds = new Map<number, string>();
  for (const inst of cluster.instances) {
    const f = facts.get(inst.id);
    const s = f?.obs.settings;
    if (!f || !s) {
      refusals.push(`${inst.id}: could not be inspected`);
      continue;
    }
    if (s.serverId === 0) refusals.push(`${inst.id}: server_id is 0, which cannot replicate; set a unique server_id in its config file`);
    const dup = serverIds.get(s.serverId);
    if (dup) refusals.push(`${inst.id}: server_id ${s.serverId} is also used by ${dup}; give every server a unique server_id in its config file`);
    serverIds.set(s.serverId, inst.id);
    if (!s.logBin) refusals.push(`${inst.id}: binary log is off; add log_bin to its config and restart (replicas need it to be promotable)`);
    if (s.logBin && !s.logReplicaUpdates)
      refusals.push(`${inst.id}: log_slave_updates is off; add log_slave_updates=ON to its config and restart (a promoted replica must carry what it applied)`);
    if (!s.gtidStrict)
      refusals.push(`${inst.id}: ${f.flavor.family.doctor.gtidStrictProblem({})}; ${f.flavor.family.doctor.gtidStrictFix}`);
    if (s.binlogFormat !== 'ROW') warnings.push(`${inst.id}: binlog_format is ${s.binlogFormat}; ROW is needed for flashback rewind of errant transactions`);
    const missing = missingPrivileges(f.managerGrants, managerPrivileges(f.flavor.name));
    if (missing.length > 0)
      refusals.push(
        `${inst.id}: manager account '${cluster.accounts.manager.user}' lacks ${missing.map((m) => m.privilege).join(', ')}; run: GRANT ${missing
          .map((m) => m.privilege)
          .join(', ')} ON *.* TO '${cluster.accounts.manager.user}'@'<host>'`,
      );
  }

  if (primary.obs.replica && (primary.obs.replica.ioThread !== 'no' || primary.obs.replica.sqlThread || primary.obs.replica.sourceHost))
    refusals.push(`${primaryId}: the configured primary replicates from ${primary.obs.replica.sourceHost}:${primary.obs.replica.sourcePort}; bootstrap sets up new clusters only (use switchover on a running one)`);

  // The replication account.
  if (!repl.loginOk) {
    if (repl.exists)
      refusals.push(
        `${primaryId}: replication account '${cluster.accounts.replication.user}' exists but cannot log in with the configured password (${repl.loginError ?? 'access denied'}); fix the password in the config or on the server`,
      );
    else if (!repl.managerCanCreate)
      refusals.push(
        `${primaryId}: replication account '${cluster.accounts.replication.user}' does not exist and the manager account may not create it; run: CREATE USER '${cluster.accounts.replication.user}'@'%' IDENTIFIED BY '<password>'; GRANT REPLICATION SLAVE ON *.* TO '${cluster.accounts.replication.user}'@'%'`,
      );
    else
      steps.push({
        instance: primaryId,
        description: `create replication account '${cluster.accounts.replication.user}'@'%'`,
        statements: [
          primary.flavor.family.grants.createReplicationUser(cluster.accounts.replication.user, '%', cluster.accounts.replication.password?.reveal() ?? ''),
          { sql: 'GRANT REPLICATION SLAVE ON *.* TO ?@?', params: [cluster.accounts.replication.user, '%'] },
        ],
      });
  }

  const replicas: string[] = [];
  const replicaSteps: BootstrapStep[] = [];
  const primaryHost = cluster.instances.find((i) => i.id === primaryId);
  for (const inst of cluster.instances) {
    if (inst.id === primaryId) continue;
    const f = facts.get(inst.id);
    if (!f?.obs.settings || !f.obs.gtids) continue;
    replicas.push(inst.id);
    const r = f.obs.replica;
    const pointsAtPrimary = r && r.sourceHost === primaryHost?.host && r.sourcePort === primaryHost?.port;
    if (r && r.sourceHost && !pointsAtPrimary) {
      refusals.push(`${inst.id}: already replicates from ${r.sourceHost}:${r.sourcePort}, not from the configured primary ${primaryId}; bootstrap will not re-point a working replica`);
      continue;
    }
    const extra = f.obs.gtids.executed.subtract(primary.obs.gtids.executed);
    if (!extra.isEmpty()) {
      refusals.push(
        `${inst.id}: holds transactions the primary ${primaryId} lacks (${extra.toString()}); replicating would diverge. Remove them or make this server the primary`,
      );
      continue;
    }
    const statements: { sql: string; params?: unknown[] }[] = [];
    const what: string[] = [];
    if (!f.obs.settings.readOnly) {
      statements.push(...f.flavor.setReadOnly(true).map((sql) => ({ sql })));
      what.push('read_only=ON');
    }
    if (cluster.replication.semiSync && (f.obs.settings.semiSyncPrimaryEnabled || !f.obs.settings.semiSyncReplicaEnabled)) {
      statements.push(...f.flavor.semiSyncRole('replica', cluster.replication.semiSyncTimeoutMs).map((sql) => ({ sql })));
      what.push('semi-sync replica');
    }
    const running = r && r.ioThread !== 'no' && r.sqlThread;
    if (!pointsAtPrimary || !r?.usesGtid) {
      if (r) statements.push({ sql: f.flavor.stopReplica() });
      // Continue from what this server already has (a restored copy), not from the beginning.
      const have = f.obs.gtids.executed;
      if (!have.isEmpty() && !have.equals(f.obs.gtids.replicated)) statements.push(...f.flavor.setGtidPosition(have));
      const change = f.flavor.changeSource({
        host: primaryHost?.host ?? '',
        port: primaryHost?.port ?? 0,
        user: cluster.accounts.replication.user,
        password: cluster.accounts.replication.password,
        heartbeatPeriodSeconds: cluster.replication.heartbeatPeriodSeconds,
        startFrom: 'replica-position',
      });
      statements.push(change, { sql: f.flavor.startReplica() });
      what.push(`replicate from ${primaryId} by GTID`);
    } else if (!running) {
      if (r.lastSqlErrno) {
        refusals.push(`${inst.id}: its SQL thread stopped on error ${r.lastSqlErrno} (${r.lastSqlError}); fix it first (regent status shows it)`);
        continue;
      }
      statements.push({ sql: f.flavor.startReplica() });
      what.push('start replication');
    }
    if (statements.length > 0) replicaSteps.push({ instance: inst.id, description: what.join(', '), statements });
  }

  // The primary becomes writable last, after everything else is known to be safe.
  const ps = primary.obs.settings;
  const primaryStatements: { sql: string; params?: unknown[] }[] = [];
  const primaryWhat: string[] = [];
  if (cluster.replication.semiSync && (!ps.semiSyncPrimaryEnabled || !ps.semiSyncReplicaEnabled || ps.semiSyncTimeoutMs !== cluster.replication.semiSyncTimeoutMs)) {
    primaryStatements.push(...primary.flavor.semiSyncRole('primary', cluster.replication.semiSyncTimeoutMs).map((sql) => ({ sql })));
    primaryWhat.push('semi-sync primary');
  }
  if (ps.readOnly) {
    primaryStatements.push(...primary.flavor.setReadOnly(false).map((sql) => ({ sql })));
    primaryWhat.push('read_only=OFF');
  }
  steps.push(...replicaSteps);
  if (primaryStatements.length > 0) steps.push({ instance: primaryId, description: primaryWhat.join(', '), statements: primaryStatements });

  return { primary: primaryId, refusals, warnings, steps, replicas };
}

