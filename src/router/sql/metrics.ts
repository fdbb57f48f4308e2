import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface SqlMetrics {
  statements: Counter<'cluster' | 'route' | 'reason'>;
  causalWaits: Counter<'cluster' | 'outcome'>;
  causalWaitSeconds: Histogram<'cluster'>;
  sessions: Gauge<'cluster'>;
  sessionsTotal: Counter<'cluster'>;
  backendConnections: Gauge<'cluster' | 'role'>;
  backendConnectionsTotal: Counter<'cluster' | 'backend'>;
  authFailures: Counter<'cluster' | 'reason'>;
  protocolErrors: Counter<'cluster' | 'kind'>;
}

/** Metrics of the SQL endpoints, registered once per registry; every series is labelled by cluster. */
export function createSqlMetrics(registry: Registry): SqlMetrics {
  const registers = [registry];
  return {
    statements: new Counter({ name: 'regent_sql_statements_total', help: 'Statements (commands) routed by the SQL endpoint, by destination and why', labelNames: ['cluster', 'route', 'reason'], registers }),
    causalWaits: new Counter({ name: 'regent_sql_causal_waits_total', help: 'Reads that waited for a replica to apply the GTIDs they must see (caught_up, timeout, error)', labelNames: ['cluster', 'outcome'], registers }),
    causalWaitSeconds: new Histogram({ name: 'regent_sql_causal_wait_seconds', help: 'How long causal waits on replicas took', labelNames: ['cluster'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    sessions: new Gauge({ name: 'regent_sql_sessions', help: 'Client sessions open on the SQL endpoint', labelNames: ['cluster'], registers }),
    sessionsTotal: new Counter({ name: 'regent_sql_sessions_total', help: 'Client connections accepted by the SQL endpoint', labelNames: ['cluster'], registers }),
    backendConnections: new Gauge({ name: 'regent_sql_backend_connections', help: 'Backend connections the SQL endpoint holds for its sessions', labelNames: ['cluster', 'role'], registers }),
    backendConnectionsTotal: new Counter({ name: 'regent_sql_backend_connections_total', help: 'Backend connections opened by the SQL endpoint, per instance', labelNames: ['cluster', 'backend'], registers }),
    authFailures: new Counter({ name: 'regent_sql_auth_failures_total', help: 'Logins the SQL endpoint refused, by reason', labelNames: ['cluster', 'reason'], registers }),
    protocolErrors: new Counter({ name: 'regent_sql_protocol_errors_total', help: 'Sessions that sent something the endpoint refused (malformed packet, unknown command, packet too large)', labelNames: ['cluster', 'kind'], registers }),
  };
}
