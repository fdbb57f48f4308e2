import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createSqlMetrics, type SqlMetrics } from './sql/metrics.ts';

export interface RouterMetrics {
  accepted: Counter<'cluster' | 'role'>;
  connections: Counter<'cluster' | 'role' | 'backend'>;
  active: Gauge<'cluster' | 'role'>;
  bytes: Counter<'cluster' | 'role' | 'direction'>;
  held: Gauge<'cluster' | 'role'>;
  holdSeconds: Histogram<'cluster' | 'role'>;
  refused: Counter<'cluster' | 'role'>;
  backendChanges: Counter<'cluster' | 'role'>;
  /** The SQL endpoints' own metrics (regent_sql_*). */
  sql: SqlMetrics;
}

/** Router metrics, registered once per registry (the manager's /metrics serves them). */
export function createRouterMetrics(registry: Registry): RouterMetrics {
  const registers = [registry];
  return {
    accepted: new Counter({ name: 'regent_router_accepted_total', help: 'Client connections accepted by a router endpoint', labelNames: ['cluster', 'role'], registers }),
    connections: new Counter({ name: 'regent_router_backend_connections_total', help: 'Connections opened to each backend', labelNames: ['cluster', 'role', 'backend'], registers }),
    active: new Gauge({ name: 'regent_router_active_connections', help: 'Client connections currently proxied', labelNames: ['cluster', 'role'], registers }),
    bytes: new Counter({ name: 'regent_router_bytes_total', help: 'Bytes proxied, by direction', labelNames: ['cluster', 'role', 'direction'], registers }),
    held: new Gauge({ name: 'regent_router_held_connections', help: 'Connections waiting for a primary', labelNames: ['cluster', 'role'], registers }),
    holdSeconds: new Histogram({ name: 'regent_router_hold_seconds', help: 'How long held connections waited', labelNames: ['cluster', 'role'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers }),
    refused: new Counter({ name: 'regent_router_refused_total', help: 'Connections closed without a backend (hold timeout, no replica)', labelNames: ['cluster', 'role'], registers }),
    backendChanges: new Counter({ name: 'regent_router_backend_changes_total', help: 'Changes of the writer target or of the reader pool', labelNames: ['cluster', 'role'], registers }),
    sql: createSqlMetrics(registry),
  };
}
