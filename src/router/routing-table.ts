import type { RouterSettings } from '../config/schema.ts';
import type { InstanceObservation } from '../monitor/observation.ts';

/** Where the router sends new connections, decided from the manager's view. Pure. */
export interface RoutingTable {
  writer: { mode: 'route'; target: string } | { mode: 'hold'; reason: string };
  /** Replicas that may take new reader connections, in config order. */
  readers: string[];
  /** Where reader connections go when `readers` is empty (the primary), if allowed. */
  readerFallback?: string;
  /** Why each excluded replica is excluded (for status and logs). */
  excluded: Record<string, string>;
}

export interface RoutingInput {
  /** The primary the manager decided on: the only instance the writer endpoint may ever reach. */
  decidedPrimary?: string;
  /** When the manager promoted it: observations older than this predate the promotion. */
  decidedAt?: number;
  /** A failover or switchover is under way: hold writes whatever the observations say. */
  changing: boolean;
  /** Instances Regent fenced: never a writer target. */
  fenced?: ReadonlySet<string>;
  /** Writers are held for this reason whatever else holds (the data plane's decision is too old to trust). */
  heldBecause?: string;
  observations: Map<string, InstanceObservation>;
  /** Instance ids in config order. */
  instances: string[];
  maintenance: Set<string>;
  settings: RouterSettings;
}

export function routingTable(input: RoutingInput): RoutingTable {
  const { decidedPrimary, observations, settings } = input;
  const p = decidedPrimary ? observations.get(decidedPrimary) : undefined;
  let writer: RoutingTable['writer'];
  if (!decidedPrimary) writer = { mode: 'hold', reason: 'no primary decided yet' };
  else if (input.heldBecause) writer = { mode: 'hold', reason: input.heldBecause };
  else if (input.changing) writer = { mode: 'hold', reason: 'primary change under way' };
  else if (input.fenced?.has(decidedPrimary)) writer = { mode: 'hold', reason: `primary ${decidedPrimary} is fenced` };
  // Just promoted: the last probe (read_only, maybe) predates the promotion; the manager's word counts.
  else if (p && input.decidedAt !== undefined && p.at < input.decidedAt) writer = { mode: 'route', target: decidedPrimary };
  else if (!p?.reachable) writer = { mode: 'hold', reason: `primary ${decidedPrimary} unreachable` };
  else if (p.settings?.readOnly) writer = { mode: 'hold', reason: `primary ${decidedPrimary} is read_only` };
  else writer = { mode: 'route', target: decidedPrimary };

  const readers: string[] = [];
  const excluded: Record<string, string> = {};
  for (const id of input.instances) {
    if (id === decidedPrimary) continue;
    const o = observations.get(id);
    const r = o?.replica;
    const why = input.maintenance.has(id)
      ? 'in maintenance'
      : !o?.reachable
        ? 'unreachable'
        : !r
          ? 'not a replica'
          : r.ioThread !== 'yes' || !r.sqlThread
            ? `replication not running (IO ${r.ioThread}, SQL ${r.sqlThread ? 'yes' : 'no'})`
            : r.secondsBehind === null
              ? 'lag unknown'
              : r.secondsBehind > settings.maxReplicaLagSeconds
                ? `lag ${r.secondsBehind}s > ${settings.maxReplicaLagSeconds}s`
                : `${r.sourceHost}:${r.sourcePort}` !== decidedPrimary && !isChained(r.sourceHost, r.sourcePort, input.instances)
                  ? 'replicates from outside the cluster'
                  : undefined;
    if (why) excluded[id] = why;
    else readers.push(id);
  }
  const readerFallback = readers.length === 0 && settings.readerFallbackToPrimary && writer.mode === 'route' ? writer.target : undefined;
  return { writer, readers, readerFallback, excluded };
}

function isChained(host: string, port: number, instances: string[]): boolean {
  return instances.includes(`${host}:${port}`);
}

/** Where one new connection goes: a backend, held until the table changes, or closed. */
export type RouteDecision = { target: string } | { hold: string } | { refuse: string };

export function decideWriter(table: RoutingTable): RouteDecision {
  return table.writer.mode === 'route' ? { target: table.writer.target } : { hold: table.writer.reason };
}

/** A reader backend, or: hold like the writer does when a primary may come back, else refuse. */
export function decideReader(table: RoutingTable, policy: RouterSettings['readerPolicy'], cursor: number, active: Map<string, number>): { decision: RouteDecision; cursor: number } {
  const picked = pickReader(table, policy, cursor, active);
  if (picked.target) return { decision: { target: picked.target }, cursor: picked.cursor };
  return { decision: table.writer.mode === 'hold' ? { hold: 'no backend for readers' } : { refuse: 'no backend for readers' }, cursor: picked.cursor };
}

/** Picks a reader backend. Round-robin keeps a cursor; least-connections uses live counts. */
export function pickReader(table: RoutingTable, policy: RouterSettings['readerPolicy'], cursor: number, active: Map<string, number>): { target?: string; cursor: number } {
  const pool = table.readers.length > 0 ? table.readers : table.readerFallback ? [table.readerFallback] : [];
  if (pool.length === 0) return { cursor };
  if (policy === 'least-connections') {
    let best = pool[0]!;
    for (const id of pool) if ((active.get(id) ?? 0) < (active.get(best) ?? 0)) best = id;
    return { target: best, cursor };
  }
  const i = cursor % pool.length;
  return { target: pool[i], cursor: cursor + 1 };
}
