/**
 * The chaos suite's invariant checker. Pure: it judges what the workload recorded against the
 * primary timeline the manager published and the final state of every node.
 */

/** One acknowledged write: the client sent it at sentAt and got OK at ackAt. */
export interface AckedWrite {
  id: number;
  sentAt: number;
  ackAt: number;
}

/** One probe through the writer endpoint: which server answered, when. */
export interface EndpointSample {
  sentAt: number;
  ackAt: number;
  serverId: number;
  readOnly: boolean;
}

/**
 * Who was primary when, from the manager's log: `from` is when the manager published it; `fencedAt`
 * is when the next change fenced it (writes to it must have been acknowledged before that).
 */
export interface PrimaryEpoch {
  serverId: number;
  from: number;
  fencedAt?: number;
}

export interface FinalNode {
  name: string;
  serverId: number;
  /** ids present in the workload table at the end. */
  ids: Set<number>;
  /** server_id recorded in each row (which node executed the write). */
  rowServer: Map<number, number>;
  checksum: string;
  /** SQL-endpoint mode: the counter table at the end (writer -> n). */
  counters?: Map<number, number>;
}

export interface Violation {
  invariant:
    | 'acknowledged-write-lost'
    | 'write-on-non-primary'
    | 'two-writers-behind-endpoint'
    | 'no-convergence'
    | 'checksum-mismatch'
    // SQL-endpoint mode (a counter per writer session, read back through the endpoint):
    | 'write-applied-twice'
    | 'acknowledged-increment-lost'
    | 'read-missed-own-write'
    // With several managers (chaos/leadership.ts):
    | 'two-acting-managers'
    | 'journal-two-writers'
    | 'journal-plans-overlap'
    | 'leader-count';
  detail: string;
}

/** Was `serverId` the primary at some instant of [from, to]? */
export function wasPrimaryDuring(epochs: PrimaryEpoch[], serverId: number, from: number, to: number, slackMs: number): boolean {
  return epochs.some((e, i) => {
    if (e.serverId !== serverId) return false;
    const start = e.from - slackMs;
    const next = epochs[i + 1];
    const end = (e.fencedAt ?? next?.from ?? Infinity) + slackMs;
    return from <= end && to >= start;
  });
}

export function checkInvariants(input: {
  acked: AckedWrite[];
  samples: EndpointSample[];
  epochs: PrimaryEpoch[];
  final: FinalNode[];
  converged: boolean;
  convergenceDetail: string;
  /** Clock granularity between the manager's log and the client (same host): a few ms. */
  slackMs?: number;
}): Violation[] {
  const slack = input.slackMs ?? 20;
  const v: Violation[] = [];
  const limit = <T,>(xs: T[], n = 10) => (xs.length > n ? `${xs.slice(0, n).join(', ')} … (${xs.length} in all)` : xs.join(', '));

  if (!input.converged) v.push({ invariant: 'no-convergence', detail: input.convergenceDetail });

  // 1. Every acknowledged write exists at the end on every node.
  for (const node of input.final) {
    const lost = input.acked.filter((a) => !node.ids.has(a.id)).map((a) => a.id);
    if (lost.length) v.push({ invariant: 'acknowledged-write-lost', detail: `${node.name} lacks ${lost.length} acknowledged write(s): ${limit(lost)}` });
  }

  // 2. No write landed on a node that was not the primary at that moment.
  const reference = input.final.find((n) => n.rowServer.size > 0);
  if (reference) {
    const wrong: string[] = [];
    for (const a of input.acked) {
      const server = reference.rowServer.get(a.id);
      if (server === undefined) continue;
      if (!wasPrimaryDuring(input.epochs, server, a.sentAt, a.ackAt, slack)) wrong.push(`id ${a.id} on server ${server} (sent ${a.sentAt}, acked ${a.ackAt})`);
    }
    if (wrong.length) v.push({ invariant: 'write-on-non-primary', detail: `${wrong.length} write(s) landed on a server that was not primary then: ${limit(wrong, 5)}` });
  }

  // 3. The writer endpoint only ever reached the primary of the moment (never a second writer).
  const bad = input.samples.filter((s) => !wasPrimaryDuring(input.epochs, s.serverId, s.sentAt, s.ackAt, slack)).map((s) => `server ${s.serverId} at ${s.ackAt}${s.readOnly ? ' (read_only)' : ' (writable)'}`);
  if (bad.length) v.push({ invariant: 'two-writers-behind-endpoint', detail: `the writer endpoint reached a non-primary ${bad.length} time(s): ${limit(bad, 5)}` });

  // 4. Converged data: the same checksum everywhere.
  const sums = new Set(input.final.map((n) => n.checksum));
  if (input.converged && sums.size > 1) v.push({ invariant: 'checksum-mismatch', detail: input.final.map((n) => `${n.name}=${n.checksum}`).join(', ') });
  return v;
}

/**
 * One writer's increments of its counter row (`UPDATE ... SET n = n + 1`): acknowledged (OK came
 * back), unknown (sent, no answer: it may or may not have committed). An increment that was never
 * sent, or whose transaction failed before its COMMIT was sent, is neither.
 */
export interface CounterTally {
  writer: number;
  acked: number;
  unknown: number;
}

/**
 * "No acknowledged write applied twice, none lost": on every node, each writer's counter ends
 * between its acknowledged increments and those plus the unknown ones. More is a duplicate (an
 * increment applied twice, e.g. replayed blindly), less a lost acknowledged write.
 */
export function checkCounters(tallies: CounterTally[], final: Pick<FinalNode, 'name' | 'counters'>[]): Violation[] {
  const twice: string[] = [];
  const lost: string[] = [];
  for (const node of final) {
    if (!node.counters) continue;
    for (const t of tallies) {
      const n = node.counters.get(t.writer) ?? 0;
      if (n > t.acked + t.unknown) twice.push(`${node.name} writer ${t.writer}: n=${n} > ${t.acked} acked + ${t.unknown} unknown`);
      else if (n < t.acked) lost.push(`${node.name} writer ${t.writer}: n=${n} < ${t.acked} acked`);
    }
  }
  const v: Violation[] = [];
  if (twice.length) v.push({ invariant: 'write-applied-twice', detail: `${twice.length} counter(s) above what was ever sent: ${limitList(twice, 5)}` });
  if (lost.length) v.push({ invariant: 'acknowledged-increment-lost', detail: `${lost.length} counter(s) below the acknowledged increments: ${limitList(lost, 5)}` });
  return v;
}

/**
 * A writer session's read-back, through the same endpoint session, right after an acknowledged
 * write: an autocommit SELECT of its counter and of the row it just inserted (the endpoint routes
 * it to a replica when one has applied the session's writes).
 */
export interface ReadBack {
  writer: number;
  at: number;
  /** Id of the row the session inserted just before. */
  id: number;
  /** The counter's lowest possible value: every acknowledged increment of this writer so far. */
  minExpected: number;
  /** Its highest: acknowledged plus unknown increments so far. */
  maxExpected: number;
  /** What the read saw (null: no counter row). */
  seen: number | null;
  /** Whether the inserted row was visible. */
  rowSeen: boolean;
  /** The server that answered the read, and the one that executed the insert (a replica read when they differ). */
  serverId: number;
  writeServerId: number | null;
}

/**
 * "No read missed the session's own earlier write": every read-back saw the row the session
 * inserted and a counter at least as high as the acknowledged increments. A counter above what was
 * ever sent is a duplicate seen by a reader.
 */
export function checkReadYourWrites(reads: ReadBack[]): Violation[] {
  const missed: string[] = [];
  const twice: string[] = [];
  for (const r of reads) {
    const where = `writer ${r.writer} at ${r.at} on server ${r.serverId}`;
    if (!r.rowSeen) missed.push(`${where}: row ${r.id} not visible`);
    else if (r.seen === null || r.seen < r.minExpected) missed.push(`${where}: counter ${r.seen ?? 'missing'} < ${r.minExpected} acked`);
    else if (r.seen > r.maxExpected) twice.push(`${where}: counter ${r.seen} > ${r.maxExpected} ever sent`);
  }
  const v: Violation[] = [];
  if (missed.length) v.push({ invariant: 'read-missed-own-write', detail: `${missed.length} read-back(s) missed the session's own write: ${limitList(missed, 5)}` });
  if (twice.length) v.push({ invariant: 'write-applied-twice', detail: `${twice.length} read-back(s) saw more increments than were sent: ${limitList(twice, 5)}` });
  return v;
}

function limitList(xs: string[], n: number): string {
  return xs.length > n ? `${xs.slice(0, n).join('; ')} … (${xs.length} in all)` : xs.join('; ');
}
