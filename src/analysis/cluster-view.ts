import type { AttachedReplica } from '../monitor/replica-scout.ts';
import type { ClusterConfig, InstanceConfig } from '../config/load.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import type { Decision } from '../decision/decision.ts';

/** The latest observation of every instance of one cluster, plus what Regent remembers between probes. */
export interface ClusterView {
  cluster: ClusterConfig;
  observations: Map<string, InstanceObservation>;
  now: number;
  /**
   * What Regent decided (read-only): the decided primary guides inference when it died, fenced
   * former primaries are never made primary by stale replica pointers, instances in maintenance
   * are observed and never acted on. Absent for one-shot commands without a record.
   */
  decision?: Decision;
  /** This manager lost its coordination (etcd) this long ago, beyond the lease (coordination.primaryLease only). */
  leaseLostForMs?: number;
  /** Replicas registered with an instance that are not instances of the cluster (the manager's periodic scan). */
  unmanagedReplicas?: AttachedReplica[];
}

export interface Topology {
  /** The primary: the instance the replicas replicate from, or the one writable root. */
  primary?: string;
  /** How the primary was identified, for explanations. */
  primaryEvidence: string;
  /** replica id -> the id of its source (undefined when it points outside the cluster). */
  sources: Map<string, string | undefined>;
  /** Reachable instances that replicate from nobody and are not the primary. */
  orphans: string[];
}

export function instanceByEndpoint(cluster: ClusterConfig, host: string, port: number): InstanceConfig | undefined {
  return cluster.instances.find((i) => i.port === port && (i.host === host || sameLoopback(i.host, host)));
}

function sameLoopback(a: string, b: string): boolean {
  const loop = (h: string) => h === 'localhost' || h.startsWith('127.');
  return loop(a) && loop(b) && a === b;
}

/**
 * Works out who is primary from facts, not from the config: the replicas' own word about their
 * source counts most (it survives the primary's death), then a writable instance replicating from
 * nobody, then what Regent last knew.
 */
export function inferTopology(view: ClusterView): Topology {
  const sources = new Map<string, string | undefined>();
  const pointedAt = new Map<string, number>();
  for (const [id, obs] of view.observations) {
    const r = obs.replica;
    if (!obs.reachable || !r || !r.sourceHost) continue;
    const src = instanceByEndpoint(view.cluster, r.sourceHost, r.sourcePort)?.id;
    sources.set(id, src);
    if (src) pointedAt.set(src, (pointedAt.get(src) ?? 0) + 1);
  }
  const roots = [...view.observations.values()].filter((o) => o.reachable && !sources.has(o.id));
  const writableRoots = roots.filter((o) => o.settings && !o.settings.readOnly);

  // A source that itself replicates from another instance is an intermediate, not the primary: walk up.
  const top = (id: string): string => {
    const seen = new Set<string>();
    let cur = id;
    for (;;) {
      const up = sources.get(cur);
      if (!up || seen.has(up)) return cur;
      seen.add(cur);
      cur = up;
    }
  };
  let primary: string | undefined;
  let primaryEvidence = '';
  const tops = new Map<string, number>();
  for (const [src, n] of pointedAt) tops.set(top(src), (tops.get(top(src)) ?? 0) + n);
  const ranked = [...tops.entries()].sort((a, b) => b[1] - a[1]);
  const decided = view.decision?.decidedPrimary;
  const decidedObs = decided ? view.observations.get(decided) : undefined;
  const decidedIsLiveWriter = Boolean(decidedObs?.reachable && decidedObs.settings && !decidedObs.settings.readOnly && !sources.has(decidedObs.id));
  const pointerTop = ranked[0];
  const pointerTopUsable = pointerTop && (view.observations.get(pointerTop[0])?.reachable || !decidedIsLiveWriter) && !(decidedIsLiveWriter && view.decision?.fenced.has(pointerTop[0]));
  if (pointerTop && pointerTopUsable) {
    const [candidate] = pointerTop;
    const decidedAmongTops = decided && tops.has(decided) ? decided : undefined;
    primary = ranked.length > 1 && decidedAmongTops ? decidedAmongTops : candidate;
    const n = tops.get(primary) ?? 0;
    primaryEvidence = `${n} replica${n === 1 ? '' : 's'} replicate${n === 1 ? 's' : ''} from it`;
  } else if (decidedIsLiveWriter && decidedObs) {
    // Replicas still pointing at a dead former primary do not outvote the writable primary Regent
    // itself promoted: that would fail over a second time.
    primary = decidedObs.id;
    primaryEvidence = 'the writable primary Regent decided on';
  } else if (writableRoots.length === 1 && writableRoots[0]) {
    primary = writableRoots[0].id;
    primaryEvidence = 'the only writable instance that replicates from nobody';
  } else if (decided) {
    primary = decided;
    primaryEvidence = 'the primary Regent decided on';
  } else if (roots.length === 1 && roots[0]) {
    primary = roots[0].id;
    primaryEvidence = 'the only instance that replicates from nobody';
  } else if (view.cluster.primary) {
    primary = view.cluster.primary;
    primaryEvidence = 'configured primary';
  }
  const orphans = roots.map((o) => o.id).filter((id) => id !== primary);
  return { primary, primaryEvidence, sources, orphans };
}
