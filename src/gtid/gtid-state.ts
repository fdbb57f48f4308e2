// Flavor-independent view of "which transactions has a server applied".
// Failover logic (ranking candidates, detecting errant transactions, measuring
// lag in transactions) is written against this interface so it never needs to
// know whether it is looking at a MariaDB position or a MySQL GTID set.

export type GtidFlavor = 'mariadb' | 'mysql';

export interface GtidState {
  readonly flavor: GtidFlavor;
  isEmpty(): boolean;
  /** true when every transaction of `other` is also in this state. Throws GtidFlavorMismatch if flavors differ. */
  contains(other: GtidState): boolean;
  equals(other: GtidState): boolean;
  /** What this state has that `other` lacks (errant = replica.subtract(primary)). Same flavor as this. */
  subtract(other: GtidState): GtidState;
  /** Smallest state containing both. */
  union(other: GtidState): GtidState;
  /** Number of transactions this state has that `other` lacks (for "N transactions behind" and ranking). */
  countMissingFrom(other: GtidState): bigint;
  /**
   * This state without the transactions written by one server (MariaDB: the server_id in the
   * GTID; MySQL: the server_uuid). Used to tell a primary's own newest commits, seen by a replica
   * probed a moment later, from transactions that never came from that primary.
   */
  withoutOrigin(origin: string): GtidState;
  /** Canonical text form, as the server prints it (sorted, normalised). */
  toString(): string;
}

import { GtidFlavorMismatch } from '../errors.ts';


/** Quotes user/server supplied text for an error message; JSON escaping makes stray newlines and tabs visible. */
export function quoteForError(text: string, max = 200): string {
  const shown = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(shown);
}

export function assertSameFlavor(self: GtidState, other: GtidState): void {
  if (self.flavor !== other.flavor) throw new GtidFlavorMismatch(self.flavor, other.flavor);
}
