import type { GtidFlavor } from '../gtid/index.ts';
import type { DbErrorKind } from '../errors.ts';
import type { ReplicaStatus, SemiSyncStatus, ServerGtids, ServerSettings } from '../sql/flavor.ts';

/** What Regent knows about one instance at one moment. Produced by probes, consumed by analysis. */
export interface InstanceObservation {
  /** host:port */
  id: string;
  /** When the probe finished (ms since epoch). */
  at: number;
  reachable: boolean;
  /** Why it is not reachable (or why the probe failed). */
  error?: { kind: DbErrorKind; message: string };
  /**
   * On an unreachable observation: since when the instance has not answered (its last answered
   * probe, or the first probe when it never answered). Tells a brief stall from a long hang.
   */
  silentSince?: number;
  latencyMs?: number;
  flavor?: GtidFlavor;
  settings?: ServerSettings;
  gtids?: ServerGtids;
  semiSync?: SemiSyncStatus;
  /** Undefined when the server replicates from nobody. */
  replica?: ReplicaStatus;
  /**
   * When this replica last showed signs of hearing from its source: a new event read or a new
   * heartbeat (ms since epoch). Tracked across probes by the monitor; an IO thread that still says
   * "Yes" but has heard nothing for longer than a few heartbeat periods has lost its source.
   */
  replicaLastContactAt?: number;
  /**
   * The replica's lag at the last probe that could measure it (Seconds_Behind_Master is NULL once
   * the IO thread lost its source, which is exactly when a failover wants to know it).
   */
  lastMeasuredLagSeconds?: number;
}

export function unreachable(id: string, kind: DbErrorKind, message: string, at = Date.now()): InstanceObservation {
  return { id, at, reachable: false, error: { kind, message } };
}
