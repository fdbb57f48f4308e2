import type { GtidState } from '../../gtid/index.ts';
import type { RoutingTable } from '../routing-table.ts';
import type { Classification } from './classify.ts';

/** Why a statement went where it went (the `reason` label of regent_sql_statements_total). */
export type RouteReason =
  | 'read'
  | 'read_only_transaction'
  | 'hint'
  | 'write'
  | 'transaction'
  | 'locking_read'
  | 'session_bound'
  | 'multi_statement'
  | 'session_command'
  | 'unsure'
  | 'causal_wait'
  | 'no_replica'
  | 'last_statement';

export type Route =
  | { to: 'primary'; reason: RouteReason }
  | { to: 'replica'; id: string; reason: RouteReason; /** wait on the replica until it has applied this first */ wait?: GtidState }
  /** Where the previous statement ran (SHOW WARNINGS and the like). */
  | { to: 'last'; reason: RouteReason };

export type CausalMode = 'none' | 'session' | 'global';

export interface SessionView {
  /** Where an open transaction runs: none, the primary, or a replica (READ ONLY). */
  trx: 'none' | 'primary' | { replica: string };
  /** autocommit=0: every statement opens a transaction, so everything stays on the primary. */
  autocommit: boolean;
  /** The session is tied to the primary for good (temporary table, lock, user variable...). */
  pinned?: string;
  /** The replica this session already has a connection to. */
  replica?: string;
  /** Everything the session wrote (the GTIDs its OK packets carried), for `session` mode. */
  written?: GtidState;
  /** The session lost sight of its GTIDs (it changed session tracking): reads go to the primary after a write. */
  blind?: boolean;
  /** It wrote something whose GTID is unknown (e.g. tracking off): same as blind until it ends. */
}

export interface RouteContext {
  table: RoutingTable;
  /** Applied positions per instance: the monitor's, merged with what causal waits proved. */
  applied: Map<string, GtidState>;
  /** Seconds behind per replica (null: unknown), from the monitor. */
  lag: Map<string, number | null>;
  mode: CausalMode;
  /** `global` mode: every write acknowledged before the statement started. */
  globalWritten?: GtidState;
  /** How long a read may wait for a replica to catch up. */
  waitTimeoutMs: number;
  hints: boolean;
  /** Round-robin cursor for picking a new replica. */
  cursor: number;
}

/**
 * Where one statement goes: a pure function of the statement's class, the session, the routing
 * table and the replicas' applied positions. Writes, transactions, locks and anything unsure go to
 * the primary; reads to a replica that has (or will shortly have) applied what they must see.
 */
export function route(c: Classification, s: SessionView, ctx: RouteContext): { route: Route; cursor: number } {
  // An open transaction keeps every statement where it is.
  if (typeof s.trx === 'object') return { route: { to: 'replica', id: s.trx.replica, reason: 'read_only_transaction' }, cursor: ctx.cursor };
  if (s.trx === 'primary') return primary('transaction', ctx);
  if (ctx.hints && c.hint === 'primary') return primary('hint', ctx);
  if (c.multi) return primary('multi_statement', ctx);
  if (c.kind === 'last') return { route: { to: 'last', reason: 'last_statement' }, cursor: ctx.cursor };
  if (c.pin || s.pinned) return primary('session_bound', ctx);
  switch (c.kind) {
    case 'write':
      return primary('write', ctx);
    case 'locking-read':
      return primary('locking_read', ctx);
    case 'begin':
    case 'end':
    case 'savepoint':
      return primary('transaction', ctx);
    case 'session':
      return primary('session_command', ctx);
    case 'unsure':
      if (!(ctx.hints && c.hint === 'replica')) return primary('unsure', ctx);
      break;
    case 'read':
    case 'begin-read-only':
      break;
  }
  if (!s.autocommit) return primary('transaction', ctx);
  const base: RouteReason = ctx.hints && c.hint === 'replica' ? 'hint' : c.kind === 'begin-read-only' ? 'read_only_transaction' : 'read';
  return pickReplica(s, ctx, base);
}

// Module-level helpers, not closures: the TypeScript loader keeps function names by redefining
// `name` on every closure it creates, which on this path costs more than the routing itself.
function primary(reason: RouteReason, ctx: RouteContext): { route: Route; cursor: number } {
  return { route: { to: 'primary', reason }, cursor: ctx.cursor };
}

function pickReplica(s: SessionView, ctx: RouteContext, reason: RouteReason): { route: Route; cursor: number } {
  const readers = ctx.table.readers;
  if (readers.length === 0) return { route: { to: 'primary', reason: 'no_replica' }, cursor: ctx.cursor };
  const need = ctx.mode === 'none' ? undefined : ctx.mode === 'session' ? s.written : ctx.globalWritten;
  if (ctx.mode !== 'none' && s.blind) return { route: { to: 'primary', reason: 'causal_wait' }, cursor: ctx.cursor };
  if (!need || need.isEmpty()) return choose(readers, s, ctx, reason);
  const caughtUp = readers.filter((id) => covers(ctx.applied.get(id), need));
  if (caughtUp.length > 0) return choose(caughtUp, s, ctx, reason);
  // Nobody is known to have it yet: wait on the replica most likely to have it soon, if one is
  // close enough that waiting beats going to the primary.
  const maxLag = ctx.waitTimeoutMs / 1000;
  const candidates = readers.filter((id) => {
    const lag = ctx.lag.get(id);
    return lag !== null && lag !== undefined && lag < Math.max(1, maxLag);
  });
  if (candidates.length === 0 || ctx.waitTimeoutMs <= 0) return { route: { to: 'primary', reason: 'causal_wait' }, cursor: ctx.cursor };
  const best = candidates.reduce((a, b) => (ahead(ctx.applied.get(b), ctx.applied.get(a), need) ? b : a));
  // Stay on the session's own replica when it is as good as the best: no new connection.
  const id = s.replica && candidates.includes(s.replica) && !ahead(ctx.applied.get(best), ctx.applied.get(s.replica), need) ? s.replica : best;
  return { route: { to: 'replica', id, reason, wait: need }, cursor: ctx.cursor };
}

function choose(pool: string[], s: SessionView, ctx: RouteContext, reason: RouteReason): { route: Route; cursor: number } {
  if (s.replica && pool.includes(s.replica)) return { route: { to: 'replica', id: s.replica, reason }, cursor: ctx.cursor };
  const id = pool[ctx.cursor % pool.length]!;
  return { route: { to: 'replica', id, reason }, cursor: ctx.cursor + 1 };
}

function covers(applied: GtidState | undefined, need: GtidState): boolean {
  if (!applied) return false;
  try {
    return applied.contains(need);
  } catch {
    return false;
  }
}

/** Whether `a` is missing fewer of `need`'s transactions than `b`. */
function ahead(a: GtidState | undefined, b: GtidState | undefined, need: GtidState): boolean {
  return missing(need, a) < missing(need, b);
}

function missing(need: GtidState, x: GtidState | undefined): number {
  if (!x) return Number.MAX_SAFE_INTEGER;
  try {
    return Number(need.countMissingFrom(x));
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

/**
 * Whether a session's primary connection to `primary` must stop being used: the writer moved to
 * another instance, or the primary is being replaced (fenced, or a failover or switchover under
 * way). A writer held for any other reason (the primary missed a probe or two, is read_only for a
 * moment, nothing decided yet) leaves the connection alone: new statements wait for the writer to
 * come back, as the L4 writer holds new connections without closing open ones.
 */
export function primaryLeaving(primary: string, writer: RoutingTable['writer'], replacing: { fenced: ReadonlySet<string>; changing: boolean }): boolean {
  if (writer.mode === 'route') return writer.target !== primary;
  return replacing.changing || replacing.fenced.has(primary);
}
