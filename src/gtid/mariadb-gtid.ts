import { assertSameFlavor, quoteForError, type GtidFlavor, type GtidState } from './gtid-state.ts';
import { GtidParseError } from '../errors.ts';

export interface MariaGtid {
  readonly domain: number;
  readonly server: number;
  readonly seq: bigint;
}

export type MariaComparison = 'equal' | 'ahead' | 'behind' | 'diverged';

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;
const ENTRY_RE = /^(\d+)-(\d+)-(\d+)$/;

function formatGtid(g: MariaGtid): string {
  return `${g.domain}-${g.server}-${g.seq}`;
}

/**
 * Whether entry `a` covers entry `b` of the same domain. Under gtid_strict_mode
 * sequence numbers only grow inside a domain, so a higher seq implies every
 * earlier transaction; an equal seq is the same transaction only if the same
 * server wrote it, otherwise the two histories forked at that point.
 */
function entryCovers(a: MariaGtid, b: MariaGtid): boolean {
  return a.seq > b.seq || (a.seq === b.seq && a.server === b.server);
}

function isDivergentPair(a: MariaGtid, b: MariaGtid): boolean {
  return a.seq === b.seq && a.server !== b.server;
}

/**
 * A MariaDB replication position: the last GTID applied in each replication
 * domain. Immutable; every operation returns a new position.
 */
export class MariaGtidPosition implements GtidState {
  readonly flavor: GtidFlavor = 'mariadb';
  readonly #byDomain: ReadonlyMap<number, MariaGtid>;
  readonly #sorted: readonly MariaGtid[];
  #text: string | undefined;

  static readonly #EMPTY = new MariaGtidPosition([]);

  private constructor(sorted: readonly MariaGtid[]) {
    this.#sorted = Object.freeze(sorted);
    this.#byDomain = new Map(sorted.map((g) => [g.domain, g]));
  }

  static empty(): MariaGtidPosition {
    return MariaGtidPosition.#EMPTY;
  }

  /**
   * Parses gtid_binlog_pos / gtid_slave_pos / gtid_current_pos / Gtid_IO_Pos.
   * Whitespace around entries is accepted because servers and clients wrap
   * long values; anything else malformed is rejected rather than guessed at,
   * since a misread position could promote the wrong replica.
   */
  static parse(text: string): MariaGtidPosition {
    if (typeof text !== 'string') {
      throw new GtidParseError(
        `Invalid MariaDB GTID position ${quoteForError(String(text))}: expected a string`,
        String(text),
      );
    }
    if (text.trim() === '') return MariaGtidPosition.#EMPTY;

    const entries: MariaGtid[] = [];
    const seen = new Map<number, string>();
    for (const raw of text.split(',')) {
      const part = raw.trim();
      const where = `Invalid MariaDB GTID position ${quoteForError(text)}`;
      if (part === '') {
        throw new GtidParseError(
          `${where}: empty entry (stray comma); expected a comma-separated list of domain-server-seq, e.g. "0-1-100,1-2-5"`,
          text,
        );
      }
      const m = ENTRY_RE.exec(part);
      if (!m) {
        throw new GtidParseError(
          `${where}: entry ${quoteForError(part)} is not domain-server-seq with unsigned decimal numbers (e.g. "0-1-100")`,
          text,
        );
      }
      const [, d, s, q] = m as unknown as [string, string, string, string];
      const domain = parseU32(d, 'domain', part, where, text);
      const server = parseU32(s, 'server id', part, where, text);
      const seq = BigInt(q);
      if (seq > U64_MAX) {
        throw new GtidParseError(
          `${where}: entry ${quoteForError(part)} has sequence number ${q}, expected at most ${U64_MAX} (unsigned 64-bit)`,
          text,
        );
      }
      const previous = seen.get(domain);
      if (previous !== undefined) {
        throw new GtidParseError(
          `${where}: domain ${domain} appears twice (${quoteForError(previous)} and ${quoteForError(part)}); expected at most one entry per domain`,
          text,
        );
      }
      seen.set(domain, part);
      entries.push(Object.freeze({ domain, server, seq }));
    }
    return MariaGtidPosition.#fromValidated(entries);
  }

  /** Builds a position from structured values (e.g. rows of mysql.gtid_slave_pos), with the same validation as parse. */
  static fromEntries(entries: Iterable<MariaGtid>): MariaGtidPosition {
    const list: MariaGtid[] = [];
    const seen = new Set<number>();
    for (const g of entries) {
      const shown = `${String(g.domain)}-${String(g.server)}-${String(g.seq)}`;
      const where = `Invalid MariaDB GTID ${quoteForError(shown)}`;
      if (!isU32(g.domain)) {
        throw new GtidParseError(`${where}: domain must be an integer in 0..${U32_MAX}`, shown);
      }
      if (!isU32(g.server)) {
        throw new GtidParseError(`${where}: server id must be an integer in 0..${U32_MAX}`, shown);
      }
      if (typeof g.seq !== 'bigint' || g.seq < 0n || g.seq > U64_MAX) {
        throw new GtidParseError(`${where}: seq must be a bigint in 0..${U64_MAX}`, shown);
      }
      if (seen.has(g.domain)) {
        throw new GtidParseError(`${where}: domain ${g.domain} given more than once; expected at most one entry per domain`, shown);
      }
      seen.add(g.domain);
      list.push(Object.freeze({ domain: g.domain, server: g.server, seq: g.seq }));
    }
    return MariaGtidPosition.#fromValidated(list);
  }

  static #fromValidated(entries: MariaGtid[]): MariaGtidPosition {
    if (entries.length === 0) return MariaGtidPosition.#EMPTY;
    entries.sort((a, b) => a.domain - b.domain);
    return new MariaGtidPosition(entries);
  }

  get(domain: number): MariaGtid | undefined {
    return this.#byDomain.get(domain);
  }

  domains(): number[] {
    return this.#sorted.map((g) => g.domain);
  }

  entries(): readonly MariaGtid[] {
    return this.#sorted;
  }

  isEmpty(): boolean {
    return this.#sorted.length === 0;
  }

  contains(other: GtidState): boolean {
    const o = MariaGtidPosition.#coerce(this, other);
    for (const theirs of o.#sorted) {
      const mine = this.#byDomain.get(theirs.domain);
      if (!mine || !entryCovers(mine, theirs)) return false;
    }
    return true;
  }

  equals(other: GtidState): boolean {
    const o = MariaGtidPosition.#coerce(this, other);
    if (o.#sorted.length !== this.#sorted.length) return false;
    return this.#sorted.every((mine, i) => {
      const theirs = o.#sorted[i];
      return theirs !== undefined && mine.domain === theirs.domain && mine.server === theirs.server && mine.seq === theirs.seq;
    });
  }

  subtract(other: GtidState): MariaGtidPosition {
    const o = MariaGtidPosition.#coerce(this, other);
    const kept = this.#sorted.filter((mine) => {
      const theirs = o.#byDomain.get(mine.domain);
      return !theirs || !entryCovers(theirs, mine);
    });
    return kept.length === this.#sorted.length ? this : MariaGtidPosition.#fromValidated(kept);
  }

  withoutOrigin(origin: string): MariaGtidPosition {
    const kept = this.#sorted.filter((g) => String(g.server) !== origin);
    return kept.length === this.#sorted.length ? this : MariaGtidPosition.#fromValidated(kept);
  }

  /**
   * Per domain the furthest entry. On a divergent domain (same seq, different
   * server) no single entry covers both sides; this position's entry is kept,
   * so the result does not contain `other` there — check diverged() first
   * when that matters.
   */
  union(other: GtidState): MariaGtidPosition {
    const o = MariaGtidPosition.#coerce(this, other);
    const merged = new Map(this.#byDomain);
    for (const theirs of o.#sorted) {
      const mine = merged.get(theirs.domain);
      if (!mine || theirs.seq > mine.seq) merged.set(theirs.domain, theirs);
    }
    return MariaGtidPosition.#fromValidated([...merged.values()]);
  }

  countMissingFrom(other: GtidState): bigint {
    const o = MariaGtidPosition.#coerce(this, other);
    let total = 0n;
    for (const mine of this.#sorted) {
      const theirs = o.#byDomain.get(mine.domain);
      if (theirs && isDivergentPair(mine, theirs)) {
        // The exact number of forked transactions is unknowable from positions
        // alone, but there is at least one, and reporting 0 would look "caught up".
        total += 1n;
        continue;
      }
      const diff = mine.seq - (theirs?.seq ?? 0n);
      if (diff > 0n) total += diff;
    }
    return total;
  }

  /** true when some domain has the same seq written by different servers, i.e. the histories forked. */
  diverged(other: GtidState): boolean {
    const o = MariaGtidPosition.#coerce(this, other);
    for (const mine of this.#sorted) {
      const theirs = o.#byDomain.get(mine.domain);
      if (theirs && isDivergentPair(mine, theirs)) return true;
    }
    return false;
  }

  compare(other: GtidState): MariaComparison {
    const o = MariaGtidPosition.#coerce(this, other);
    const mineCovers = this.contains(o);
    const theirsCovers = o.contains(this);
    if (mineCovers && theirsCovers) return 'equal';
    if (mineCovers) return 'ahead';
    if (theirsCovers) return 'behind';
    return 'diverged';
  }

  toString(): string {
    this.#text ??= this.#sorted.map(formatGtid).join(',');
    return this.#text;
  }

  static #coerce(self: MariaGtidPosition, other: GtidState): MariaGtidPosition {
    assertSameFlavor(self, other);
    // A foreign implementation of the mariadb flavor is accepted through its canonical text.
    return other instanceof MariaGtidPosition ? other : MariaGtidPosition.parse(other.toString());
  }
}

function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= U32_MAX;
}

function parseU32(digits: string, what: string, part: string, where: string, text: string): number {
  // Compare as BigInt so that absurdly long digit strings cannot lose precision before the range check.
  const value = BigInt(digits);
  if (value > BigInt(U32_MAX)) {
    throw new GtidParseError(
      `${where}: entry ${quoteForError(part)} has ${what} ${digits}, expected at most ${U32_MAX} (unsigned 32-bit)`,
      text,
    );
  }
  return Number(value);
}

