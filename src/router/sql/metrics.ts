import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface SqlMetrics {
  statements: Counter<'cluster' | 'route' | 'reason'>;
  /**
   * Statement counting for one endpoint's hot path: plain numbers per route and reason, added to
   * `statements` when the registry is read. (prom-client hashes the label object on every inc: a
   * measurable share of a point select's cost.)
   */
  statementCounts(cluster: string): StatementCounts;
  causalWaits: Counter<'cluster' | 'outcome'>;
  causalWaitSeconds: Histogram<'cluster'>;
  sessions: Gauge<'cluster'>;
  sessionsTotal: Counter<'cluster'>;
  backendConnections: Gauge<'cluster' | 'role'>;
  backendConnectionsTotal: Counter<'cluster' | 'backend'>;
  authFailures: Counter<'cluster' | 'reason'>;
  protocolErrors: Counter<'cluster' | 'kind'>;
  /** What sessions did across a failover or switchover (moved, retried, replayed, refused, in doubt). */
  recoveries: Counter<'cluster' | 'kind'>;
}

/** Counts of one endpoint's statements since they were last added to the counter. */
export class StatementCounts {
  readonly #counts = new Map<string, Map<string, number>>();
  #released = false;

  constructor(
    private readonly cluster: string,
    private readonly counter: Counter<'cluster' | 'route' | 'reason'>,
    private readonly onRelease: () => void,
  ) {}

  add(route: 'primary' | 'replica', reason: string): void {
    let byReason = this.#counts.get(route);
    if (!byReason) this.#counts.set(route, (byReason = new Map()));
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
  }

  /** Adds what was counted to the counter (at every read of the registry, and when released). */
  flush(): void {
    for (const [route, byReason] of this.#counts)
      for (const [reason, n] of byReason)
        if (n > 0) {
          this.counter.inc({ cluster: this.cluster, route, reason }, n);
          byReason.set(reason, 0);
        }
  }

  /** The endpoint stopped: what it counted stays in the counter, nothing more is pulled from it. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.flush();
    this.onRelease();
  }
}

/** Metrics of the SQL endpoints, registered once per registry; every series is labelled by cluster. */
export function createSqlMetrics(registry: Registry): SqlMetrics {
  const registers = [registry];
  const sources = new Set<StatementCounts>();
  const statements = new Counter({
    name: 'regent_sql_statements_total',
    help: 'Statements (commands) routed by the SQL endpoint, by destination and why',
    labelNames: ['cluster', 'route', 'reason'] as const,
    registers,
    // Runs whenever the registry is read: the endpoints' own counts are added first.
    collect() {
      for (const s of sources) s.flush();
    },
  });
  return {
    statements,
    statementCounts(cluster) {
      const s: StatementCounts = new StatementCounts(cluster, statements, () => sources.delete(s));
      sources.add(s);
      return s;
    },
    causalWaits: new Counter({ name: 'regent_sql_causal_waits_total', help: 'Reads that waited for a replica to apply the GTIDs they must see (caught_up, timeout, error)', labelNames: ['cluster', 'outcome'], registers }),
    causalWaitSeconds: new Histogram({ name: 'regent_sql_causal_wait_seconds', help: 'How long causal waits on replicas took', labelNames: ['cluster'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    sessions: new Gauge({ name: 'regent_sql_sessions', help: 'Client sessions open on the SQL endpoint', labelNames: ['cluster'], registers }),
    sessionsTotal: new Counter({ name: 'regent_sql_sessions_total', help: 'Client connections accepted by the SQL endpoint', labelNames: ['cluster'], registers }),
    backendConnections: new Gauge({ name: 'regent_sql_backend_connections', help: 'Backend connections the SQL endpoint holds for its sessions', labelNames: ['cluster', 'role'], registers }),
    backendConnectionsTotal: new Counter({ name: 'regent_sql_backend_connections_total', help: 'Backend connections opened by the SQL endpoint, per instance', labelNames: ['cluster', 'backend'], registers }),
    authFailures: new Counter({ name: 'regent_sql_auth_failures_total', help: 'Logins the SQL endpoint refused, by reason', labelNames: ['cluster', 'reason'], registers }),
    protocolErrors: new Counter({ name: 'regent_sql_protocol_errors_total', help: 'Sessions that sent something the endpoint refused (malformed packet, unknown command, packet too large)', labelNames: ['cluster', 'kind'], registers }),
    recoveries: new Counter({
      name: 'regent_sql_recoveries_total',
      help: 'Sessions carried across a change of primary or a lost backend: moved (to the new primary), retried_read, retried_unsent (a command that never reached the old primary or did nothing there), replayed (an open transaction), replay_refused (its results differed or it could not be replayed: the client got an error), in_doubt (a COMMIT or autocommit write lost in flight: the client got an error)',
      labelNames: ['cluster', 'kind'],
      registers,
    }),
  };
}
