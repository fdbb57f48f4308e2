import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { PROBLEMS, type ProblemCode } from '../analysis/problems.ts';
import { emptyGtid } from '../gtid/index.ts';
import type { ClusterSupervisor } from './cluster-supervisor.ts';

const PROBLEM_CODES = Object.keys(PROBLEMS) as ProblemCode[];

export interface ManagerMetrics {
  actions: Counter<'cluster' | 'action' | 'outcome'>;
  failovers: Counter<'cluster' | 'outcome'>;
  failoverSeconds: Histogram<'cluster'>;
  switchovers: Counter<'cluster' | 'outcome'>;
  switchoverSeconds: Histogram<'cluster'>;
}

/**
 * Instance and manager metrics. Instance gauges are computed at scrape time from the supervisors'
 * latest observations, so /metrics always shows the current state and costs nothing between scrapes.
 */
export function createManagerMetrics(registry: Registry, supervisors: () => Iterable<ClusterSupervisor>, isLeader: (cluster: string) => boolean): ManagerMetrics {
  const registers = [registry];
  const perInstance = (name: string, help: string, value: (s: ClusterSupervisor, id: string) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['cluster', 'instance'],
      registers,
      collect() {
        this.reset();
        for (const s of supervisors())
          for (const id of s.monitor.probers.keys()) {
            const v = value(s, id);
            if (v !== undefined && Number.isFinite(v)) this.set({ cluster: s.cluster.name, instance: id }, v);
          }
      },
    });
  const obs = (s: ClusterSupervisor, id: string) => s.monitor.probers.get(id)?.latest;
  perInstance('regent_instance_up', 'Instance answered its last probe (1) or not (0)', (s, id) => (obs(s, id)?.reachable ? 1 : 0));
  perInstance('regent_instance_read_only', 'read_only of the instance', (s, id) => (obs(s, id)?.settings ? (obs(s, id)!.settings!.readOnly ? 1 : 0) : undefined));
  perInstance('regent_instance_is_primary', 'The instance is the decided primary (the primary Regent decided on, which the writer endpoints follow)', (s, id) => (s.decision.snapshot.decidedPrimary === id ? 1 : 0));
  perInstance('regent_instance_fenced', 'The instance is a former primary Regent fenced (never written to until it rejoins)', (s, id) => (s.decision.snapshot.fenced.has(id) ? 1 : 0));
  perInstance('regent_replica_lag_seconds', 'Seconds_Behind_Master of a replica', (s, id) => obs(s, id)?.replica?.secondsBehind ?? undefined);
  perInstance('regent_replica_io_thread_running', 'Replica IO thread: 1 running, 0.5 connecting, 0 stopped', (s, id) => {
    const r = obs(s, id)?.replica;
    return r ? (r.ioThread === 'yes' ? 1 : r.ioThread === 'connecting' ? 0.5 : 0) : undefined;
  });
  perInstance('regent_replica_sql_thread_running', 'Replica SQL thread running (1) or not (0)', (s, id) => {
    const r = obs(s, id)?.replica;
    return r ? (r.sqlThread ? 1 : 0) : undefined;
  });
  perInstance('regent_instance_gtid_transactions', 'Transactions executed by the instance according to its GTID state (sum of sequence numbers for MariaDB)', (s, id) => {
    const g = obs(s, id)?.gtids?.executed;
    return g ? Number(g.countMissingFrom(emptyGtid(g.flavor))) : undefined;
  });
  perInstance('regent_instance_credentials_rejected', "The instance refused the manager account's login at the last probe (1) or not (0)", (s, id) => (obs(s, id)?.error?.kind === 'auth' ? 1 : 0));
  perInstance(
    'regent_instance_errant_transactions',
    'The instance holds transactions the primary lacks (1): a replica seen so while the primary answered, or a former primary kept out for them (rejoin.errant: manual)',
    (s, id) => (s.decision.snapshot.errant.has(id) ? 1 : 0),
  );
  perInstance('regent_probe_latency_seconds', 'Duration of the last successful probe', (s, id) => {
    const l = obs(s, id)?.latencyMs;
    return l === undefined ? undefined : l / 1000;
  });
  new Gauge({
    name: 'regent_cluster_problems',
    help: 'Problems currently diagnosed, by code (0 for every code not diagnosed now)',
    labelNames: ['cluster', 'code'],
    registers,
    collect() {
      this.reset();
      for (const s of supervisors()) {
        // Every code at 0 first: an alert or panel on a code must see a series before the problem happens.
        for (const code of PROBLEM_CODES) this.set({ cluster: s.cluster.name, code }, 0);
        for (const p of s.lastAnalysis?.problems ?? []) this.inc({ cluster: s.cluster.name, code: p.code });
      }
    },
  });
  new Gauge({
    name: 'regent_failover_blocked',
    help: 'Automatic failover of the cluster is blocked by anti-flapping (1) until a person acknowledges the last recovery (regent ack), or allowed (0)',
    labelNames: ['cluster'],
    registers,
    collect() {
      this.reset();
      // Blocked matters only where failover is automatic at all.
      for (const s of supervisors()) this.set({ cluster: s.cluster.name }, s.cluster.failover.automatic && s.blockedUntil() !== undefined ? 1 : 0);
    },
  });
  new Gauge({
    name: 'regent_leader',
    help: 'This manager leads at least one cluster (1) or none (0)',
    registers,
    collect() {
      this.set([...supervisors()].some((s) => isLeader(s.cluster.name)) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'regent_cluster_leader',
    help: 'This manager leads the cluster (1): it alone acts on it; summed over managers it is 1 when the cluster has a leader',
    labelNames: ['cluster'],
    registers,
    collect() {
      this.reset();
      for (const s of supervisors()) this.set({ cluster: s.cluster.name }, isLeader(s.cluster.name) ? 1 : 0);
    },
  });
  // How late the manager's timers run (probes, timeouts, detection all wait on them): the first
  // thing to rise when one event loop watches too many instances. Since the previous scrape.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  new Gauge({
    name: 'regent_event_loop_delay_seconds',
    help: 'Event loop delay of the manager since the previous scrape, by quantile (1 = the maximum)',
    labelNames: ['quantile'],
    registers,
    collect() {
      const q = (p: number) => (loopDelay.count > 0 ? loopDelay.percentile(p) / 1e9 : 0);
      this.set({ quantile: '0.5' }, q(50));
      this.set({ quantile: '0.9' }, q(90));
      this.set({ quantile: '0.99' }, q(99));
      this.set({ quantile: '1' }, loopDelay.count > 0 ? loopDelay.max / 1e9 : 0);
      loopDelay.reset();
    },
  });
  const buckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
  return {
    actions: new Counter({ name: 'regent_actions_total', help: 'Actions the dispatcher ran on its own (fences, failovers, rejoins, repairs), by outcome', labelNames: ['cluster', 'action', 'outcome'], registers }),
    failovers: new Counter({ name: 'regent_failovers_total', help: 'Failovers by outcome', labelNames: ['cluster', 'outcome'], registers }),
    failoverSeconds: new Histogram({ name: 'regent_failover_duration_seconds', help: 'Duration of failovers from plan to publish', labelNames: ['cluster'], buckets, registers }),
    switchovers: new Counter({ name: 'regent_switchovers_total', help: 'Switchovers by outcome', labelNames: ['cluster', 'outcome'], registers }),
    switchoverSeconds: new Histogram({ name: 'regent_switchover_duration_seconds', help: 'Duration of switchovers', labelNames: ['cluster'], buckets, registers }),
  };
}
