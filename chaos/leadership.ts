/**
 * The multi-manager invariants of the chaos suite. Pure: they judge the managers' own logs, the
 * journal as etcd holds it, and what was seen after each fault settled.
 *
 * - two-acting-managers: per cluster, leadership intervals of different managers never overlap.
 *   An interval runs from `leader_elected` to `leadership_lost` (its `stoppedAt`: when the
 *   manager stopped counting itself leader), `leadership_released`, or the process's exit.
 * - journal-two-writers: a plan is written by one manager. A successor may finish a predecessor's
 *   plan (resume), but only after the predecessor's leadership ended.
 * - journal-plans-overlap: per cluster, no two managers write plans at the same time.
 * - leader-count: after each fault settled, every cluster has exactly one leader.
 */
import type { Violation } from './invariants.ts';

/** What the checker needs of one manager process: its id, its log, when it exited. */
export interface ManagerLog {
  /** The manager's id as etcd and the journal name it (host:pid:port). */
  id: string;
  events: { event?: string; time: string; [k: string]: unknown }[];
  /** When the process exited (undefined: alive at the end of the run). */
  exitedAt?: number;
}

export interface LeadershipInterval {
  cluster: string;
  manager: string;
  from: number;
  to: number;
}

/** Leadership intervals from the managers' logs; intervals still open end at exit or `now`. */
export function leadershipIntervals(logs: ManagerLog[], now: number): LeadershipInterval[] {
  const out: LeadershipInterval[] = [];
  for (const m of logs) {
    const open = new Map<string, number>();
    const end = m.exitedAt ?? now;
    const events = [...m.events].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    for (const e of events) {
      const cluster = e['cluster'];
      if (typeof cluster !== 'string') continue;
      const at = Date.parse(e.time);
      if (e.event === 'leader_elected' && !open.has(cluster)) open.set(cluster, at);
      else if ((e.event === 'leadership_lost' || e.event === 'leadership_released') && open.has(cluster)) {
        const stopped = typeof e['stoppedAt'] === 'number' ? Math.min(at, e['stoppedAt']) : at;
        out.push({ cluster, manager: m.id, from: open.get(cluster)!, to: Math.max(open.get(cluster)!, Math.min(stopped, end)) });
        open.delete(cluster);
      }
    }
    for (const [cluster, from] of open) out.push({ cluster, manager: m.id, from, to: Math.max(from, end) });
  }
  return out.sort((a, b) => a.from - b.from);
}

const iso = (t: number) => new Date(t).toISOString();
const show = (i: LeadershipInterval) => `${i.manager} ${iso(i.from)}..${iso(i.to)}`;

/** Two managers leading one cluster at the same instant. */
export function overlappingLeadership(intervals: LeadershipInterval[]): Violation[] {
  const v: Violation[] = [];
  const byCluster = groupBy(intervals, (i) => i.cluster);
  for (const [cluster, list] of byCluster) {
    const sorted = [...list].sort((a, b) => a.from - b.from);
    for (let i = 0; i < sorted.length; i++)
      for (let j = i + 1; j < sorted.length && sorted[j]!.from < sorted[i]!.to; j++)
        if (sorted[j]!.manager !== sorted[i]!.manager)
          v.push({ invariant: 'two-acting-managers', detail: `${cluster}: ${show(sorted[i]!)} and ${show(sorted[j]!)} overlap by ${Math.min(sorted[i]!.to, sorted[j]!.to) - sorted[j]!.from} ms` });
  }
  return v;
}

/** One entry of `<prefix>/_journal/<cluster>/`, with its writer from the key's suffix. */
export interface JournalRecord {
  key: string;
  planId: string;
  cluster: string;
  at: number;
  type: string;
}

/** The writer a journal key names: `<at>-<seq>-<manager id>`. */
export function journalWriter(key: string): string {
  const last = key.slice(key.lastIndexOf('/') + 1);
  return last.split('-').slice(2).join('-');
}

/** The entries of one plan written by one manager, as a time span. */
interface Segment {
  cluster: string;
  planId: string;
  writer: string;
  from: number;
  to: number;
}

function segments(records: JournalRecord[]): Map<string, Segment[]> {
  const byPlan = new Map<string, Segment[]>();
  for (const r of [...records].sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : 1))) {
    const writer = journalWriter(r.key);
    const list = byPlan.get(r.planId) ?? [];
    const seg = list.find((s) => s.writer === writer);
    if (seg) {
      seg.from = Math.min(seg.from, r.at);
      seg.to = Math.max(seg.to, r.at);
    } else list.push({ cluster: r.cluster, planId: r.planId, writer, from: r.at, to: r.at });
    byPlan.set(r.planId, list);
  }
  return byPlan;
}

/**
 * Every plan has one writer, or was handed over cleanly: each successor's first entry comes after
 * its predecessor's last one and after the predecessor's leadership of the cluster ended. Plans
 * (or parts of plans) of one cluster by different managers never overlap in time.
 */
export function checkJournal(records: JournalRecord[], intervals: LeadershipInterval[]): Violation[] {
  const v: Violation[] = [];
  const byPlan = segments(records);
  for (const [planId, segs] of byPlan) {
    if (segs.length < 2) continue;
    const ordered = [...segs].sort((a, b) => a.from - b.from);
    for (let i = 1; i < ordered.length; i++) {
      const before = ordered[i - 1]!;
      const after = ordered[i]!;
      const ended = intervals.some((x) => x.cluster === before.cluster && x.manager === before.writer && x.from <= before.to && x.to >= before.to && x.to <= after.from);
      if (after.from < before.to || !ended)
        v.push({
          invariant: 'journal-two-writers',
          detail: `plan ${planId} of ${before.cluster}: written by ${before.writer} (${iso(before.from)}..${iso(before.to)}) and by ${after.writer} (${iso(after.from)}..${iso(after.to)})${after.from < before.to ? ', interleaved' : ' before the first one\'s leadership ended'}`,
        });
    }
  }
  const all = [...byPlan.values()].flat();
  for (const [cluster, list] of groupBy(all, (s) => s.cluster)) {
    const sorted = [...list].sort((a, b) => a.from - b.from);
    for (let i = 0; i < sorted.length; i++)
      for (let j = i + 1; j < sorted.length && sorted[j]!.from <= sorted[i]!.to; j++)
        if (sorted[j]!.writer !== sorted[i]!.writer && sorted[j]!.planId !== sorted[i]!.planId)
          v.push({ invariant: 'journal-plans-overlap', detail: `${cluster}: plan ${sorted[i]!.planId} by ${sorted[i]!.writer} and plan ${sorted[j]!.planId} by ${sorted[j]!.writer} overlap in time` });
  }
  return v;
}

/**
 * After a fault settled: the leader key of `cluster` in etcd names a live manager, and that
 * manager, and no other live one, says in its log that it leads the cluster. Returns what is
 * wrong, or undefined.
 */
export function leaderCountProblem(cluster: string, keyHolder: string | undefined, believers: string[], live: string[]): string | undefined {
  if (believers.length !== 1) return `${cluster}: ${believers.length} live managers say they lead it${believers.length ? ` (${believers.join(', ')})` : ''}; etcd names ${keyHolder ?? 'nobody'}`;
  if (keyHolder === undefined) return `${cluster}: no leader key in etcd, but ${believers[0]} says it leads`;
  if (!live.includes(keyHolder)) return `${cluster}: the leader key names ${keyHolder}, which is not running`;
  if (believers[0] !== keyHolder) return `${cluster}: ${believers[0]} says it leads, etcd names ${keyHolder}`;
  return undefined;
}

/** Whether a manager's log says it leads `cluster` now (its last leadership event). */
export function saysItLeads(events: ManagerLog['events'], cluster: string): boolean {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e['cluster'] !== cluster) continue;
    if (e.event === 'leader_elected') return true;
    if (e.event === 'leadership_lost' || e.event === 'leadership_released') return false;
  }
  return false;
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}
