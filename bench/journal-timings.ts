import { readFileSync } from 'node:fs';
import type { JournalEntry } from '../src/coordination/coordinator.ts';

/** One cluster's failover in one round, in ms after the kill. */
export interface ClusterTiming {
  cluster: string;
  /** The plan was journaled (the failover started). */
  started: number;
  /** The promote step ended: read_only=OFF returned on the new primary. */
  writable: number;
  /** A client polling the replicas saw read_only=0 (undefined without polling). */
  clientSaw?: number;
  /** The plan's end was journaled. */
  ended: number;
  /** Each step: start and end, ms after the kill. */
  steps: { step: string; start: number; end: number }[];
}

/** Each failover plan journaled after `t0` in a local journal file, with its steps, in ms after `t0`. */
export function journalTimings(file: string, t0: number): ClusterTiming[] {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalEntry);
  return timingsOf(entries, t0);
}

/** The same from journal entries in the order they were written (e.g. read from etcd by key). */
export function timingsOf(all: JournalEntry[], t0: number): ClusterTiming[] {
  const entries = all.filter((e) => e.at >= t0);
  const plans = new Map<string, ClusterTiming>();
  for (const e of entries) {
    if (e.type === 'plan' && e.kind === 'failover') plans.set(e.planId, { cluster: e.cluster, started: e.at - t0, writable: NaN, ended: NaN, steps: [] });
    const p = plans.get(e.planId);
    if (!p) continue;
    if (e.type === 'step' && e.phase === 'start') p.steps.push({ step: e.step, start: e.at - t0, end: NaN });
    if (e.type === 'step' && e.phase === 'end') {
      const s = [...p.steps].reverse().find((x) => x.step === e.step);
      if (s) s.end = e.at - t0;
      if (e.step === 'promote') p.writable = e.at - t0;
    }
    if (e.type === 'end') p.ended = e.at - t0;
  }
  return [...plans.values()].sort((a, b) => a.writable - b.writable);
}

/**
 * Each cluster's first failover after the kill. A second one right after it (the analysis judging
 * the same dead primary again) is counted apart as "repeated".
 */
export function firstPerCluster(timings: ClusterTiming[]): ClusterTiming[] {
  const first = new Map<string, ClusterTiming>();
  for (const t of [...timings].sort((a, b) => a.started - b.started)) if (!first.has(t.cluster)) first.set(t.cluster, t);
  return [...first.values()];
}
