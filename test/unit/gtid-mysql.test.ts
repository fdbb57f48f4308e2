import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MariaGtidPosition, MysqlGtidSet, emptyGtid, parseGtid, type GtidInterval } from '../../src/gtid/index.ts';
import { GtidFlavorMismatch, GtidParseError } from '../../src/errors.ts';

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = '8a94f357-aab4-11df-86ab-c80aa9429562';
const C = 'd3b8c2e0-0000-4000-8000-000000000003';
const GNO_MAX = 9223372036854775807n;
const s = (text: string) => MysqlGtidSet.parse(text);

function assertParseError(text: string, ...fragments: (string | RegExp)[]): void {
  assert.throws(
    () => s(text),
    (err: unknown) => {
      assert.ok(err instanceof GtidParseError, `expected GtidParseError, got ${String(err)}`);
      assert.ok(err.message.includes(JSON.stringify(text)), `message should quote the input: ${err.message}`);
      for (const f of fragments) {
        if (typeof f === 'string') assert.ok(err.message.includes(f), `message should mention ${f}: ${err.message}`);
        else assert.match(err.message, f);
      }
      assert.equal(err.input, text);
      return true;
    },
  );
}

const iv = (start: bigint, end: bigint = start): GtidInterval => ({ start, end });

// --- parsing and formatting -------------------------------------------------

test('mysql: parses and formats a gtid_executed value', () => {
  const set = s(`${B}:1-100,\n${A}:1-5:7-9`);
  assert.equal(set.flavor, 'mysql');
  assert.equal(set.toString(), `${A}:1-5:7-9,${B}:1-100`);
  assert.deepEqual(set.uuids(), [A, B]);
  assert.deepEqual(set.intervals(A), [iv(1n, 5n), iv(7n, 9n)]);
  assert.deepEqual(set.intervals(C), []);
  assert.equal(set.size(), 108n);
});

test('mysql: empty and whitespace-only text is the empty set', () => {
  for (const text of ['', ' ', '\n', '\r\n\t ']) {
    const set = s(text);
    assert.ok(set.isEmpty(), JSON.stringify(text));
    assert.equal(set.toString(), '');
    assert.equal(set.size(), 0n);
    assert.deepEqual(set.uuids(), []);
  }
  assert.ok(!s(`${A}:1`).isEmpty());
});

test('mysql: intervals are sorted, merged when overlapping or adjacent, singletons printed bare', () => {
  assert.equal(s(`${A}:1-3:4-6`).toString(), `${A}:1-6`);
  assert.equal(s(`${A}:7-7`).toString(), `${A}:7`);
  assert.equal(s(`${A}:10-12:1-2:5`).toString(), `${A}:1-2:5:10-12`);
  assert.equal(s(`${A}:1-10:3-4:9-15`).toString(), `${A}:1-15`);
  assert.equal(s(`${A}:1:3`).toString(), `${A}:1:3`, 'a gap of one is not adjacent');
  assert.equal(s(`${A}:1:2:3`).toString(), `${A}:1-3`);
  assert.equal(s(`${A}:5,${A}:1-4`).toString(), `${A}:1-5`, 'repeated uuid entries merge');
  assert.equal(s(`${A}:1-3,${B}:2,${A}:9`).toString(), `${A}:1-3:9,${B}:2`);
});

test('mysql: uuids are case-insensitive and normalised to lower case', () => {
  const set = s(`${A.toUpperCase()}:1-3,${A}:4`);
  assert.equal(set.toString(), `${A}:1-4`);
  assert.deepEqual(set.intervals(A.toUpperCase()), [iv(1n, 4n)]);
  assert.ok(set.equals(s(`${A}:1-4`)));
});

test('mysql: whitespace after commas and around tokens is tolerated', () => {
  assert.equal(s(`  ${A}:1-5,\n  ${B}:3 ,\r\n${C}:1-2\n`).toString(), `${A}:1-5,${B}:3,${C}:1-2`);
  assert.equal(s(`${A} : 1 - 5 : 7`).toString(), `${A}:1-5:7`);
});

test('mysql: transaction numbers above 2^53 keep full precision', () => {
  const set = s(`${A}:9007199254740993-9223372036854775807`);
  assert.deepEqual(set.intervals(A), [iv(9007199254740993n, GNO_MAX)]);
  assert.equal(set.size(), GNO_MAX - 9007199254740993n + 1n);
  assert.equal(set.toString(), `${A}:9007199254740993-9223372036854775807`);
  assert.equal(s(`${A}:1-${GNO_MAX}`).size(), GNO_MAX);
  assert.equal(s(`${A}:1-${GNO_MAX}`).countMissingFrom(s(`${A}:2-${GNO_MAX}`)), 1n);
  assert.equal(s(`${A}:9007199254740992:9007199254740993`).toString(), `${A}:9007199254740992-9007199254740993`);
  assert.equal(s(`${A}:9007199254740992:9007199254740994`).toString(), `${A}:9007199254740992:9007199254740994`);
});

test('mysql: parse errors quote the input and say what was expected', () => {
  assertParseError(`${A}`, 'no transaction intervals');
  assertParseError(`${A}:`, 'malformed', 'positive integer');
  assertParseError(`${A}:1-`, 'malformed');
  assertParseError(`${A}:-5`, 'malformed');
  assertParseError(`${A}:1-2-3`, 'malformed');
  assertParseError(`${A}::5`, 'malformed');
  assertParseError(`${A}:1.5`, 'malformed');
  assertParseError(`${A}:0`, 'at least 1');
  assertParseError(`${A}:0-5`, 'at least 1');
  assertParseError(`${A}:5-3`, 'start 5 greater than end 3');
  assertParseError(`${A}:1-18446744073709551615`, '18446744073709551615', String(GNO_MAX));
  assertParseError(`${A}:9223372036854775808`, String(GNO_MAX));
  assertParseError(`${A}:1,`, 'empty entry');
  assertParseError(`${A}:1,,${B}:1`, 'empty entry');
  assertParseError('3e11fa47-71ca-11e1-9e33-c80aa942956:1', 'not a server uuid', '8-4-4-4-12');
  assertParseError('3e11fa47-71ca-11e1-9e33-c80aa942956g:1', 'not a server uuid');
  assertParseError('0-1-100', 'not a server uuid');
  assertParseError(`${A}:tag1:1-5`, 'tagged GTIDs', 'not supported', '"tag1"');
  assertParseError(`${A}:1-5:_t:6`, 'tagged GTIDs');
});

test('mysql: fromIntervals validates and normalises', () => {
  const set = MysqlGtidSet.fromIntervals([
    [B.toUpperCase(), [iv(5n, 6n), iv(1n, 4n)]],
    [A, [iv(3n)]],
    [C, []],
  ]);
  assert.equal(set.toString(), `${A}:3,${B}:1-6`);
  assert.throws(() => MysqlGtidSet.fromIntervals([['nope', [iv(1n)]]]), GtidParseError);
  assert.throws(() => MysqlGtidSet.fromIntervals([[A, [iv(0n, 1n)]]]), /at least 1/);
  assert.throws(() => MysqlGtidSet.fromIntervals([[A, [iv(3n, 2n)]]]), /start 3 greater than end 2/);
  assert.throws(() => MysqlGtidSet.fromIntervals([[A, [iv(1n, GNO_MAX + 1n)]]]), GtidParseError);
  assert.throws(() => MysqlGtidSet.fromIntervals([[A, [{ start: 1, end: 2 } as unknown as GtidInterval]]]), /bigints/);
  assert.ok(MysqlGtidSet.fromIntervals([[A, []]]).isEmpty());
});

test('mysql: returned intervals cannot be used to mutate the set', () => {
  const set = s(`${A}:1-5`);
  assert.throws(() => {
    (set.intervals(A) as GtidInterval[]).push(iv(9n));
  }, TypeError);
  assert.throws(() => {
    (set.intervals(A)[0] as { end: bigint }).end = 100n;
  }, TypeError);
  assert.equal(set.toString(), `${A}:1-5`);
});

// --- semantics ----------------------------------------------------------------

test('mysql: contains', () => {
  assert.ok(s(`${A}:1-10`).contains(s(`${A}:3-5:7`)));
  assert.ok(s(`${A}:1-10,${B}:1`).contains(s(`${A}:1-10`)));
  assert.ok(!s(`${A}:1-10`).contains(s(`${A}:1-11`)));
  assert.ok(!s(`${A}:1-5:7-10`).contains(s(`${A}:5-7`)), 'a hole in the middle');
  assert.ok(!s(`${A}:1-5:7-10`).contains(s(`${A}:6`)));
  assert.ok(s(`${A}:1-5:7-10`).contains(s(`${A}:1:5:7:10`)));
  assert.ok(!s(`${A}:1-10`).contains(s(`${B}:1`)));
  assert.ok(s(`${A}:1`).contains(s('')));
  assert.ok(!s('').contains(s(`${A}:1`)));
});

test('mysql: subtract is a true set difference', () => {
  assert.equal(s(`${A}:1-10`).subtract(s(`${A}:3-4:8`)).toString(), `${A}:1-2:5-7:9-10`);
  assert.equal(s(`${A}:1-10,${B}:1-3`).subtract(s(`${A}:1-10`)).toString(), `${B}:1-3`);
  assert.equal(s(`${A}:1-3:5-7:9-11`).subtract(s(`${A}:2-10`)).toString(), `${A}:1:11`);
  assert.equal(s(`${A}:5-6`).subtract(s(`${A}:1-3:8-9`)).toString(), `${A}:5-6`);
  assert.equal(s(`${A}:1-10`).subtract(s(`${A}:1-10`)).toString(), '');
  assert.equal(s(`${A}:1-10`).subtract(s(`${B}:1-10`)).toString(), `${A}:1-10`);
  // errant = replica.subtract(primary)
  const primary = s(`${A}:1-1000`);
  const replica = s(`${A}:1-990,${B}:1-2`);
  const errant = replica.subtract(primary);
  assert.ok(errant instanceof MysqlGtidSet);
  assert.equal(errant.toString(), `${B}:1-2`);
  assert.equal(primary.countMissingFrom(replica), 10n);
  assert.equal(replica.countMissingFrom(primary), 2n);
});

test('mysql: union and intersect', () => {
  assert.equal(s(`${A}:1-3,${B}:5`).union(s(`${A}:4-6:9,${C}:1`)).toString(), `${A}:1-6:9,${B}:5,${C}:1`);
  assert.equal(s(`${A}:1-5:8-12`).intersect(s(`${A}:3-9:12-20,${B}:1`)).toString(), `${A}:3-5:8-9:12`);
  assert.equal(s(`${A}:1-5`).intersect(s(`${B}:1-5`)).toString(), '');
  assert.equal(s('').union(s('')).toString(), '');
});

test('mysql: compare and equals', () => {
  assert.equal(s(`${A}:1-5`).compare(s(`${A}:1-3:4-5`)), 'equal');
  assert.equal(s(`${A}:1-5`).compare(s(`${A}:1-4`)), 'ahead');
  assert.equal(s(`${A}:1-4`).compare(s(`${A}:1-5`)), 'behind');
  assert.equal(s(`${A}:1-5,${B}:1`).compare(s(`${A}:1-6`)), 'diverged');
  assert.ok(s(`${A}:1-5`).equals(s(`${A.toUpperCase()}:5:1-4`)));
  assert.ok(!s(`${A}:1-5`).equals(s(`${A}:1-6`)));
  assert.ok(!s(`${A}:1-5`).equals(s(`${A}:1-2:4-5`)));
  assert.ok(!s(`${A}:1-5`).equals(s(`${B}:1-5`)));
  assert.ok(!s(`${A}:1-5`).equals(s(`${A}:1-5,${B}:1`)));
});

test('mysql: mixing flavors throws GtidFlavorMismatch', () => {
  const mysql = s(`${A}:1`);
  const maria = MariaGtidPosition.parse('0-1-1');
  for (const op of [
    () => mysql.contains(maria),
    () => mysql.equals(maria),
    () => mysql.subtract(maria),
    () => mysql.union(maria),
    () => mysql.intersect(maria),
    () => mysql.countMissingFrom(maria),
    () => mysql.compare(maria),
  ]) {
    assert.throws(op, GtidFlavorMismatch);
  }
});

test('mysql: parseGtid dispatches on flavor', () => {
  const set = parseGtid('mysql', `${B}:1, ${A}:2`);
  assert.ok(set instanceof MysqlGtidSet);
  assert.equal(set.toString(), `${A}:2,${B}:1`);
  assert.ok(emptyGtid('mysql').isEmpty());
  assert.equal(emptyGtid('mysql').flavor, 'mysql');
  assert.throws(() => parseGtid('mysql', '0-1-1'), GtidParseError);
});

// --- properties ---------------------------------------------------------------

// Three uuids and small numbers so that entries for the same uuid overlap,
// touch and nest often; a rare interval near the 63-bit ceiling exercises BigInt.
const UUIDS = [A, B, C] as const;
type Raw = { uuid: string; start: bigint; end: bigint };

const smallRawArb: fc.Arbitrary<Raw> = fc
  .record({ uuid: fc.constantFrom(...UUIDS), start: fc.bigInt(1n, 20n), len: fc.bigInt(0n, 5n) })
  .map(({ uuid, start, len }) => ({ uuid, start, end: start + len }));
const bigRawArb: fc.Arbitrary<Raw> = fc
  .record({ uuid: fc.constantFrom(...UUIDS), start: fc.bigInt(GNO_MAX - 6n, GNO_MAX), len: fc.bigInt(0n, 6n) })
  .map(({ uuid, start, len }) => ({ uuid, start, end: start + len > GNO_MAX ? GNO_MAX : start + len }));
const rawArb = fc.oneof({ arbitrary: smallRawArb, weight: 9 }, { arbitrary: bigRawArb, weight: 1 });

function build(raws: readonly Raw[]): MysqlGtidSet {
  return MysqlGtidSet.fromIntervals(raws.map((r) => [r.uuid, [{ start: r.start, end: r.end }]] as const));
}

const setArb = fc.array(rawArb, { maxLength: 6 }).map(build);
const smallSetArb = fc.array(smallRawArb, { maxLength: 6 });

/** Reference model: the explicit set of "uuid:n" transactions (only for small numbers). */
function model(raws: readonly Raw[]): Set<string> {
  const out = new Set<string>();
  for (const r of raws) for (let n = r.start; n <= r.end; n++) out.add(`${r.uuid}:${n}`);
  return out;
}
function modelOf(set: MysqlGtidSet): Set<string> {
  const out = new Set<string>();
  for (const uuid of set.uuids()) for (const i of set.intervals(uuid)) for (let n = i.start; n <= i.end; n++) out.add(`${uuid}:${n}`);
  return out;
}
const sorted = (x: Set<string>) => [...x].sort();

test('mysql property: parse(toString(x)) round trips', () => {
  fc.assert(
    fc.property(setArb, (a) => {
      const back = s(a.toString());
      assert.ok(back.equals(a));
      assert.equal(back.toString(), a.toString());
      assert.equal(back.size(), a.size());
    }),
  );
});

test('mysql property: parsing unnormalised text with whitespace and mixed case gives the normalised set', () => {
  const entryArb = fc.record({
    raw: smallRawArb,
    upper: fc.boolean(),
    pad: fc.constantFrom('', ' ', '\n', ' \r\n\t'),
  });
  fc.assert(
    fc.property(fc.array(entryArb, { minLength: 1, maxLength: 6 }), (entries) => {
      const text = entries
        .map(({ raw, upper, pad }) => {
          const uuid = upper ? raw.uuid.toUpperCase() : raw.uuid;
          const range = raw.start === raw.end && raw.start % 2n === 0n ? `${raw.start}` : `${raw.start}-${raw.end}`;
          return `${pad}${uuid}:${range}`;
        })
        .join(',');
      const parsed = s(text);
      const raws = entries.map((e) => e.raw);
      assert.ok(parsed.equals(build(raws)));
      assert.deepEqual(sorted(modelOf(parsed)), sorted(model(raws)));
      assert.equal(parsed.size(), BigInt(model(raws).size));
      // Normal form: sorted uuids, sorted disjoint non-adjacent intervals, bare singletons.
      assert.deepEqual(parsed.uuids(), [...parsed.uuids()].sort());
      for (const uuid of parsed.uuids()) {
        const list = parsed.intervals(uuid);
        list.forEach((i, k) => {
          assert.ok(i.start <= i.end);
          const prev = list[k - 1];
          if (prev) assert.ok(prev.end + 1n < i.start, `${parsed} is not merged`);
        });
      }
      for (const token of parsed.toString().split(',').flatMap((e) => e.split(':').slice(1))) {
        assert.doesNotMatch(token, /^(\d+)-\1$/, 'singletons are printed bare');
      }
      assert.doesNotMatch(parsed.toString(), /[A-F\s]/);
    }),
  );
});

test('mysql property: set operations agree with an explicit reference model', () => {
  fc.assert(
    fc.property(smallSetArb, smallSetArb, (ra, rb) => {
      const a = build(ra);
      const b = build(rb);
      const ma = model(ra);
      const mb = model(rb);
      const diff = new Set([...ma].filter((x) => !mb.has(x)));
      const inter = new Set([...ma].filter((x) => mb.has(x)));
      const uni = new Set([...ma, ...mb]);
      assert.deepEqual(sorted(modelOf(a.subtract(b))), sorted(diff));
      assert.deepEqual(sorted(modelOf(a.intersect(b))), sorted(inter));
      assert.deepEqual(sorted(modelOf(a.union(b))), sorted(uni));
      assert.equal(a.contains(b), [...mb].every((x) => ma.has(x)));
      assert.equal(a.equals(b), ma.size === mb.size && [...ma].every((x) => mb.has(x)));
      assert.equal(a.countMissingFrom(b), BigInt(diff.size));
      assert.equal(a.size(), BigInt(ma.size));
    }),
  );
});

test('mysql property: contains is reflexive and transitive', () => {
  fc.assert(fc.property(setArb, (a) => a.contains(a) && a.equals(a) && a.compare(a) === 'equal'));
  // Build chains a ⊇ b ⊇ c by removing random sets, so the premise always holds.
  fc.assert(
    fc.property(setArb, setArb, setArb, (a, r1, r2) => {
      const b = a.subtract(r1);
      const c = b.subtract(r2);
      assert.ok(a.contains(b));
      assert.ok(b.contains(c));
      assert.ok(a.contains(c));
    }),
  );
  fc.assert(fc.property(setArb, setArb, setArb, (a, b, c) => !(a.contains(b) && b.contains(c)) || a.contains(c)));
});

test('mysql property: union contains both sides and is the smallest such set', () => {
  fc.assert(
    fc.property(setArb, setArb, (a, b) => {
      const u = a.union(b);
      assert.ok(u.contains(a));
      assert.ok(u.contains(b));
      assert.ok(u.equals(b.union(a)));
      assert.equal(u.size(), a.size() + b.size() - a.intersect(b).size());
    }),
  );
});

test('mysql property: subtract is empty exactly when the other side contains this', () => {
  fc.assert(
    fc.property(setArb, setArb, (a, b) => {
      assert.equal(a.subtract(b).isEmpty(), b.contains(a));
      assert.equal(a.subtract(b).intersect(b).isEmpty(), true);
    }),
  );
});

test('mysql property: a.subtract(b) ∪ (a ∩ b) = a, and sizes add up', () => {
  fc.assert(
    fc.property(setArb, setArb, (a, b) => {
      const d = a.subtract(b);
      const i = a.intersect(b);
      assert.ok(d.union(i).equals(a), `${d} ∪ ${i} should be ${a}`);
      assert.equal(d.size(), a.countMissingFrom(b));
      assert.equal(d.size() + i.size(), a.size());
    }),
  );
});

test('mysql property: countMissingFrom(x, x) is zero and compare agrees with contains', () => {
  const opposite = { equal: 'equal', ahead: 'behind', behind: 'ahead', diverged: 'diverged' } as const;
  fc.assert(
    fc.property(setArb, setArb, (a, b) => {
      assert.equal(a.countMissingFrom(a), 0n);
      const c = a.compare(b);
      assert.equal(b.compare(a), opposite[c]);
      assert.equal(c === 'equal' || c === 'ahead', a.contains(b));
      assert.equal(a.countMissingFrom(b) === 0n, b.contains(a));
    }),
  );
});

test('withoutOrigin drops one server uuid, case-insensitively', () => {
  const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
  const b = '4e11fa47-71ca-11e1-9e33-c80aa9429562';
  const s = MysqlGtidSet.parse(`${a}:1-5,${b}:1-3:7`);
  assert.equal(s.withoutOrigin(a.toUpperCase()).toString(), `${b}:1-3:7`);
  assert.equal(s.withoutOrigin(b).size(), 5n);
});
