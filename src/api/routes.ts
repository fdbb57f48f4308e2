import type { ServerResponse } from 'node:http';
import { clusterReport } from '../analysis/cluster-report.ts';
import type { JournalEntry } from '../coordination/coordinator.ts';
import type { Manager } from '../manager/manager.ts';
import type { ClusterSupervisor } from '../manager/cluster-supervisor.ts';
import { planFailover } from '../recovery/plan.ts';
import { jsonReplacer, type ApiServer } from './server.ts';
import { ApiError } from '../errors.ts';

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

/** The JSON API of a running manager (docs/api.md lists every endpoint). */
export function registerRoutes(api: ApiServer, manager: Manager): void {
  const sup = (name: string): ClusterSupervisor => {
    const s = manager.supervisors.get(name);
    if (!s) throw new ApiError(404, `no cluster named "${name}" (clusters: ${[...manager.supervisors.keys()].join(', ')})`);
    return s;
  };
  const requireLeader = () => {
    if (!manager.coordinator.isLeader()) throw new ApiError(409, 'this manager is not the leader; send actions to the leader (GET /api/v1/managers)');
  };
  const instanceOf = (s: ClusterSupervisor, id: string) => {
    const inst = s.cluster.instances.find((i) => i.id === id || i.name === id);
    if (!inst) throw new ApiError(404, `no instance "${id}" in cluster ${s.cluster.name}`);
    return inst;
  };
  const report = (s: ClusterSupervisor) => {
    const view = s.monitor.view();
    const analysis = s.lastAnalysis ?? { topology: { primary: undefined, primaryEvidence: 'not analysed yet', sources: new Map(), orphans: [] }, problems: [] };
    return clusterReport(s.cluster, view.observations, analysis);
  };

  api.add({ method: 'GET', path: '/api/v1/clusters', handler: () => ({ json: { clusters: [...manager.supervisors.values()].map(report) } }) });

  api.add({
    method: 'GET',
    path: '/api/v1/clusters/:cluster',
    handler: async ({ params }) => {
      const s = sup(params['cluster']!);
      const state = await manager.coordinator.getClusterState(s.cluster.name);
      const router = manager.routers.get(s.cluster.name);
      const blockMs = s.cluster.failover.blockPeriodSeconds * 1000;
      const last = state.lastRecovery;
      const blockedUntil = last && !(state.acknowledgedAt && state.acknowledgedAt >= last.at) && Date.now() - last.at < blockMs ? last.at + blockMs : undefined;
      return {
        json: {
          ...report(s),
          decidedPrimary: s.monitor.lastKnownPrimary,
          acting: s.acting,
          automaticFailover: s.cluster.failover.automatic,
          blockedUntil,
          state: { lastRecovery: state.lastRecovery, acknowledgedAt: state.acknowledgedAt, fenced: state.fenced ?? [], maintenance: state.maintenance ?? {} },
          routing: router ? { endpoints: router.endpoints, table: router.table } : undefined,
        },
      };
    },
  });

  api.add({ method: 'GET', path: '/api/v1/clusters/:cluster/problems', handler: ({ params }) => ({ json: { problems: sup(params['cluster']!).lastAnalysis?.problems ?? [] } }) });

  api.add({
    method: 'GET',
    path: '/api/v1/clusters/:cluster/instances/:instance',
    handler: ({ params }) => {
      const s = sup(params['cluster']!);
      const inst = instanceOf(s, params['instance']!);
      const o = s.monitor.probers.get(inst.id)?.latest;
      const r = report(s).instances.find((i) => i.id === inst.id);
      return {
        json: {
          ...r,
          labels: inst.labels,
          settings: o?.settings,
          gtids: o?.gtids && { executed: o.gtids.executed.toString(), binlog: o.gtids.binlog.toString(), replicated: o.gtids.replicated.toString() },
          observedAt: o?.at,
          replicaLastContactAt: o?.replicaLastContactAt,
          knownErrant: s.knownErrant.get(inst.id),
          maintenance: s.monitor.maintenance.has(inst.id),
        },
      };
    },
  });

  api.add({
    method: 'GET',
    path: '/api/v1/clusters/:cluster/plan',
    handler: ({ params }) => {
      const s = sup(params['cluster']!);
      if (!s.lastAnalysis) throw new ApiError(503, 'the cluster has not been analysed yet');
      return { json: planFailover(s.monitor.view(), s.lastAnalysis, s.knownErrant, 'dry run') };
    },
  });

  api.add({
    method: 'GET',
    path: '/api/v1/recoveries',
    handler: async ({ query }) => {
      const cluster = query.get('cluster') ?? undefined;
      const limit = Number(query.get('limit') ?? 50);
      return { json: { recoveries: groupRecoveries(await manager.coordinator.readJournal(cluster)).slice(0, limit) } };
    },
  });

  api.add({
    method: 'GET',
    path: '/api/v1/managers',
    handler: async () => ({ json: { managers: await manager.managersInfo() } }),
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/failover',
    mutating: true,
    handler: async ({ params, body }) => {
      const s = sup(params['cluster']!);
      requireLeader();
      if (!s.lastAnalysis) throw new ApiError(503, 'the cluster has not been analysed yet');
      const force = Boolean((body as { force?: boolean } | undefined)?.force);
      const primary = s.lastAnalysis.topology.primary;
      if (primary && s.monitor.probers.get(primary)?.latest.reachable && !force)
        throw new ApiError(409, `primary ${primary} is alive; use switchover, or {"force": true} to fence it and fail over anyway`);
      const result = await s.runFailover(s.lastAnalysis, 'manual (API)');
      if ('refusal' in result) throw new ApiError(409, `no failover: ${result.refusal}`);
      return { status: result.ok ? 200 : 500, json: result };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/switchover',
    mutating: true,
    handler: async ({ params, body }) => {
      const s = sup(params['cluster']!);
      requireLeader();
      const target = (body as { target?: string } | undefined)?.target;
      if (target !== undefined && typeof target !== 'string') throw new ApiError(400, 'target must be "host:port"');
      const result = await s.runSwitchover(target ? instanceOf(s, target).id : undefined, 'manual (API)');
      if ('refusal' in result) throw new ApiError(409, result.refusal);
      return { status: result.ok ? 200 : 500, json: result };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/instances/:instance/rejoin',
    mutating: true,
    handler: async ({ params }) => {
      const s = sup(params['cluster']!);
      requireLeader();
      const r = await s.runRejoin(instanceOf(s, params['instance']!).id, 'manual (API)');
      if ('refusal' in r) throw new ApiError(409, r.refusal);
      return { status: r.ok ? 200 : 409, json: r };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/instances/:instance/repair',
    mutating: true,
    handler: async ({ params, body }) => {
      const s = sup(params['cluster']!);
      requireLeader();
      const action = (body as { action?: string } | undefined)?.action;
      if (action !== 'retry' && action !== 'reclone') throw new ApiError(400, 'action must be "retry" (start replication again) or "reclone" (rebuild the data from another instance)');
      const r = await s.runRepair(instanceOf(s, params['instance']!).id, action);
      if ('refusal' in r) throw new ApiError(409, r.refusal);
      return { status: r.ok ? 200 : 409, json: r };
    },
  });

  api.add({
    method: 'PUT',
    path: '/api/v1/clusters/:cluster/instances/:instance/promotion',
    mutating: true,
    handler: async ({ params, body }) => {
      const s = sup(params['cluster']!);
      const inst = instanceOf(s, params['instance']!);
      const rule = (body as { rule?: string } | undefined)?.rule;
      if (rule !== 'prefer' && rule !== 'neutral' && rule !== 'never') throw new ApiError(400, 'rule must be prefer, neutral or never');
      // The rule is changed for this manager's lifetime; the config file stays the source of truth.
      inst.promotion = rule;
      manager.emitEvent({ type: 'promotion_rule', cluster: s.cluster.name, instance: inst.id, rule });
      return { json: { instance: inst.id, promotion: rule, note: 'changed until the manager restarts; set it in the config file to keep it' } };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/ack',
    mutating: true,
    handler: async ({ params }) => {
      const s = sup(params['cluster']!);
      const state = await manager.coordinator.updateClusterState(s.cluster.name, (st) => ({ ...st, acknowledgedAt: Date.now() }));
      manager.emitEvent({ type: 'ack', cluster: s.cluster.name });
      return { json: { acknowledgedAt: state.acknowledgedAt, lastRecovery: state.lastRecovery } };
    },
  });

  api.add({
    method: 'POST',
    path: '/api/v1/clusters/:cluster/instances/:instance/maintenance',
    mutating: true,
    handler: async ({ params, body }) => {
      const s = sup(params['cluster']!);
      const inst = instanceOf(s, params['instance']!);
      const minutes = Number((body as { minutes?: number } | undefined)?.minutes ?? 60);
      if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 7 * 24 * 60) throw new ApiError(400, 'minutes must be a number between 1 and 10080');
      const until = Date.now() + minutes * 60000;
      await manager.coordinator.updateClusterState(s.cluster.name, (st) => ({ ...st, maintenance: { ...(st.maintenance ?? {}), [inst.id]: until } }));
      await s.refreshMaintenance();
      manager.emitEvent({ type: 'maintenance', cluster: s.cluster.name, instance: inst.id, until });
      return { json: { instance: inst.id, until } };
    },
  });

  api.add({
    method: 'DELETE',
    path: '/api/v1/clusters/:cluster/instances/:instance/maintenance',
    mutating: true,
    handler: async ({ params }) => {
      const s = sup(params['cluster']!);
      const inst = instanceOf(s, params['instance']!);
      await manager.coordinator.updateClusterState(s.cluster.name, (st) => {
        const m = { ...(st.maintenance ?? {}) };
        delete m[inst.id];
        return { ...st, maintenance: m };
      });
      await s.refreshMaintenance();
      manager.emitEvent({ type: 'maintenance', cluster: s.cluster.name, instance: inst.id, until: null });
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
function streamEvents(manager: Manager, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  res.write(': regent events\n\n');
  const send = (e: unknown) => res.write(`data: ${JSON.stringify(e, jsonReplacer)}\n\n`);
  manager.events.on('event', send);
  const beat = setInterval(() => res.write(': keep-alive\n\n'), 15000);
  res.on('close', () => {
    clearInterval(beat);
    manager.events.off('event', send);
  });
}
