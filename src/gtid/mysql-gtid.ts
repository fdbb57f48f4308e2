import { assertSameFlavor, quoteForError, type GtidFlavor, type GtidState } from './gtid-state.ts';
import { GtidParseError } from '../errors.ts';

/** Closed interval of transaction numbers [start, end] for one source uuid. */
export interface GtidInterval {
  readonly start: bigint;
  readonly end: bigint;
}

export type MysqlComparison = 'equal' | 'ahead' | 'behind' | 'diverged';

type Intervals = readonly GtidInterval[];

// MySQL stores transaction numbers as signed 64-bit and never hands out more.
const GNO_MAX = (1n << 63n) - 1n;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INTERVAL_RE = /^(\d+)(?:\s*-\s*(\d+))?$/;
const TAG_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Sorts and merges overlapping or adjacent intervals so that equal sets have identical representations. */
function normalise(list: readonly GtidInterval[]): GtidInterval[] {
  const sorted = [...list].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: GtidInterval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last && iv.start <= last.end + 1n) {
      if (iv.end > last.end) out[out.length - 1] = { start: last.start, end: iv.end };
    } else {
      out.push({ start: iv.start, end: iv.end });
    }
  }
  return out;
}

// The helpers below all take normalised lists (sorted, disjoint, non-adjacent),
// which is what lets them work in a single merge-like pass.

function subtractIntervals(a: Intervals, b: Intervals): GtidInterval[] {
  const out: GtidInterval[] = [];
  let j = 0;
  for (const iv of a) {
    while (j < b.length && b[j]!.end < iv.start) j++;
    let cur = iv.start;
    // b[k] may also overlap the next interval of `a`, so scan with k and leave j in place.
    for (let k = j; k < b.length && b[k]!.start <= iv.end; k++) {
      const cut = b[k]!;
      if (cut.start > cur) out.push({ start: cur, end: cut.start - 1n });
      cur = cut.end + 1n;
      if (cur > iv.end) break;
    }
    if (cur <= iv.end) out.push({ start: cur, end: iv.end });
  }
  return out;
}

function intersectIntervals(a: Intervals, b: Intervals): GtidInterval[] {
  const out: GtidInterval[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const start = x.start > y.start ? x.start : y.start;
    const end = x.end < y.end ? x.end : y.end;
    if (start <= end) out.push({ start, end });
    if (x.end < y.end) i++;
    else j++;
  }
  return out;
}

function containsIntervals(outer: Intervals, inner: Intervals): boolean {
  let j = 0;
  for (const iv of inner) {
    while (j < outer.length && outer[j]!.end < iv.start) j++;
    const candidate = outer[j];
    // Because `outer` is merged, a contained interval must fit inside a single one of its intervals.
    if (!candidate || candidate.start > iv.start || candidate.end < iv.end) return false;
  }
  return true;
}

function countIntervals(list: Intervals): bigint {
  let n = 0n;
  for (const iv of list) n += iv.end - iv.start + 1n;
  return n;
}

function formatInterval(iv: GtidInterval): string {
  return iv.start === iv.end ? `${iv.start}` : `${iv.start}-${iv.end}`;
}

/**
 * A MySQL GTID set (gtid_executed, gtid_purged, Retrieved_Gtid_Set, ...).
 * Immutable; intervals are always kept normalised.
 */
export class MysqlGtidSet implements GtidState {
  readonly flavor: GtidFlavor = 'mysql';
  /** uuid (lower case) → normalised, non-empty interval list; keys kept in ascending order. */
  readonly #sets: ReadonlyMap<string, Intervals>;
  #text: string | undefined;

  static readonly #EMPTY = new MysqlGtidSet(new Map());

  private constructor(sets: Map<string, Intervals>) {
    const sorted = [...sets.entries()]
      .filter(([, list]) => list.length > 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([uuid, list]) => [uuid, Object.freeze(list.map((iv) => Object.freeze({ ...iv })))] as const);
    this.#sets = new Map(sorted);
  }

  static empty(): MysqlGtidSet {
    return MysqlGtidSet.#EMPTY;
  }

  /**
   * Parses the server's text form. The same uuid may appear more than once
   * (MySQL accepts and merges that), intervals may be unsorted or overlapping;
   * the result is normalised either way.
   */
  static parse(text: string): MysqlGtidSet {
    if (typeof text !== 'string') {
      throw new GtidParseError(`Invalid MySQL GTID set ${quoteForError(String(text))}: expected a string`, String(text));
    }
    if (text.trim() === '') return MysqlGtidSet.#EMPTY;

    const where = `Invalid MySQL GTID set ${quoteForError(text)}`;
    const collected = new Map<string, GtidInterval[]>();
    for (const raw of text.split(',')) {
      const entry = raw.trim();
      if (entry === '') {
        throw new GtidParseError(
          `${where}: empty entry (stray comma); expected a comma-separated list of uuid:interval[:interval...], e.g. "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"`,
          text,
        );
      }
      const parts = entry.split(':').map((p) => p.trim());
      const uuidText = parts[0] ?? '';
      if (!UUID_RE.test(uuidText)) {
        throw new GtidParseError(
          `${where}: ${quoteForError(uuidText)} in entry ${quoteForError(entry)} is not a server uuid; expected 8-4-4-4-12 hexadecimal digits, e.g. "3e11fa47-71ca-11e1-9e33-c80aa9429562"`,
          text,
        );
      }
      if (parts.length < 2) {
        throw new GtidParseError(
          `${where}: entry ${quoteForError(entry)} has no transaction intervals; expected uuid:start-end or uuid:n`,
          text,
        );
      }
      const uuid = uuidText.toLowerCase();
      let list = collected.get(uuid);
      if (!list) collected.set(uuid, (list = []));
      for (const part of parts.slice(1)) {
        list.push(parseInterval(part, entry, where, text));
      }
    }
    return MysqlGtidSet.#fromRaw(collected);
  }

  /** Builds a set from structured intervals (e.g. from another tool), validated like parse. */
  static fromIntervals(sets: Iterable<readonly [uuid: string, intervals: readonly GtidInterval[]]>): MysqlGtidSet {
    const collected = new Map<string, GtidInterval[]>();
    for (const [uuidText, intervals] of sets) {
      if (typeof uuidText !== 'string' || !UUID_RE.test(uuidText)) {
        throw new GtidParseError(
          `Invalid MySQL GTID uuid ${quoteForError(String(uuidText))}: expected 8-4-4-4-12 hexadecimal digits`,
          String(uuidText),
        );
      }
      const uuid = uuidText.toLowerCase();
      let list = collected.get(uuid);
      if (!list) collected.set(uuid, (list = []));
      for (const iv of intervals) {
        const shown = `${uuid}:${String(iv.start)}-${String(iv.end)}`;
        if (typeof iv.start !== 'bigint' || typeof iv.end !== 'bigint') {
          throw new GtidParseError(`Invalid MySQL GTID interval ${quoteForError(shown)}: bounds must be bigints`, shown);
        }
        checkBounds(iv.start, iv.end, `Invalid MySQL GTID interval ${quoteForError(shown)}`, shown);
        list.push({ start: iv.start, end: iv.end });
      }
    }
    return MysqlGtidSet.#fromRaw(collected);
  }

  static #fromRaw(collected: Map<string, GtidInterval[]>): MysqlGtidSet {
    const sets = new Map<string, Intervals>();
    for (const [uuid, list] of collected) sets.set(uuid, normalise(list));
    return MysqlGtidSet.#of(sets);
  }

  static #of(sets: Map<string, Intervals>): MysqlGtidSet {
    for (const list of sets.values()) if (list.length > 0) return new MysqlGtidSet(sets);
    return MysqlGtidSet.#EMPTY;
  }

  /** Source uuids present in the set, ascending, lower case. */
  withoutOrigin(origin: string): MysqlGtidSet {
    const uuid = origin.toLowerCase();
    return MysqlGtidSet.fromIntervals(this.uuids().filter((u) => u !== uuid).map((u) => [u, this.intervals(u)] as const));
  }

  uuids(): string[] {
    return [...this.#sets.keys()];
  }

  /** Normalised intervals of one uuid (case-insensitive); empty when the uuid is absent. */
  intervals(uuid: string): readonly GtidInterval[] {
    return this.#sets.get(uuid.toLowerCase()) ?? [];
  }

  size(): bigint {
    let n = 0n;
    for (const list of this.#sets.values()) n += countIntervals(list);
    return n;
  }

  isEmpty(): boolean {
    return this.#sets.size === 0;
  }

  contains(other: GtidState): boolean {
    const o = MysqlGtidSet.#coerce(this, other);
    for (const [uuid, theirs] of o.#sets) {
      if (!containsIntervals(this.#sets.get(uuid) ?? [], theirs)) return false;
    }
    return true;
  }

  equals(other: GtidState): boolean {
    const o = MysqlGtidSet.#coerce(this, other);
    if (o.#sets.size !== this.#sets.size) return false;
    for (const [uuid, mine] of this.#sets) {
      const theirs = o.#sets.get(uuid);
      if (!theirs || theirs.length !== mine.length) return false;
      for (let i = 0; i < mine.length; i++) {
        if (mine[i]!.start !== theirs[i]!.start || mine[i]!.end !== theirs[i]!.end) return false;
      }
    }
    return true;
  }

  subtract(other: GtidState): MysqlGtidSet {
    const o = MysqlGtidSet.#coerce(this, other);
    const out = new Map<string, Intervals>();
    for (const [uuid, mine] of this.#sets) {
      const theirs = o.#sets.get(uuid);
      out.set(uuid, theirs ? subtractIntervals(mine, theirs) : mine);
    }
    return MysqlGtidSet.#of(out);
  }

  union(other: GtidState): MysqlGtidSet {
    const o = MysqlGtidSet.#coerce(this, other);
    const out = new Map<string, Intervals>(this.#sets);
    for (const [uuid, theirs] of o.#sets) {
      const mine = out.get(uuid);
      out.set(uuid, mine ? normalise([...mine, ...theirs]) : theirs);
    }
    return MysqlGtidSet.#of(out);
  }

  intersect(other: GtidState): MysqlGtidSet {
    const o = MysqlGtidSet.#coerce(this, other);
    const out = new Map<string, Intervals>();
    for (const [uuid, mine] of this.#sets) {
      const theirs = o.#sets.get(uuid);
      if (theirs) out.set(uuid, intersectIntervals(mine, theirs));
    }
    return MysqlGtidSet.#of(out);
  }

  countMissingFrom(other: GtidState): bigint {
    return this.subtract(other).size();
  }

  /** Same vocabulary as MariaGtidPosition.compare: 'diverged' means each side has transactions the other lacks. */
  compare(other: GtidState): MysqlComparison {
    const o = MysqlGtidSet.#coerce(this, other);
    const mineCovers = this.contains(o);
    const theirsCovers = o.contains(this);
    if (mineCovers && theirsCovers) return 'equal';
    if (mineCovers) return 'ahead';
    if (theirsCovers) return 'behind';
    return 'diverged';
  }

  /**
   * Canonical compact form. The server itself separates uuids with ",\n" in
   * gtid_executed; the newline is dropped here so values stay on one log line,
   * and parse accepts both.
   */
  toString(): string {
    this.#text ??= [...this.#sets]
      .map(([uuid, list]) => `${uuid}:${list.map(formatInterval).join(':')}`)
      .join(',');
    return this.#text;
  }

  static #coerce(self: MysqlGtidSet, other: GtidState): MysqlGtidSet {
    assertSameFlavor(self, other);
    // A foreign implementation of the mysql flavor is accepted through its canonical text.
    return other instanceof MysqlGtidSet ? other : MysqlGtidSet.parse(other.toString());
  }
}

function parseInterval(part: string, entry: string, where: string, text: string): GtidInterval {
  if (TAG_RE.test(part)) {
    throw new GtidParseError(
      `${where}: entry ${quoteForError(entry)} uses tag ${quoteForError(part)}; tagged GTIDs (MySQL 8.4 uuid:tag:n) are not supported, expected uuid:start-end intervals only`,
      text,
    );
  }
  const m = INTERVAL_RE.exec(part);
  if (!m) {
    throw new GtidParseError(
      `${where}: interval ${quoteForError(part)} in entry ${quoteForError(entry)} is malformed; expected a positive integer n or a range start-end`,
      text,
    );
  }
  const start = BigInt(m[1]!);
  const end = m[2] === undefined ? start : BigInt(m[2]);
  checkBounds(start, end, `${where}: interval ${quoteForError(part)} in entry ${quoteForError(entry)}`, text);
  return { start, end };
}

function checkBounds(start: bigint, end: bigint, where: string, input: string): void {
  if (start < 1n) {
    throw new GtidParseError(`${where} starts at ${start}; expected transaction numbers of at least 1`, input);
  }
  if (end > GNO_MAX) {
    throw new GtidParseError(`${where} ends at ${end}; expected transaction numbers of at most ${GNO_MAX} (signed 64-bit)`, input);
  }
  if (start > end) {
    throw new GtidParseError(`${where} has start ${start} greater than end ${end}; expected start <= end`, input);
  }
}
