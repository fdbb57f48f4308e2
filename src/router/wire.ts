import type { ClusterState } from '../coordination/coordinator.ts';
import { decisionFromState, decisionToState, type Decision } from '../decision/decision.ts';
import type { DecisionChange } from '../decision/record.ts';
import type { GtidFlavor } from '../gtid/index.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import { FAMILIES } from '../sql/families.ts';

/**
 * What crosses from the manager to the data-plane process, as JSON: a decision (with the change
 * in flight, which the shared state never holds) and the observations routing needs. Observations
 * travel slim: reachability, read_only, the replica threads and lag, and the GTIDs the SQL
 * endpoint's read-your-writes needs (as text, parsed again on arrival).
 */

export interface WireDecision {
  state: ClusterState;
  changing?: Decision['changing'];
}

export function decisionToWire(d: Decision): WireDecision {
  return { state: decisionToState(d), changing: d.changing };
}

export function decisionFromWire(cluster: string, w: WireDecision): Decision {
  return { ...decisionFromState(cluster, w.state), changing: w.changing };
}

export interface WireObservation {
  id: string;
  at: number;
  reachable: boolean;
  flavor?: GtidFlavor;
  readOnly?: boolean;
  executed?: string;
  replica?: { sourceHost: string; sourcePort: number; ioThread: 'yes' | 'connecting' | 'no'; sqlThread: boolean; secondsBehind: number | null };
}

export function observationToWire(o: InstanceObservation): WireObservation {
  const r = o.replica;
  return {
    id: o.id,
    at: o.at,
    reachable: o.reachable,
    flavor: o.flavor,
    readOnly: o.settings?.readOnly,
    executed: o.gtids?.executed.toString(),
    replica: r && { sourceHost: r.sourceHost, sourcePort: r.sourcePort, ioThread: r.ioThread, sqlThread: r.sqlThread, secondsBehind: r.secondsBehind },
  };
}

/**
 * An observation again, with only what routing reads filled in. Fields routing never reads
 * (settings other than read_only, the replica's binlog coordinates) are absent or neutral.
 */
export function observationFromWire(w: WireObservation): InstanceObservation {
  const family = w.flavor ? FAMILIES[w.flavor] : undefined;
  const executed = family && w.executed !== undefined ? family.parseGtid(w.executed) : undefined;
  return {
    id: w.id,
    at: w.at,
    reachable: w.reachable,
    flavor: w.flavor,
    settings: w.readOnly === undefined ? undefined : ({ readOnly: w.readOnly } as InstanceObservation['settings']),
    gtids: executed && { executed, binlog: executed, replicated: executed },
    replica: w.replica as InstanceObservation['replica'],
  };
}

/** Manager -> data plane. */
export type ToDataPlane =
  /**
   * First message of a manager: who it is and which configuration it runs, as a fingerprint of
   * the effective clusters (the data plane reloads if its own differs).
   */
  | { op: 'hello'; id: number; manager: string; configFile: string; configHash: string; role?: 'manager' | 'peer'; pid?: number }
  /** Replace this data plane with a new process of the code on disk, keeping every session (see upgrade.ts). */
  | { op: 'upgrade'; id: number }
  /** The manager reloaded: read the file (and the etcd inventory) again; the reply carries the new fingerprint. */
  | { op: 'reload'; id: number; configHash: string }
  | { op: 'decision'; id: number; cluster: string; decision: WireDecision; change: DecisionChange }
  | { op: 'observe'; cluster: string; observations: WireObservation[] }
  | { op: 'metrics'; id: number }
  /**
   * A switchover holds writes to `primary`: answer once no SQL session has a transaction open or a
   * command running there (or after `timeoutMs`), with how many still do. The switchover sets
   * read_only only then, so open transactions finish instead of failing.
   */
  | { op: 'drain'; id: number; cluster: string; primary: string; timeoutMs: number }
  /** Stop listening, end every session and exit (`regent dataplane stop`, the sandbox going down). */
  | { op: 'shutdown'; id: number };

/** Data plane -> manager. */
export type FromDataPlane = { reply: number; ok: true; closed?: number; text?: string; pid?: number; configHash?: string; codeId?: string; open?: number } | { reply: number; ok: false; error: string };
