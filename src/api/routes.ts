import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { JournalEntry } from '../coordination/coordinator.ts';
import { ApiError, EXIT, isRegentError } from '../errors.ts';
import { proposalSummary } from '../inventory/clusters.ts';
import type { ClusterApi, ManagerApi } from './manager-api.ts';
import { jsonReplacer, type ApiServer } from './server.ts';

/** One recovery as the API and dashboard show it: the plan, each step with its duration, the outcome. */
export interface RecoveryRecord {
  planId: string;
  cluster: string;
  kind: string;
  startedAt: number;
  plan: unknown;
  steps: { step: string; startedAt: number; durationMs?: number; ok?: boolean; detail?: string }[];
  outcome?: string;
  detail?: string;
  newPrimary?: string;
  durationMs?: number;
}

export function groupRecoveries(entries: JournalEntry[]): RecoveryRecord[] {
  const byPlan = new Map<string, RecoveryRecord>();
  for (const e of entries) {
    if (e.type === 'plan') byPlan.set(e.planId, { planId: e.planId, cluster: e.cluster, kind: e.kind, startedAt: e.at, plan: e.plan, steps: [] });
    const r = byPlan.get(e.planId);
    if (!r) continue;
    if (e.type === 'step') {
      if (e.phase === 'start') r.steps.push({ step: e.step, startedAt: e.at });
      else {
        const s = [...r.steps].reverse().find((x) => x.step === e.step && x.ok === undefined);
        if (s) Object.assign(s, { durationMs: e.durationMs, ok: e.ok, detail: e.detail });
        else r.steps.push({ step: e.step, startedAt: e.at, durationMs: e.durationMs, ok: e.ok, detail: e.detail });
      }
    }
    if (e.type === 'end') Object.assign(r, { outcome: e.outcome, detail: e.detail, newPrimary: e.newPrimary, durationMs: e.durationMs });
  }
  return [...byPlan.values()].sort((a, b) => b.startedAt - a.startedAt);
}

const promotionBody = z.strictObject({ rule: z.enum(['prefer', 'neutral', 'never'], { message: 'rule must be prefer, neutral or never' }) });
const failoverBody = z.strictObject({ force: z.boolean({ message: 'force must be true or false' }).default(false) });
const switchoverBody = z.strictObject({ target: z.string({ message: 'target must be an instance name or "host:port"' }).min(1).optional() });
const repairBody = z.strictObject({
  action: z.enum(['retry', 'reclone'], { message: 'action must be "retry" (start replication again) or "reclone" (rebuild the data from another instance)' }),
});
const maintenanceBody = z.strictObject({
  minutes: z.number({ message: 'minutes must be a number between 1 and 10080' }).min(1, 'minutes must be a number between 1 and 10080').max(7 * 24 * 60, 'minutes must be a number between 1 and 10080').default(60),
});
const noBody = z.strictObject({});
const clusterAddBody = z.strictObject({
  name: z.string({ message: 'name must be the new cluster\'s name' }).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'name: letters, digits, _ . - only, starting with a letter or digit'),
  seed: z.string({ message: 'seed must be "host:port" of one server of the cluster' }).regex(/^[^\s:]+:\d{1,5}$/, 'seed must be "host:port" of one server of the cluster'),
  dryRun: z.boolean({ message: 'dryRun must be true or false' }).default(false),
  acceptFindings: z.boolean({ message: 'acceptFindings must be true or false' }).default(false),
});

/** Bad input (a name taken, a file that does not load) is the client's to fix: 400, the message as is. */
async function asClientError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (isRegentError(e) && e.exitCode === EXIT.unusableInput) throw new ApiError(400, e.message);
    throw e;
  }
}

/** The JSON API of a running manager (docs/api.md lists every endpoint). */
export function registerRoutes(api: ApiServer, manager: ManagerApi): void {
  const clusterOf = (name: string): ClusterApi => {
    const c = manager.cluster(name);
    if (!c) throw new ApiError(404, `no cluster named "${name}" (clusters: ${manager.clusterNames().join(', ')})`);
    return c;
  };
  /** Actions on a cluster go to the manager that leads it; the refusal says which one that is. */
  const requireLeader = async (c: ClusterApi) => {
    const name = c.config.name;
    if (manager.isLeader(name)) return;
    const leader = (await manager.managers().catch(() => [])).find((m) => m.leads?.includes(name));
    throw new ApiError(
      409,
      leader ? `this manager does not lead cluster ${name}; ${leader.id} does${leader.api ? ` (API ${leader.api})` : ''}` : `no manager leads cluster ${name} right now; try again in a few seconds (GET /api/v1/managers)`,
      leader?.api ? { leader: leader.id, leaderApi: leader.api } : undefined,
    );
  };
  const instanceOf = (c: ClusterApi, id: string) => {
    const inst = c.config.instances.find((i) => i.id === id || i.name === id);
    if (!inst) throw new ApiError(404, `no instance "${id}" in cluster ${c.config.name}`);
    return inst;
  };
  const refused = (r: { refusal: string }, prefix = ''): ApiError => new ApiError(409, `${prefix}${r.refusal}`);

  api.add({
    method: 'GET',
    path: '/api/v1/clusters',
    handler: () => {
      const origins = manager.origins();
      return { json: { clusters: manager.clusterNames().map((n) => ({ ...clusterOf(n).report(), origin: origins.get(n) ?? 'file' })) } };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters',
    mutating: true,
    body: clusterAddBody,
    handler: async ({ body }) => {
      const r = await asClientError(() => manager.addCluster(body));
      const json = { ...proposalSummary(r.proposal), registered: r.registered, why: r.why, where: r.where, report: r.report };
      // A dry run answers 200; a refusal (nothing registered) 409 with everything that was found.
      return { status: r.registered || body.dryRun ? 200 : 409, json: r.registered || body.dryRun ? json : { error: `cluster ${body.name} not registered: ${r.why}`, ...json } };
    },
  });

  api.add({
    method: 'DELETE',
    path: '/api/v1/clusters/:cluster',
    mutating: true,
    handler: async ({ params }) => ({ json: { removed: params['cluster'], ...(await asClientError(() => manager.removeCluster(params['cluster']!))) } }),
  });

  api.add({
    method: 'POST',
    path: '/api/v1/reload',
    mutating: true,
    body: noBody,
    handler: async () => ({ json: { report: await asClientError(() => manager.reload('API')) } }),
  });

  api.add({
    method: 'GET',
    path: '/api/v1/clusters/:cluster',
    handler: ({ params }) => {
      const c = clusterOf(params['cluster']!);
      const d = c.decision();
      return {
        json: {
          ...c.report(),
          acting: c.acting(),
          automaticFailover: c.config.failover.automatic,
          blockedUntil: c.blockedUntil(),
          state: {
            lastRecovery: d.lastRecovery,
            lastSwitchover: d.lastSwitchover,
            acknowledgedAt: d.acknowledgedAt,
            fenced: [...d.fenced],
            maintenance: Object.fromEntries(d.maintenance),
            errant: Object.fromEntries(d.errant),
          },
          routing: c.routing(),
        },
      };
    },
  });

  api.add({ method: 'GET', path: '/api/v1/clusters/:cluster/problems', handler: ({ params }) => ({ json: { problems: clusterOf(params['cluster']!).report().problems } }) });

  api.add({
    method: 'GET',
    path: '/api/v1/clusters/:cluster/instances/:instance',
    handler: ({ params }) => {
      const c = clusterOf(params['cluster']!);
      const inst = instanceOf(c, params['instance']!);
      const o = c.observation(inst.id);
      const d = c.decision();
      const until = d.maintenance.get(inst.id);
      return {
        json: {
          ...c.report().instances.find((i) => i.id === inst.id),
          labels: inst.labels,
          settings: o?.settings,
          gtids: o?.gtids && { executed: o.gtids.executed.toString(), binlog: o.gtids.binlog.toString(), replicated: o.gtids.replicated.toString() },
          observedAt: o?.at,
          replicaLastContactAt: o?.replicaLastContactAt,
          knownErrant: d.errant.get(inst.id),
          fenced: d.fenced.has(inst.id),
          maintenance: until !== undefined && until > Date.now(),
        },
      };
    },
  });

  api.add({ method: 'GET', path: '/api/v1/clusters/:cluster/plan', handler: async ({ params }) => ({ json: await clusterOf(params['cluster']!).plan() }) });

  api.add({
    method: 'GET',
    path: '/api/v1/recoveries',
    handler: async ({ query }) => {
      const cluster = query.get('cluster') ?? undefined;
      const limit = Number(query.get('limit') ?? 50);
      if (!Number.isInteger(limit) || limit < 1) throw new ApiError(400, 'limit must be a positive whole number');
      return { json: { recoveries: groupRecoveries(await manager.readJournal(cluster)).slice(0, limit) } };
    },
  });

  api.add({ method: 'GET', path: '/api/v1/managers', handler: async () => ({ json: { managers: await manager.managers() } }) });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/failover',
    mutating: true,
    body: failoverBody,
    handler: async ({ params, body }) => {
      const c = clusterOf(params['cluster']!);
      await requireLeader(c);
      const result = await c.failover({ force: body.force, trigger: 'manual (API)' });
      if ('refusal' in result) throw refused(result, 'no failover: ');
      return { status: result.ok ? 200 : 500, json: result };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/switchover',
    mutating: true,
    body: switchoverBody,
    handler: async ({ params, body }) => {
      const c = clusterOf(params['cluster']!);
      await requireLeader(c);
      const result = await c.switchover(body.target ? instanceOf(c, body.target).id : undefined, 'manual (API)');
      if ('refusal' in result) throw refused(result);
      return { status: result.ok ? 200 : 500, json: result };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/instances/:instance/rejoin',
    mutating: true,
    body: noBody,
    handler: async ({ params }) => {
      const c = clusterOf(params['cluster']!);
      await requireLeader(c);
      const r = await c.rejoin(instanceOf(c, params['instance']!).id, 'manual (API)');
      if ('refusal' in r) throw refused(r);
      return { status: r.ok ? 200 : 409, json: r };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/instances/:instance/repair',
    mutating: true,
    body: repairBody,
    handler: async ({ params, body }) => {
      const c = clusterOf(params['cluster']!);
      await requireLeader(c);
      const r = await c.repair(instanceOf(c, params['instance']!).id, body.action);
      if ('refusal' in r) throw refused(r);
      return { status: r.ok ? 200 : 409, json: r };
    },
  });

  api.add({
    method: 'PUT',
    path: '/api/v1/clusters/:cluster/instances/:instance/promotion',
    mutating: true,
    body: promotionBody,
    handler: ({ params, body }) => {
      const c = clusterOf(params['cluster']!);
      const inst = instanceOf(c, params['instance']!);
      // The rule is changed for this manager's lifetime; the config file stays the source of truth.
      inst.promotion = body.rule;
      manager.emitEvent({ type: 'promotion_rule', cluster: c.config.name, instance: inst.id, rule: body.rule });
      return { json: { instance: inst.id, promotion: body.rule, note: 'changed until the manager restarts; set it in the config file to keep it' } };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/ack',
    mutating: true,
    body: noBody,
    handler: async ({ params }) => {
      const c = clusterOf(params['cluster']!);
      await requireLeader(c);
      const d = await c.acknowledge();
      manager.emitEvent({ type: 'ack', cluster: c.config.name });
      return { json: { acknowledgedAt: d.acknowledgedAt, lastRecovery: d.lastRecovery } };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/instances/:instance/maintenance',
    mutating: true,
    body: maintenanceBody,
    handler: async ({ params, body }) => {
      const c = clusterOf(params['cluster']!);
      const inst = instanceOf(c, params['instance']!);
      await requireLeader(c);
      const until = Date.now() + body.minutes * 60000;
      await c.setMaintenance(inst.id, until);
      manager.emitEvent({ type: 'maintenance', cluster: c.config.name, instance: inst.id, until });
      return { json: { instance: inst.id, until } };
    },
  });

  api.add({
    method: 'DELETE',
    path: '/api/v1/clusters/:cluster/instances/:instance/maintenance',
    mutating: true,
    handler: async ({ params }) => {
      const c = clusterOf(params['cluster']!);
      const inst = instanceOf(c, params['instance']!);
      await requireLeader(c);
      await c.setMaintenance(inst.id, undefined);
      manager.emitEvent({ type: 'maintenance', cluster: c.config.name, instance: inst.id, until: null });
      return { json: { instance: inst.id, maintenance: false } };
    },
  });

  api.add({
    method: 'GET',
    path: '/api/v1/events',
    handler: ({ req, res }) => {
      streamEvents(manager, res);
      req.on('close', () => res.end());
      return 'streamed';
    },
  });
}

/** Server-Sent Events: every manager event as `data: {json}`, plus a heartbeat comment. */
function streamEvents(manager: ManagerApi, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  res.write(': regent events\n\n');
  const send = (e: unknown) => res.write(`data: ${JSON.stringify(e, jsonReplacer)}\n\n`);
  const off = manager.onEvent(send);
  const beat = setInterval(() => res.write(': keep-alive\n\n'), 15000);
  res.on('close', () => {
    clearInterval(beat);
    off();
  });
}
