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
}

export interface Violation {
  invariant:
    | 'acknowledged-write-lost'
    | 'write-on-non-primary'
    | 'two-writers-behind-endpoint'
    | 'no-convergence'
    | 'checksum-mismatch'
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
