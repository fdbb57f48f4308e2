import type { ClusterConfig } from '../config/load.ts';
import { closeAll, inspectCluster, type InspectedInstance } from '../monitor/inspect.ts';
import { DbConnection } from '../sql/connection.ts';
import { DbError } from '../errors.ts';
import { parseGlobalGrants } from '../sql/grants.ts';
import { accountHosts, ownGrants } from '../sql/queries.ts';
import { foldVariables, text } from '../sql/row-values.ts';
import type { Progress } from '../util/progress.ts';
import { planBootstrap, type BootstrapFacts, type ReplicationAccountCheck } from './bootstrap-plan.ts';
import { BootstrapRefused } from '../errors.ts';


export interface BootstrapResult {
  changed: boolean;
  actions: string[];
  warnings: string[];
}

/**
 * Sets up replication on running servers: inspect everything, decide (planBootstrap), refuse with
 * every reason at once or apply the steps, then wait until every replica caught up.
 */
export async function bootstrapCluster(cluster: ClusterConfig, opts: { progress?: Progress; quiet?: boolean; catchUpTimeoutSeconds?: number } = {}): Promise<BootstrapResult> {
  const progress = opts.progress;
  progress?.step(`inspecting ${cluster.instances.length} instances of ${cluster.name}`);
  const inspected = await inspectCluster(cluster, { keepOpen: true });
  try {
    const down = inspected.filter((i) => !i.obs.reachable);
    if (down.length > 0) throw new BootstrapRefused(down.map((d) => d.obs.error?.message ?? `${d.instance.id}: unreachable`));

    const facts = new Map<string, BootstrapFacts>();
    for (const i of inspected) {
      if (!i.conn || !i.flavor) continue;
      facts.set(i.instance.id, { obs: i.obs, flavor: i.flavor, managerGrants: parseGlobalGrants(await ownGrants(i.conn)) });
    }
    const repl = await checkReplicationAccount(cluster, inspected, facts);
    const plan = planBootstrap(cluster, facts, repl);
    if (plan.refusals.length > 0) throw new BootstrapRefused(plan.refusals);
    progress?.succeed();

    if (plan.steps.length === 0) return { changed: false, actions: [], warnings: plan.warnings };

    const byId = new Map(inspected.map((i) => [i.instance.id, i]));
    const actions: string[] = [];
    for (const step of plan.steps) {
      progress?.step(`${step.instance}: ${step.description}`);
      const conn = byId.get(step.instance)?.conn;
      if (!conn) throw new Error(`${step.instance}: connection lost during bootstrap`);
      for (const s of step.statements) await conn.query(s.sql, s.params ?? []);
      actions.push(`${step.instance}: ${step.description}`);
      progress?.succeed();
    }

    progress?.step('waiting for replicas to catch up');
    const primary = byId.get(plan.primary);
    if (!primary?.conn || !primary.flavor) throw new Error('primary connection lost');
    const target = primary.flavor.parseGtids(await variables(primary)).executed;
    const timeout = opts.catchUpTimeoutSeconds ?? 60;
    await Promise.all(
      plan.replicas.map(async (id) => {
        const r = byId.get(id);
        if (!r?.conn || !r.flavor) return;
        const w = r.flavor.waitForGtid(target, timeout);
        const row = await r.conn.queryOne(w.sql, w.params, (timeout + 5) * 1000);
        if (Number(text(row?.['result'])) !== 0) throw new Error(`${id}: did not catch up with the primary within ${timeout} s; check \`regent status\``);
      }),
    );
    progress?.succeed();
    return { changed: true, actions, warnings: plan.warnings };
  } finally {
    await closeAll(inspected);
  }
}

async function variables(i: InspectedInstance): Promise<Record<string, string>> {
  if (!i.conn || !i.flavor) throw new Error(`${i.instance.id}: not connected`);
  return foldVariables(await i.conn.query(i.flavor.variablesQuery));
}

async function checkReplicationAccount(cluster: ClusterConfig, inspected: InspectedInstance[], facts: Map<string, BootstrapFacts>): Promise<ReplicationAccountCheck> {
  const primary = inspected.find((i) => i.instance.id === cluster.primary);
  const account = cluster.accounts.replication;
  if (!primary?.conn) return { loginOk: false, exists: false, managerCanCreate: false, loginError: 'primary unreachable' };
  try {
    // Logging in as the replication account is the only real proof its password is right.
    const c = await DbConnection.open(primary.instance.host, primary.instance.port, account, {
      connectTimeoutMs: cluster.monitor.connectTimeoutMs,
      queryTimeoutMs: cluster.monitor.queryTimeoutMs,
    });
    await c.close();
    return { loginOk: true, exists: true, managerCanCreate: true };
  } catch (e) {
    const loginError = e instanceof DbError ? e.message : String(e);
    const hosts = await accountHosts(primary.conn, account.user);
    const exists = hosts.length > 0;
    const grants = facts.get(primary.instance.id)?.managerGrants ?? new Set<string>();
    const all = grants.has('ALL PRIVILEGES');
    const managerCanCreate = grants.has('GRANT OPTION') && (all || (grants.has('CREATE USER') && grants.has('REPLICATION SLAVE')));
    return { loginOk: false, exists, managerCanCreate, loginError };
  }
}
