import type { Account, ClusterConfig, InstanceConfig } from '../config/load.ts';
import { detectFlavor, probeInstance } from '../monitor/probe.ts';
import { unreachable } from '../monitor/observation.ts';
import { classifyError, DbConnection } from '../sql/connection.ts';
import type { Flavor, Row } from '../sql/flavor.ts';
import { parseGlobalGrants } from '../sql/grants.ts';
import { foldVariables, nullableNumber, text } from '../sql/row-values.ts';
import { accountHosts, globalVariables, ownGrants, serverClockSeconds, whoAmI } from '../sql/queries.ts';
import type { ClusterFacts, InstanceFacts, LoginFacts } from './facts.ts';

/**
 * The I/O half of `regent doctor`: reads what the checks need, with read-only statements only
 * (SELECT, SHOW), and logs in with the replication and clone accounts to prove their passwords.
 * Nothing here changes a server; every failure becomes a fact.
 */

/** Variables the checks read besides the probe's; SHOW simply omits names a server does not have. */
const DOCTOR_VARIABLES = [
  'relay_log_recovery',
  'binlog_expire_logs_seconds',
  'expire_logs_days',
  'slave_net_timeout',
  'replica_net_timeout',
  'log_slave_updates',
  'log_replica_updates',
  'gtid_mode',
  'enforce_gtid_consistency',
  'rpl_semi_sync_master_enabled',
  'rpl_semi_sync_slave_enabled',
  'rpl_semi_sync_master_timeout',
  'rpl_semi_sync_source_enabled',
  'rpl_semi_sync_replica_enabled',
  'rpl_semi_sync_source_timeout',
  'max_password_errors',
];

/** max_password_errors when it is off (the maximum of the variable). */
const UNLIMITED_PASSWORD_ERRORS = 4294967295;

const nowMs = (): number => performance.timeOrigin + performance.now();

export async function gatherClusterFacts(cluster: ClusterConfig, opts: { configFile?: string } = {}): Promise<ClusterFacts> {
  const cloneSeparate = cluster.accounts.clone !== cluster.accounts.manager;
  const instances = await Promise.all(cluster.instances.map((inst) => gatherInstance(cluster, inst, cloneSeparate)));
  return { cluster, instances, now: Date.now(), configFile: opts.configFile };
}

async function gatherInstance(cluster: ClusterConfig, inst: InstanceConfig, cloneSeparate: boolean): Promise<InstanceFacts> {
  const timeouts = { connectTimeoutMs: cluster.monitor.connectTimeoutMs, queryTimeoutMs: cluster.monitor.queryTimeoutMs };
  const manager = cluster.accounts.manager;
  const facts: InstanceFacts = { id: inst.id, obs: unreachable(inst.id, 'unreachable', 'not inspected'), connected: false, vars: {}, errors: [] };
  let conn: DbConnection;
  try {
    conn = await DbConnection.open(inst.host, inst.port, manager, timeouts);
  } catch (e) {
    const err = classifyError(e, inst.id, manager.user);
    facts.obs = unreachable(inst.id, err.kind, err.message);
    return facts;
  }
  facts.connected = true;
  // Each read is on its own: one that fails (a missing privilege) leaves the others' facts.
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      facts.errors.push(`${what}: ${stripEndpoint(e instanceof Error ? e.message : String(e), inst.id)}`);
      return undefined;
    }
  };
  try {
    let flavor: Flavor | undefined;
    try {
      flavor = await detectFlavor(conn);
      facts.obs = await probeInstance(conn, flavor, inst.id);
    } catch (e) {
      const err = classifyError(e, inst.id, manager.user);
      facts.obs = unreachable(inst.id, err.kind, err.message);
    }
    if (conn.closed) return facts;
    const who = await attempt('CURRENT_USER()', () => whoAmI(conn));
    if (who) {
      facts.version = who.version;
      const [user = manager.user, host = '%'] = splitAccount(who.account);
      facts.managerAccount = { user, host };
      facts.clientHost = splitAccount(who.client)[1];
    }
    const grants = await attempt('SHOW GRANTS', () => ownGrants(conn));
    if (grants) facts.managerPrivileges = [...parseGlobalGrants(grants)];
    const vars = await attempt('variables', () => globalVariables(conn, DOCTOR_VARIABLES));
    if (vars) facts.vars = foldVariables(vars);

    // The server's clock against ours, taken at the middle of the round trip.
    const t0 = nowMs();
    const serverSeconds = (await attempt('clock', () => serverClockSeconds(conn))) ?? NaN;
    const t1 = nowMs();
    if (Number.isFinite(serverSeconds)) facts.clock = { offsetMs: serverSeconds * 1000 - (t0 + t1) / 2, roundTripMs: t1 - t0 };

    if (facts.obs.replica && flavor) {
      const rows = await attempt('replica status', () => conn.query(flavor.replicaStatusQuery));
      const row = rows && defaultChannel(rows);
      if (row) facts.replicaUser = text(row['Master_User'] ?? row['Source_User']) || undefined;
      const hbQuery = flavor.family.heartbeatPeriodQuery;
      if (facts.obs.replica.heartbeatPeriod === null && hbQuery) {
        const hb = await attempt('heartbeat period', () => conn.queryOne(hbQuery));
        if (hb) facts.heartbeatPeriodSeconds = nullableNumber(hb['period']);
      }
    }

    const repl = cluster.accounts.replication;
    const hosts = await attempt('replication account hosts', () => accountHosts(conn, repl.user));
    if (hosts) facts.replicationAccountHosts = hosts;
    facts.loginsSkipped = await loginLockout(conn, facts, flavor, [repl.user, ...(cloneSeparate ? [cluster.accounts.clone.user] : [])]);
  } finally {
    await conn.close();
  }
  // Logging in is the only proof a password is right. A successful or refused login changes
  // nothing, except where the server counts refusals towards blocking the account: not tried there.
  if (facts.loginsSkipped) return facts;
  facts.replicationLogin = await tryLogin(inst, cluster.accounts.replication, timeouts);
  if (cloneSeparate) facts.cloneLogin = await tryLogin(inst, cluster.accounts.clone, timeouts);
  return facts;
}

/** Whether a refused login would count towards locking one of these accounts, and why. */
async function loginLockout(conn: DbConnection, facts: InstanceFacts, flavor: Flavor | undefined, users: string[]): Promise<string | undefined> {
  const maxErrors = Number(facts.vars['max_password_errors'] ?? UNLIMITED_PASSWORD_ERRORS);
  if (Number.isFinite(maxErrors) && maxErrors < UNLIMITED_PASSWORD_ERRORS) return `max_password_errors is ${maxErrors}: refused logins count towards blocking the account`;
  return flavor?.family.accountLockout?.(conn, users);
}

async function tryLogin(inst: InstanceConfig, account: Account, timeouts: { connectTimeoutMs: number; queryTimeoutMs: number }): Promise<LoginFacts> {
  let conn: DbConnection | undefined;
  try {
    conn = await DbConnection.open(inst.host, inst.port, account, timeouts);
    const grants = await ownGrants(conn).catch(() => undefined);
    return { ok: true, privileges: grants ? [...parseGlobalGrants(grants)] : undefined };
  } catch (e) {
    const err = classifyError(e, inst.id, account.user);
    return { ok: false, errorKind: err.kind, error: err.message };
  } finally {
    await conn?.close();
  }
}

function defaultChannel(rows: Row[]): Row | undefined {
  return rows.find((r) => text(r['Connection_name'] ?? r['Channel_Name']) === '') ?? (rows.length === 1 ? rows[0] : undefined);
}

/** 'regent@127.0.0.1' -> ['regent', '127.0.0.1'] (the host part has no '@'; a user name may). */
function splitAccount(account: string): [string?, string?] {
  const at = account.lastIndexOf('@');
  return at < 0 ? [account || undefined] : [account.slice(0, at), account.slice(at + 1)];
}

function stripEndpoint(message: string, id: string): string {
  return message.startsWith(`${id}: `) ? message.slice(id.length + 2) : message;
}
