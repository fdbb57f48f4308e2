import type { ClusterConfig, InstanceConfig } from '../config/load.ts';
import type { InstanceObservation } from '../monitor/observation.ts';

/** The latest observation of every instance of one cluster, plus what Regent remembers between probes. */
export interface ClusterView {
  cluster: ClusterConfig;
  observations: Map<string, InstanceObservation>;
  now: number;
  /** The primary Regent last knew (from its own recoveries or earlier views); guides inference when it died. */
  lastKnownPrimary?: string;
  /** Instances a person put in maintenance: observed, never acted on. */
  maintenance?: Set<string>;
  /** Former primaries Regent fenced: replicas still pointing at one do not make it the primary. */
  fenced?: Set<string>;
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
  const lastKnown = view.lastKnownPrimary ? view.observations.get(view.lastKnownPrimary) : undefined;
  const lastKnownIsLiveWriter = Boolean(lastKnown?.reachable && lastKnown.settings && !lastKnown.settings.readOnly && !sources.has(lastKnown.id));
  const pointerTop = ranked[0];
  const pointerTopUsable = pointerTop && (view.observations.get(pointerTop[0])?.reachable || !lastKnownIsLiveWriter) && !(lastKnownIsLiveWriter && view.fenced?.has(pointerTop[0]));
  if (pointerTop && pointerTopUsable) {
    const [candidate, n] = pointerTop;
    const lastKnownAmongTops = view.lastKnownPrimary && tops.has(view.lastKnownPrimary) ? view.lastKnownPrimary : undefined;
    primary = ranked.length > 1 && lastKnownAmongTops ? lastKnownAmongTops : candidate;
    primaryEvidence = `${n} replica${n === 1 ? '' : 's'} replicate${n === 1 ? 's' : ''} from it`;
  } else if (lastKnownIsLiveWriter && lastKnown) {
    // Replicas still pointing at a dead former primary do not outvote the writable primary Regent
    // itself promoted: that would fail over a second time.
    primary = lastKnown.id;
    primaryEvidence = 'the writable primary Regent decided on';
  } else if (writableRoots.length === 1 && writableRoots[0]) {
    primary = writableRoots[0].id;
    primaryEvidence = 'the only writable instance that replicates from nobody';
  } else if (view.lastKnownPrimary) {
    primary = view.lastKnownPrimary;
    primaryEvidence = 'last known primary';
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
