import type { GtidState } from '../../gtid/index.ts';

/**
 * What is known about a COMMIT (or an autocommit write) whose answer never came because the
 * primary connection was lost. Never guessed: replaying a write that did commit applies it twice,
 * and reporting success for one that did not loses it.
 */
export interface CommitEvidence {
  /** The command reached the server (written to the socket of a live connection). */
  sent: boolean;
  /** The server answered with an error that proves nothing was committed (read_only, 1290). */
  refused?: boolean;
  /** The connection was reset with the command unread by the server (BackendFailed.detail.unread). */
  unread?: boolean;
  /** The GTID the commit got, when known (it comes with the OK that was lost: almost never). */
  gtid?: GtidState;
  /** The new primary's executed GTID set, read after the failover. */
  newPrimaryExecuted?: GtidState;
  /** The old primary is fenced or dead: whatever it did not replicate is not in the new history. */
  oldPrimaryGone: boolean;
}

export type CommitOutcome =
  /** Nothing reached a server, or the server refused it: run it again (with the transaction replayed). */
  | { outcome: 'retry'; why: string }
  /** It committed (its GTID is on the new primary): the client gets OK. */
  | { outcome: 'committed'; why: string }
  /** It did not commit in the history that goes on: safe to replay. */
  | { outcome: 'not-committed'; why: string }
  /** Cannot be proven either way: an error for that one statement. */
  | { outcome: 'unknown'; why: string };

export function commitOutcome(e: CommitEvidence): CommitOutcome {
  if (!e.sent) return { outcome: 'retry', why: 'the command never reached the old primary' };
  if (e.unread) return { outcome: 'retry', why: 'the old primary never read it (the connection was reset with the command unread)' };
  if (e.refused) return { outcome: 'retry', why: 'the old primary refused it (read_only), so it did not commit' };
  if (!e.gtid || e.gtid.isEmpty()) return { outcome: 'unknown', why: 'the old primary was lost before it answered, and the GTID of the commit is unknown' };
  if (!e.newPrimaryExecuted) return { outcome: 'unknown', why: "the new primary's GTID position is unknown" };
  let contained: boolean;
  try {
    contained = e.newPrimaryExecuted.contains(e.gtid);
  } catch {
    return { outcome: 'unknown', why: 'the GTIDs cannot be compared' };
  }
  if (contained) return { outcome: 'committed', why: `its GTID ${e.gtid.toString()} is on the new primary` };
  if (!e.oldPrimaryGone) return { outcome: 'unknown', why: `its GTID ${e.gtid.toString()} is not on the new primary yet, and the old primary may still be running` };
  return { outcome: 'not-committed', why: `its GTID ${e.gtid.toString()} is not on the new primary and the old primary is fenced` };
}
