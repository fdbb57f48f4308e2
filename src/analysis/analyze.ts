import type { GtidState } from '../gtid/index.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import { inferTopology, type ClusterView, type Topology } from './cluster-view.ts';
import type { Problem } from './problems.ts';

export interface Analysis {
  topology: Topology;
  problems: Problem[];
}

/** How a reachable replica relates to its (unreachable) source right now, with the fact behind it. */
export function replicaHearsSource(obs: InstanceObservation, now: number, silenceMs: number): { hears: boolean; why: string } {
  const r = obs.replica;
  if (!r) return { hears: false, why: 'not replicating' };
  if (r.ioThread === 'no') return { hears: false, why: 'IO thread stopped' };
  if (r.ioThread === 'connecting')
    return { hears: false, why: `IO thread reconnecting${r.lastIoErrno ? ` (error ${r.lastIoErrno}: ${r.lastIoError})` : ''}` };
  // IO thread says Yes: a frozen source keeps TCP open, so only silence (no event, no heartbeat)
  // tells that it is gone.
  if (obs.replicaLastContactAt !== undefined && now - obs.replicaLastContactAt > silenceMs)
    return { hears: false, why: `IO thread connected but nothing received for ${now - obs.replicaLastContactAt} ms (no events, no heartbeats)` };
  return { hears: true, why: 'IO thread connected and receiving' };
}

/** Diagnoses a cluster from its view. Pure: same view, same answer. */
export function analyzeCluster(view: ClusterView): Analysis {
  const topology = inferTopology(view);
  const problems: Problem[] = [];
  const cfg = view.cluster;
  const obsOf = (id: string) => view.observations.get(id);
  const primaryId = topology.primary;
  const primary = primaryId ? obsOf(primaryId) : undefined;
  const inMaintenance = (id: string) => view.maintenance?.has(id) ?? false;

  const replicasOfPrimary = [...topology.sources.entries()].filter(([, src]) => src === primaryId).map(([id]) => id);
  const otherIds = cfg.instances.map((i) => i.id).filter((id) => id !== primaryId);

  if (primaryId && primary && !primary.reachable) {
    const reachableReplicas = otherIds.filter((id) => obsOf(id)?.reachable);
    const unreachableReplicas = otherIds.filter((id) => !obsOf(id)?.reachable);
    const verdicts = replicasOfPrimary.map((id) => ({ id, ...replicaHearsSource(obsOf(id)!, view.now, cfg.failover.confirmReplicaSilenceMs) }));
    const evidence = [`Regent cannot reach ${primaryId}: ${primary.error?.message ?? 'unreachable'}`, ...verdicts.map((v) => `${v.id}: ${v.why}`)];
    if (reachableReplicas.length === 0) {
      problems.push({
        code: 'DeadPrimaryAndAllReplicas',
        severity: 'critical',
        instance: primaryId,
        summary: `primary ${primaryId} and every replica are unreachable`,
        evidence: [...evidence, ...unreachableReplicas.map((id) => `${id}: ${obsOf(id)?.error?.message ?? 'unreachable'}`)],
      });
    } else if (verdicts.length > 0 && verdicts.every((v) => !v.hears)) {
      const some = unreachableReplicas.length > 0;
      problems.push({
        code: some ? 'DeadPrimaryAndSomeReplicas' : 'DeadPrimary',
        severity: 'critical',
        instance: primaryId,
        summary: `primary ${primaryId} is dead: neither Regent nor its ${verdicts.length} reachable replica${verdicts.length === 1 ? '' : 's'} can reach it`,
        evidence: [...evidence, ...unreachableReplicas.map((id) => `${id}: also unreachable (${obsOf(id)?.error?.message ?? ''})`)],
      });
    } else if (verdicts.length === 0) {
      // Reachable instances exist but none replicates from the primary: no second opinion, no failover.
      problems.push({
        code: 'UnreachablePrimary',
        severity: 'critical',
        instance: primaryId,
        summary: `primary ${primaryId} is unreachable and no reachable replica replicates from it to confirm it is dead`,
        evidence,
      });
    } else {
      problems.push({
        code: 'UnreachablePrimary',
        severity: 'critical',
        instance: primaryId,
        summary: `Regent cannot reach primary ${primaryId}, but ${verdicts.filter((v) => v.hears).map((v) => v.id).join(', ')} still replicate from it: not failing over`,
        evidence,
      });
    }
  }

  if (primaryId && primary?.reachable && primary.settings?.readOnly && !inMaintenance(primaryId)) {
    problems.push({
      code: 'NoWritablePrimary',
      severity: 'critical',
      instance: primaryId,
      summary: `primary ${primaryId} is read_only: writes are refused`,
      evidence: [`${primaryId}: read_only=ON (${topology.primaryEvidence})`],
    });
  }

  const writableRoots = [...view.observations.values()].filter((o) => o.reachable && o.settings && !o.settings.readOnly && !topology.sources.has(o.id));
  if (writableRoots.length > 1) {
    problems.push({
      code: 'TwoWritablePrimaries',
      severity: 'critical',
      summary: `${writableRoots.length} instances accept writes and replicate from nobody: ${writableRoots.map((o) => o.id).join(', ')}`,
      evidence: writableRoots.map((o) => `${o.id}: read_only=OFF, not a replica`),
    });
  }

  const primaryGtids = primary?.reachable ? primary.gtids?.executed : undefined;
  for (const id of otherIds) {
    if (inMaintenance(id)) continue;
    const obs = obsOf(id);
    if (!obs) continue;
    if (!obs.reachable) {
      problems.push({ code: 'UnreachableInstance', severity: 'warning', instance: id, summary: `${id} is unreachable`, evidence: [obs.error?.message ?? 'unreachable'] });
      continue;
    }
    const r = obs.replica;
    const src = topology.sources.get(id);
    if (!r || !r.sourceHost) {
      if (topology.orphans.includes(id))
        problems.push({
          code: 'OrphanInstance',
          severity: 'warning',
          instance: id,
          summary: `${id} replicates from nobody and is not the primary (a former primary?): it needs a rejoin`,
          evidence: [`${id}: no replication configured, read_only=${obs.settings?.readOnly ? 'ON' : 'OFF'}`],
        });
    } else if (src !== primaryId) {
      const dest = src ?? `${r.sourceHost}:${r.sourcePort} (outside the cluster)`;
      // A replica of a replica is a legal chain; only flag pointing at a dead or orphaned instance.
      const srcObs = src ? obsOf(src) : undefined;
      const srcIsReplica = src ? topology.sources.has(src) : false;
      if (!srcIsReplica || !srcObs?.reachable)
        problems.push({
          code: 'ReplicaPointsElsewhere',
          severity: 'warning',
          instance: id,
          summary: `${id} replicates from ${dest}, not from the primary ${primaryId ?? '(unknown)'}`,
          evidence: [`${id}: source ${r.sourceHost}:${r.sourcePort}, IO thread ${r.ioThread}`],
        });
    }
    if (r) {
      if (r.lastSqlErrno && !r.sqlThread) {
        problems.push({
          code: 'ReplicationBroken',
          severity: 'critical',
          instance: id,
          summary: `${id}: SQL thread stopped on error ${r.lastSqlErrno}`,
          evidence: [`Last_SQL_Error: ${r.lastSqlError}`],
        });
      } else if (r.ioThread === 'no' && r.lastIoErrno) {
        problems.push({
          code: 'ReplicationBroken',
          severity: 'critical',
          instance: id,
          summary: `${id}: IO thread stopped on error ${r.lastIoErrno}`,
          evidence: [`Last_IO_Error: ${r.lastIoError}`],
        });
      } else if (r.ioThread === 'no' || !r.sqlThread) {
        problems.push({
          code: 'ReplicationStopped',
          severity: 'warning',
          instance: id,
          summary: `${id}: replication stopped (IO ${r.ioThread}, SQL ${r.sqlThread ? 'yes' : 'no'})`,
          evidence: [`IO thread ${r.ioThread}, SQL thread ${r.sqlThread ? 'running' : 'stopped'}, no error recorded`],
        });
      } else if (r.ioThread === 'connecting' && primary?.reachable && src === primaryId) {
        problems.push({
          code: 'ReplicaCannotReachPrimary',
          severity: 'warning',
          instance: id,
          summary: `${id} cannot connect to ${primaryId}, which Regent can reach`,
          evidence: [`Last_IO_Error ${r.lastIoErrno}: ${r.lastIoError}`],
        });
      }
      if (r.secondsBehind !== null && r.secondsBehind > cfg.monitor.lagThresholdSeconds) {
        problems.push({
          code: 'ReplicaLagging',
          severity: 'warning',
          instance: id,
          summary: `${id} is ${r.secondsBehind} s behind (threshold ${cfg.monitor.lagThresholdSeconds} s)`,
          evidence: [`Seconds_Behind_Master=${r.secondsBehind}`],
        });
      }
    }
    if (obs.settings && !obs.settings.readOnly && (r?.sourceHost || src)) {
      problems.push({
        code: 'WritableReplica',
        severity: 'warning',
        instance: id,
        summary: `${id} is a replica with read_only=OFF`,
        evidence: [`${id}: read_only=OFF while replicating from ${r?.sourceHost}:${r?.sourcePort}`],
      });
    }
    if (primaryGtids && obs.gtids && primary?.settings) {
      const errant = errantTransactions(obs.gtids.executed, primaryGtids, primary.settings.gtidOrigin);
      if (!errant.isEmpty())
        problems.push({
          code: 'ErrantGtid',
          severity: 'critical',
          instance: id,
          summary: `${id} has transactions the primary lacks: ${errant.toString()}`,
          evidence: [`${id} executed ${obs.gtids.executed.toString()}`, `${primaryId} executed ${primaryGtids.toString()}`],
        });
    }
  }
  return { topology, problems };
}

/**
 * What a replica has that the primary lacks, minus transactions the primary itself wrote: those can
 * only be the primary's newest commits, seen by a replica probed a moment after the primary was.
 */
export function errantTransactions(replica: GtidState, primary: GtidState, primaryOrigin: string): GtidState {
  return replica.subtract(primary).withoutOrigin(primaryOrigin);
}
