import type { GtidState } from '../gtid/index.ts';
import type { InstanceObservation } from '../monitor/observation.ts';
import { inferTopology, type ClusterView, type Topology } from './cluster-view.ts';
import { inMaintenance as inMaintenanceOf } from '../decision/decision.ts';
import { problem, type Problem } from './problems.ts';

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

/**
 * Whether an unreachable primary has been gone long enough to be dead. A refused connection means
 * nothing listens on its port: a crash, certain at once. Anything else (a probe that timed out, a
 * connection lost and not yet tried again, a host that does not answer) is silence, which a stall
 * also produces: dead only after `hangToleranceMs` of it.
 */
export function primarySilence(primary: InstanceObservation, now: number, hangToleranceMs: number): { dead: boolean; forMs?: number; why: string } {
  if (primary.error?.kind === 'refused') return { dead: true, why: `${primary.id} refuses connections: nothing listens there (a crash)` };
  const forMs = primary.silentSince === undefined ? undefined : now - primary.silentSince;
  if (forMs === undefined) return { dead: false, why: `${primary.id} is silent for an unknown time (no answer seen yet); a crash would refuse connections` };
  return forMs >= hangToleranceMs
    ? { dead: true, forMs, why: `${primary.id} silent for ${forMs} ms, at least the hang tolerance (${hangToleranceMs} ms)` }
    : { dead: false, forMs, why: `${primary.id} silent for ${forMs} ms, less than the hang tolerance (${hangToleranceMs} ms): a stall, so far` };
}

/** Diagnoses a cluster from its view. Pure: same view, same answer. */
export function analyzeCluster(view: ClusterView): Analysis {
  const topology = inferTopology(view);
  const problems: Problem[] = [];
  const cfg = view.cluster;
  const obsOf = (id: string) => view.observations.get(id);
  const primaryId = topology.primary;
  const primary = primaryId ? obsOf(primaryId) : undefined;
  const inMaintenance = (id: string) => inMaintenanceOf(view.decision, id, view.now);

  const replicasOfPrimary = [...topology.sources.entries()].filter(([, src]) => src === primaryId).map(([id]) => id);
  const otherIds = cfg.instances.map((i) => i.id).filter((id) => id !== primaryId);

  if (primaryId && primary && !primary.reachable) {
    const reachableReplicas = otherIds.filter((id) => obsOf(id)?.reachable);
    const unreachableReplicas = otherIds.filter((id) => !obsOf(id)?.reachable);
    const verdicts = replicasOfPrimary.map((id) => ({ id, ...replicaHearsSource(obsOf(id)!, view.now, cfg.failover.confirmReplicaSilenceMs) }));
    const evidence = [`Regent cannot reach ${primaryId}: ${primary.error?.message ?? 'unreachable'}`, ...verdicts.map((v) => `${v.id}: ${v.why}`)];
    if (reachableReplicas.length === 0) {
      problems.push(
        problem('DeadPrimaryAndAllReplicas', {
          instance: primaryId,
          summary: `primary ${primaryId} and every replica are unreachable`,
          evidence: [...evidence, ...unreachableReplicas.map((id) => `${id}: ${obsOf(id)?.error?.message ?? 'unreachable'}`)],
          data: {},
        }),
      );
    } else if (verdicts.length > 0 && verdicts.every((v) => !v.hears)) {
      const confirmedBy = verdicts.map((v) => v.id);
      const silence = primarySilence(primary, view.now, cfg.failover.hangToleranceMs);
      if (!silence.dead) {
        // Everyone lost it, but only by silence, and not for long: a stall (VM pause, fsync
        // stall) looks exactly like this for a second or two, and failing over then costs the
        // stalled primary's in-flight transactions. Wait for the hang tolerance.
        problems.push(
          problem('UnreachablePrimary', {
            instance: primaryId,
            summary: `primary ${primaryId} and its replicas' link to it are silent, for ${silence.forMs === undefined ? 'an unknown time' : `${silence.forMs} ms`}: not declared dead before ${cfg.failover.hangToleranceMs} ms of silence (failover.hangToleranceMs)`,
            evidence: [...evidence, silence.why],
            data: { hearing: [], silentForMs: silence.forMs, hangToleranceMs: cfg.failover.hangToleranceMs },
          }),
        );
      } else {
        const summary = `primary ${primaryId} is dead: neither Regent nor its ${verdicts.length} reachable replica${verdicts.length === 1 ? '' : 's'} can reach it`;
        const deadEvidence = [...evidence, silence.why, ...unreachableReplicas.map((id) => `${id}: also unreachable (${obsOf(id)?.error?.message ?? ''})`)];
        problems.push(
          unreachableReplicas.length > 0
            ? problem('DeadPrimaryAndSomeReplicas', { instance: primaryId, summary, evidence: deadEvidence, data: { confirmedBy, unreachableReplicas, silentForMs: silence.forMs } })
            : problem('DeadPrimary', { instance: primaryId, summary, evidence: deadEvidence, data: { confirmedBy, silentForMs: silence.forMs } }),
        );
      }
    } else if (verdicts.length === 0) {
      // Reachable instances exist but none replicates from the primary: no second opinion, no failover.
      problems.push(
        problem('UnreachablePrimary', {
          instance: primaryId,
          summary: `primary ${primaryId} is unreachable and no reachable replica replicates from it to confirm it is dead`,
          evidence,
          data: { hearing: [] },
        }),
      );
    } else {
      const hearing = verdicts.filter((v) => v.hears).map((v) => v.id);
      problems.push(
        problem('UnreachablePrimary', {
          instance: primaryId,
          summary: `Regent cannot reach primary ${primaryId}, but ${hearing.join(', ')} still replicate from it: not failing over`,
          evidence,
          data: { hearing },
        }),
      );
    }
  }

  if (primaryId && primary?.reachable && primary.settings?.readOnly && !inMaintenance(primaryId)) {
    problems.push(problem('NoWritablePrimary', { instance: primaryId, summary: `primary ${primaryId} is read_only: writes are refused`, evidence: [`${primaryId}: read_only=ON (${topology.primaryEvidence})`], data: {} }));
  }

  // Primary-side lease: this manager lost etcd, so another may be leading; the decided primary
  // stops taking writes unless it is the only live node (then nothing could replace it anyway).
  const leased = view.decision?.decidedPrimary ?? primaryId;
  const leasedObs = leased ? obsOf(leased) : undefined;
  if (view.leaseLostForMs !== undefined && leased && leasedObs?.reachable && leasedObs.settings && !leasedObs.settings.readOnly) {
    const otherLiveNodes = otherIds.filter((id) => id !== leased && obsOf(id)?.reachable);
    problems.push(
      problem('PrimaryLeaseExpired', {
        instance: leased,
        summary: `no contact with etcd for ${Math.round(view.leaseLostForMs / 100) / 10} s, longer than the lease: ${leased} must stop taking writes${otherLiveNodes.length === 0 ? ' (but it is the only live node)' : ''}`,
        evidence: [`coordination lost for ${view.leaseLostForMs} ms`, `${leased}: read_only=OFF`, `other live nodes: ${otherLiveNodes.join(', ') || 'none'}`],
        data: { contactLostMs: view.leaseLostForMs, otherLiveNodes },
      }),
    );
  }

  const writableRoots = [...view.observations.values()].filter((o) => o.reachable && o.settings && !o.settings.readOnly && !topology.sources.has(o.id));
  if (writableRoots.length > 1) {
    problems.push(
      problem('TwoWritablePrimaries', {
        summary: `${writableRoots.length} instances accept writes and replicate from nobody: ${writableRoots.map((o) => o.id).join(', ')}`,
        evidence: writableRoots.map((o) => `${o.id}: read_only=OFF, not a replica`),
        data: { writable: writableRoots.map((o) => o.id) },
      }),
    );
  }

  const primaryGtids = primary?.reachable ? primary.gtids?.executed : undefined;
  for (const id of otherIds) {
    if (inMaintenance(id)) continue;
    const obs = obsOf(id);
    if (!obs) continue;
    if (!obs.reachable) {
      problems.push(problem('UnreachableInstance', { instance: id, summary: `${id} is unreachable`, evidence: [obs.error?.message ?? 'unreachable'], data: {} }));
      continue;
    }
    const r = obs.replica;
    const src = topology.sources.get(id);
    if (!r || !r.sourceHost) {
      if (topology.orphans.includes(id))
        problems.push(
          problem('OrphanInstance', {
            instance: id,
            summary: `${id} replicates from nobody and is not the primary (a former primary?): it needs a rejoin`,
            evidence: [`${id}: no replication configured, read_only=${obs.settings?.readOnly ? 'ON' : 'OFF'}`],
            data: {},
          }),
        );
    } else if (src !== primaryId) {
      const dest = src ?? `${r.sourceHost}:${r.sourcePort} (outside the cluster)`;
      // A replica of a replica is a legal chain; only flag pointing at a dead or orphaned instance.
      const srcObs = src ? obsOf(src) : undefined;
      const srcIsReplica = src ? topology.sources.has(src) : false;
      if (!srcIsReplica || !srcObs?.reachable)
        problems.push(
          problem('ReplicaPointsElsewhere', {
            instance: id,
            summary: `${id} replicates from ${dest}, not from the primary ${primaryId ?? '(unknown)'}`,
            evidence: [`${id}: source ${r.sourceHost}:${r.sourcePort}, IO thread ${r.ioThread}`],
            data: { source: `${r.sourceHost}:${r.sourcePort}`, sourceInCluster: src },
          }),
        );
    }
    if (r) {
      if (r.lastSqlErrno && !r.sqlThread) {
        problems.push(
          problem('ReplicationBroken', {
            instance: id,
            summary: `${id}: SQL thread stopped on error ${r.lastSqlErrno}`,
            evidence: [`Last_SQL_Error: ${r.lastSqlError}`],
            data: { thread: 'sql', errno: r.lastSqlErrno, error: r.lastSqlError },
          }),
        );
      } else if (r.ioThread === 'no' && r.lastIoErrno) {
        problems.push(
          problem('ReplicationBroken', {
            instance: id,
            summary: `${id}: IO thread stopped on error ${r.lastIoErrno}`,
            evidence: [`Last_IO_Error: ${r.lastIoError}`],
            data: { thread: 'io', errno: r.lastIoErrno, error: r.lastIoError },
          }),
        );
      } else if (r.ioThread === 'no' || !r.sqlThread) {
        problems.push(
          problem('ReplicationStopped', {
            instance: id,
            summary: `${id}: replication stopped (IO ${r.ioThread}, SQL ${r.sqlThread ? 'yes' : 'no'})`,
            evidence: [`IO thread ${r.ioThread}, SQL thread ${r.sqlThread ? 'running' : 'stopped'}, no error recorded`],
            data: { ioThread: r.ioThread, sqlThread: r.sqlThread },
          }),
        );
      } else if (r.ioThread === 'connecting' && primary?.reachable && src === primaryId) {
        problems.push(
          problem('ReplicaCannotReachPrimary', {
            instance: id,
            summary: `${id} cannot connect to ${primaryId}, which Regent can reach`,
            evidence: [`Last_IO_Error ${r.lastIoErrno}: ${r.lastIoError}`],
            data: { errno: r.lastIoErrno, error: r.lastIoError },
          }),
        );
      }
      if (r.secondsBehind !== null && r.secondsBehind > cfg.monitor.lagThresholdSeconds) {
        problems.push(
          problem('ReplicaLagging', {
            instance: id,
            summary: `${id} is ${r.secondsBehind} s behind (threshold ${cfg.monitor.lagThresholdSeconds} s)`,
            evidence: [`Seconds_Behind_Master=${r.secondsBehind}`],
            data: { seconds: r.secondsBehind, thresholdSeconds: cfg.monitor.lagThresholdSeconds },
          }),
        );
      }
    }
    if (obs.settings && !obs.settings.readOnly && (r?.sourceHost || src)) {
      problems.push(
        problem('WritableReplica', { instance: id, summary: `${id} is a replica with read_only=OFF`, evidence: [`${id}: read_only=OFF while replicating from ${r?.sourceHost}:${r?.sourcePort}`], data: {} }),
      );
    }
    if (primaryGtids && obs.gtids && primary?.settings) {
      const errant = errantTransactions(obs.gtids.executed, primaryGtids, primary.settings.gtidOrigin);
      if (!errant.isEmpty())
        problems.push(
          problem('ErrantGtid', {
            instance: id,
            summary: `${id} has transactions the primary lacks: ${errant.toString()}`,
            evidence: [`${id} executed ${obs.gtids.executed.toString()}`, `${primaryId} executed ${primaryGtids.toString()}`],
            data: { errant },
          }),
        );
    }
  }
  // Replicas attached outside Regent (found by the manager's scout): a failover would leave them behind.
  for (const a of view.unmanagedReplicas ?? []) {
    if (inMaintenance(a.address)) continue;
    problems.push(
      problem('UnmanagedReplica', {
        instance: a.address,
        summary: `${a.address} replicates from ${a.source} but is not an instance of cluster ${cfg.name}: a failover would leave it behind`,
        evidence: [
          `${a.source}: ${a.address} (server_id ${a.serverId}) registered as its replica`,
          a.reachable
            ? `${a.address}: reachable by Regent; add it with \`regent cluster add-instance ${cfg.name} ${a.address}\` (or set discovery.addReplicas)`
            : `${a.address}: not reachable by Regent (${a.error ?? 'no answer'}); if it reports an address Regent cannot reach (report_host behind NAT), set report_host/report_port on it to one Regent reaches`,
        ],
        data: { source: a.source, serverId: a.serverId, reachable: a.reachable ?? false, error: a.error },
      }),
    );
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
