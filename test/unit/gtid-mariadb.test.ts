import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MariaGtidPosition, MysqlGtidSet, emptyGtid, parseGtid, type MariaGtid } from '../../src/gtid/index.ts';
import { GtidFlavorMismatch, GtidParseError } from '../../src/errors.ts';

const U64_MAX = 18446744073709551615n;
const p = (text: string) => MariaGtidPosition.parse(text);

function assertParseError(text: string, ...fragments: (string | RegExp)[]): void {
  assert.throws(
    () => p(text),
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

// --- parsing and formatting -------------------------------------------------

test('mariadb: parses a simple position and formats it sorted by domain', () => {
  const pos = p('1-2-5,0-1-100');
  assert.equal(pos.flavor, 'mariadb');
  assert.equal(pos.toString(), '0-1-100,1-2-5');
  assert.deepEqual(pos.domains(), [0, 1]);
  assert.deepEqual(pos.get(1), { domain: 1, server: 2, seq: 5n });
  assert.equal(pos.get(7), undefined);
  assert.deepEqual(
    pos.entries().map((e) => [e.domain, e.server, e.seq]),
    [
      [0, 1, 100n],
      [1, 2, 5n],
    ],
  );
  assert.equal(typeof pos.get(0)?.seq, 'bigint');
});

test('mariadb: empty and whitespace-only text is the empty position', () => {
  for (const text of ['', '   ', '\n', ' \r\n\t ']) {
    const pos = p(text);
    assert.ok(pos.isEmpty(), JSON.stringify(text));
    assert.equal(pos.toString(), '');
    assert.deepEqual(pos.domains(), []);
  }
  assert.ok(!p('0-1-1').isEmpty());
});

test('mariadb: whitespace and newlines around entries are tolerated', () => {
  const pos = p('  0-1-100,\n 1-2-5 ,\r\n\t10-3-7\n');
  assert.equal(pos.toString(), '0-1-100,1-2-5,10-3-7');
});

test('mariadb: leading zeros are normalised away', () => {
  assert.equal(p('00-01-0007').toString(), '0-1-7');
});

test('mariadb: 64-bit sequence numbers above 2^53 keep full precision', () => {
  const pos = p('0-1-18446744073709551615,1-4294967295-9007199254740993');
  assert.equal(pos.get(0)?.seq, U64_MAX);
  assert.equal(pos.get(1)?.seq, 9007199254740993n);
  assert.equal(pos.get(1)?.server, 4294967295);
  assert.equal(pos.toString(), '0-1-18446744073709551615,1-4294967295-9007199254740993');
  assert.equal(p('0-1-18446744073709551615').countMissingFrom(p('0-1-18446744073709551613')), 2n);
  assert.equal(p('0-1-18446744073709551615').countMissingFrom(p('')), U64_MAX);
  assert.equal(p('0-4294967295-1').get(0)?.server, 4294967295);
  assert.equal(p('4294967295-1-1').domains()[0], 4294967295);
});

test('mariadb: parse errors quote the input and say what was expected', () => {
  assertParseError('0-1', '"0-1"', 'domain-server-seq');
  assertParseError('0-1-2-3', 'domain-server-seq');
  assertParseError('a-1-2', 'domain-server-seq');
  assertParseError('0-1-', 'domain-server-seq');
  assertParseError('0-1--5', 'domain-server-seq');
  assertParseError('-1-1-5', 'domain-server-seq');
  assertParseError('0 - 1 - 5', 'domain-server-seq');
  assertParseError('0-1-+5', 'domain-server-seq');
  assertParseError('0-1-1.5', 'domain-server-seq');
  assertParseError('0-1-5,', 'empty entry');
  assertParseError(',0-1-5', 'empty entry');
  assertParseError('0-1-5,,1-1-1', 'empty entry');
  assertParseError('0-1-5,0-2-6', 'domain 0 appears twice', '"0-1-5"', '"0-2-6"');
  assertParseError('0-1-18446744073709551616', '18446744073709551616', 'unsigned 64-bit');
  assertParseError('4294967296-1-1', 'domain', 'unsigned 32-bit');
  assertParseError('0-4294967296-1', 'server id', 'unsigned 32-bit');
  // A MySQL set handed to the MariaDB parser must not be half-understood.
  assertParseError('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', 'domain-server-seq');
});

test('mariadb: error messages make stray control characters visible', () => {
  assert.throws(() => p('0-1-5\u0000'), (err: unknown) => err instanceof GtidParseError && err.message.includes('\\u0000'));
});

test('mariadb: fromEntries validates like parse', () => {
  assert.equal(
    MariaGtidPosition.fromEntries([
      { domain: 3, server: 1, seq: 9n },
      { domain: 0, server: 2, seq: 1n },
    ]).toString(),
    '0-2-1,3-1-9',
  );
  assert.throws(() => MariaGtidPosition.fromEntries([{ domain: -1, server: 1, seq: 1n }]), GtidParseError);
  assert.throws(() => MariaGtidPosition.fromEntries([{ domain: 1.5, server: 1, seq: 1n }]), GtidParseError);
  assert.throws(() => MariaGtidPosition.fromEntries([{ domain: 0, server: 2 ** 32, seq: 1n }]), GtidParseError);
  assert.throws(() => MariaGtidPosition.fromEntries([{ domain: 0, server: 1, seq: -1n }]), GtidParseError);
  assert.throws(() => MariaGtidPosition.fromEntries([{ domain: 0, server: 1, seq: U64_MAX + 1n }]), GtidParseError);
  assert.throws(
    () => MariaGtidPosition.fromEntries([{ domain: 0, server: 1, seq: 5 as unknown as bigint }]),
    GtidParseError,
  );
  assert.throws(
    () =>
      MariaGtidPosition.fromEntries([
        { domain: 0, server: 1, seq: 1n },
        { domain: 0, server: 1, seq: 2n },
      ]),
    /more than once/,
  );
});

test('mariadb: entries are immutable snapshots', () => {
  const source: MariaGtid[] = [{ domain: 0, server: 1, seq: 5n }];
  const pos = MariaGtidPosition.fromEntries(source);
  (source[0] as { seq: bigint }).seq = 99n;
  assert.equal(pos.get(0)?.seq, 5n);
  assert.throws(() => {
    (pos.entries() as MariaGtid[]).push({ domain: 1, server: 1, seq: 1n });
  }, TypeError);
  assert.equal(pos.toString(), '0-1-5');
});

// --- semantics ----------------------------------------------------------------

test('mariadb: contains follows strict-mode per-domain ordering', () => {
  assert.ok(p('0-1-100').contains(p('0-1-100')));
  assert.ok(p('0-1-100').contains(p('0-1-99')));
  assert.ok(p('0-2-100').contains(p('0-1-99')), 'higher seq implies all earlier ones whatever the server');
  assert.ok(!p('0-1-99').contains(p('0-1-100')));
  assert.ok(!p('0-2-100').contains(p('0-1-100')), 'same seq from different servers is a fork');
  assert.ok(!p('0-1-100').contains(p('0-2-100')));
  assert.ok(!p('0-1-100').contains(p('1-1-1')), 'missing domain');
  assert.ok(p('0-1-100,1-1-1').contains(p('1-1-1')));
  assert.ok(p('0-1-100').contains(p('')));
  assert.ok(p('').contains(p('')));
  assert.ok(!p('').contains(p('0-1-1')));
});

test('mariadb: subtract keeps the entries of domains not covered by the other side', () => {
  assert.equal(p('0-1-100,1-2-5').subtract(p('0-1-100')).toString(), '1-2-5');
  assert.equal(p('0-1-100,1-2-5').subtract(p('0-1-90,1-2-5')).toString(), '0-1-100');
  assert.equal(p('0-1-100,1-2-5').subtract(p('0-1-200,1-2-6')).toString(), '');
  assert.equal(p('0-2-100').subtract(p('0-1-100')).toString(), '0-2-100');
  assert.equal(p('0-1-100').subtract(p('')).toString(), '0-1-100');
  assert.ok(p('').subtract(p('0-1-1')).isEmpty());
  // errant = replica.subtract(primary): the replica wrote locally in domain 1.
  const primary = p('0-1-500');
  const replica = p('0-1-480,1-7-3');
  const errant = replica.subtract(primary);
  assert.ok(errant instanceof MariaGtidPosition);
  assert.equal(errant.toString(), '1-7-3');
});

test('mariadb: countMissingFrom counts per-domain seq gaps and divergence', () => {
  assert.equal(p('0-1-100,1-2-5').countMissingFrom(p('0-1-90')), 15n);
  assert.equal(p('0-1-90').countMissingFrom(p('0-1-100,1-2-5')), 0n);
  assert.equal(p('0-1-100,1-2-5').countMissingFrom(p('0-1-110,1-2-2')), 3n, 'negative differences do not cancel positive ones');
  assert.equal(p('0-2-100').countMissingFrom(p('0-1-100')), 1n);
  assert.equal(p('0-2-100,1-1-10').countMissingFrom(p('0-1-100,1-1-4')), 7n);
  assert.equal(p('0-1-100').countMissingFrom(p('0-1-100')), 0n);
  assert.equal(p('').countMissingFrom(p('0-1-100')), 0n);
});

test('mariadb: union takes the furthest entry per domain, this side on ties', () => {
  assert.equal(p('0-1-100,1-2-5').union(p('0-3-90,2-1-1')).toString(), '0-1-100,1-2-5,2-1-1');
  assert.equal(p('0-1-90').union(p('0-3-100')).toString(), '0-3-100');
  assert.equal(p('0-1-100').union(p('0-2-100')).toString(), '0-1-100');
  assert.equal(p('0-2-100').union(p('0-1-100')).toString(), '0-2-100');
  assert.equal(p('').union(p('')).toString(), '');
});

test('mariadb: diverged and compare', () => {
  assert.ok(p('0-1-100').diverged(p('0-2-100')));
  assert.ok(p('0-1-100,1-1-5').diverged(p('1-3-5')));
  assert.ok(!p('0-1-100').diverged(p('0-2-101')));
  assert.ok(!p('0-1-100').diverged(p('1-2-100')));
  assert.ok(!p('0-1-100').diverged(p('0-1-100')));

  assert.equal(p('0-1-100,1-2-5').compare(p('1-2-5,0-1-100')), 'equal');
  assert.equal(p('').compare(p('')), 'equal');
  assert.equal(p('0-1-100').compare(p('0-1-99')), 'ahead');
  assert.equal(p('0-1-100,1-1-1').compare(p('0-1-100')), 'ahead');
  assert.equal(p('0-1-100').compare(p('')), 'ahead');
  assert.equal(p('0-1-99').compare(p('0-1-100')), 'behind');
  assert.equal(p('').compare(p('0-1-1')), 'behind');
  assert.equal(p('0-1-100').compare(p('0-2-100')), 'diverged');
  assert.equal(p('0-1-100,1-1-5').compare(p('0-1-99,1-1-6')), 'diverged', 'ahead in one domain, behind in another');
  assert.equal(p('0-1-100').compare(p('1-1-1')), 'diverged', 'disjoint domains');
});

test('mariadb: equals compares domain, server and seq', () => {
  assert.ok(p('0-1-5,1-1-1').equals(p(' 1-1-1 ,0-1-5')));
  assert.ok(!p('0-1-5').equals(p('0-2-5')));
  assert.ok(!p('0-1-5').equals(p('0-1-6')));
  assert.ok(!p('0-1-5').equals(p('0-1-5,1-1-1')));
  assert.ok(!p('0-1-5').equals(p('1-1-5')));
  assert.ok(p('').equals(MariaGtidPosition.empty()));
});

test('mariadb: mixing flavors throws GtidFlavorMismatch', () => {
  const maria = p('0-1-5');
  const mysql = MysqlGtidSet.parse('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5');
  for (const op of [
    () => maria.contains(mysql),
    () => maria.equals(mysql),
    () => maria.subtract(mysql),
    () => maria.union(mysql),
    () => maria.countMissingFrom(mysql),
    () => maria.diverged(mysql),
    () => maria.compare(mysql),
    () => mysql.contains(maria),
  ]) {
    assert.throws(op, GtidFlavorMismatch);
  }
  assert.throws(() => maria.contains(MysqlGtidSet.empty()), /mariadb.*mysql/);
});

test('mariadb: parseGtid dispatches on flavor', () => {
  const s = parseGtid('mariadb', '1-1-1, 0-1-2');
  assert.ok(s instanceof MariaGtidPosition);
  assert.equal(s.toString(), '0-1-2,1-1-1');
  assert.ok(emptyGtid('mariadb').isEmpty());
  assert.equal(emptyGtid('mariadb').flavor, 'mariadb');
  assert.throws(() => parseGtid('mariadb', '0-1'), GtidParseError);
  assert.throws(() => parseGtid('postgres' as never, ''), /Unknown GTID flavor/);
});

// --- properties ---------------------------------------------------------------

// Few domains and servers and mostly tiny seqs so that equal domains, equal seqs
// and same-seq-different-server forks all occur often; a few huge seqs exercise BigInt.
const seqArb = fc.oneof(
  { arbitrary: fc.bigInt(0n, 6n), weight: 8 },
  { arbitrary: fc.bigInt(U64_MAX - 3n, U64_MAX), weight: 1 },
);
const gtidArb: fc.Arbitrary<MariaGtid> = fc.record({
  domain: fc.integer({ min: 0, max: 3 }),
  server: fc.integer({ min: 1, max: 3 }),
  seq: seqArb,
});
const posArb = fc
  .uniqueArray(gtidArb, { selector: (g) => g.domain, maxLength: 4 })
  .map((list) => MariaGtidPosition.fromEntries(list));

/** Derives a position that the given one must contain: drop domains, or move back in a domain. */
function containedBy(pos: MariaGtidPosition): fc.Arbitrary<MariaGtidPosition> {
  const choices = pos.entries().map((g) =>
    fc.oneof(
      fc.constant<MariaGtid | null>(null),
      fc.constant<MariaGtid | null>(g),
      g.seq > 0n
        ? fc
            .record({ server: fc.integer({ min: 1, max: 3 }), seq: fc.bigInt(0n, g.seq - 1n) })
            .map((r): MariaGtid | null => ({ domain: g.domain, ...r }))
        : fc.constant<MariaGtid | null>(g),
    ),
  );
  return fc.tuple(...choices).map((list) => MariaGtidPosition.fromEntries(list.filter((g): g is MariaGtid => g !== null)));
}

const ws = fc.constantFrom('', ' ', '\n', ' \r\n\t');

test('mariadb property: parse(toString(x)) round trips', () => {
  fc.assert(
    fc.property(posArb, (a) => {
      const back = p(a.toString());
      assert.ok(back.equals(a));
      assert.equal(back.toString(), a.toString());
    }),
  );
});

test('mariadb property: parse tolerates whitespace and entry order', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(gtidArb, { selector: (g) => g.domain, maxLength: 4 }),
      fc.array(fc.tuple(ws, ws), { minLength: 4, maxLength: 4 }),
      (list, pads) => {
        const text = list.map((g, i) => `${pads[i]![0]}${g.domain}-${g.server}-${g.seq}${pads[i]![1]}`).join(',');
        const parsed = p(text);
        assert.ok(parsed.equals(MariaGtidPosition.fromEntries(list)));
        const domains = parsed.domains();
        assert.deepEqual(domains, [...domains].sort((x, y) => x - y));
        for (const g of list) assert.deepEqual(parsed.get(g.domain), { ...g });
      },
    ),
  );
});

test('mariadb property: contains is reflexive', () => {
  fc.assert(fc.property(posArb, (a) => a.contains(a) && a.equals(a) && a.compare(a) === 'equal'));
});

test('mariadb property: derived sub-positions are contained, and containment is transitive', () => {
  const chain = posArb.chain((a) => containedBy(a).chain((b) => containedBy(b).map((c) => [a, b, c] as const)));
  fc.assert(
    fc.property(chain, ([a, b, c]) => {
      assert.ok(a.contains(b), `${a} should contain ${b}`);
      assert.ok(b.contains(c), `${b} should contain ${c}`);
      assert.ok(a.contains(c), `${a} should contain ${c}`);
      assert.equal(b.countMissingFrom(a), 0n);
      assert.notEqual(a.compare(b), 'behind');
      assert.notEqual(a.compare(b), 'diverged');
    }),
  );
  // Also on unrelated triples, where the premise holds only sometimes.
  fc.assert(
    fc.property(posArb, posArb, posArb, (a, b, c) => !(a.contains(b) && b.contains(c)) || a.contains(c)),
  );
});

test('mariadb property: union contains both sides unless they diverged', () => {
  fc.assert(
    fc.property(posArb, posArb, (a, b) => {
      const u = a.union(b);
      assert.ok(u.contains(a), `${u} should contain ${a}`);
      if (a.diverged(b)) {
        // No single entry can cover a fork; the union keeps this side's branch.
        assert.ok(!u.contains(b));
        assert.ok(u.diverged(b));
      } else {
        assert.ok(u.contains(b), `${u} should contain ${b}`);
        assert.ok(u.equals(b.union(a)), 'union is commutative without forks');
      }
      assert.deepEqual(u.domains(), [...new Set([...a.domains(), ...b.domains()])].sort((x, y) => x - y));
    }),
  );
});

test('mariadb property: subtract is empty exactly when the other side contains this', () => {
  fc.assert(
    fc.property(posArb, posArb, (a, b) => {
      const d = a.subtract(b);
      assert.equal(d.isEmpty(), b.contains(a));
      // Every remaining entry is one of a's own entries, and b covers everything that was removed.
      for (const g of d.entries()) assert.deepEqual(a.get(g.domain), g);
      assert.ok(b.contains(a.subtract(d)), 'the removed part is covered by b');
      assert.ok(a.contains(d));
    }),
  );
});

/**
 * countMissingFrom by its definition, domain by domain: the seq difference where this side is
 * ahead, one where the domain forked at the same seq (at least one transaction, the exact number is
 * unknowable from positions), nothing where the other side covers it.
 */
function missingByDefinition(a: MariaGtidPosition, b: MariaGtidPosition): bigint {
  let n = 0n;
  for (const g of a.entries()) {
    const o = b.get(g.domain);
    if (o && o.seq === g.seq && o.server !== g.server) n += 1n;
    else if (g.seq > (o?.seq ?? 0n)) n += g.seq - (o?.seq ?? 0n);
  }
  return n;
}

const missingCases: { a: string; b: string; expect: bigint; why: string }[] = [
  { a: '0-1-10', b: '0-1-7', expect: 3n, why: 'ahead in one domain by the seq difference' },
  { a: '0-1-10', b: '', expect: 10n, why: 'against nothing, every transaction of the domain' },
  { a: '0-1-10,1-2-5', b: '0-1-10', expect: 5n, why: 'a whole domain the other lacks' },
  { a: '0-1-10', b: '0-2-10', expect: 1n, why: 'forked at the same seq: at least one' },
  { a: '0-1-10', b: '0-1-12', expect: 0n, why: 'behind: nothing missing' },
  { a: '0-1-0', b: '', expect: 0n, why: 'a seq-0 entry carries no transaction' },
  { a: '0-1-10,1-1-3,2-3-9', b: '0-2-8,1-1-3,2-3-4', expect: 7n, why: 'summed over domains (2 + 0 + 5)' },
];

for (const c of missingCases) {
  test(`mariadb: countMissingFrom(${c.a || '(empty)'} from ${c.b || '(empty)'}) is ${c.expect}: ${c.why}`, () => {
    assert.equal(p(c.a).countMissingFrom(p(c.b)), c.expect);
    assert.equal(missingByDefinition(p(c.a), p(c.b)), c.expect);
  });
}

test('mariadb property: countMissingFrom is zero against itself and against anything containing it', () => {
  fc.assert(
    fc.property(posArb, posArb, (a, b) => {
      assert.equal(a.countMissingFrom(a), 0n);
      assert.equal(a.countMissingFrom(a.union(b)) === 0n, true);
      // Positive exactly when something is missing, except for seq-0 entries which carry no transactions.
      const missing = a.countMissingFrom(b);
      assert.equal(missing, missingByDefinition(a, b));
      if (missing > 0n) assert.ok(!b.contains(a));
      if (!b.contains(a) && a.entries().every((g) => g.seq > 0n)) assert.ok(missing > 0n);
    }),
  );
});

test('mariadb property: compare agrees with contains and is antisymmetric', () => {
  const opposite = { equal: 'equal', ahead: 'behind', behind: 'ahead', diverged: 'diverged' } as const;
  fc.assert(
    fc.property(posArb, posArb, (a, b) => {
      const c = a.compare(b);
      assert.equal(b.compare(a), opposite[c]);
      assert.equal(c === 'equal', a.equals(b));
      assert.equal(c === 'equal' || c === 'ahead', a.contains(b));
      if (a.diverged(b)) assert.equal(c, 'diverged');
    }),
  );
});

test('withoutOrigin drops the entries written by one server', () => {
  const p = MariaGtidPosition.parse('0-1-10,1-2-5,2-1-3');
  assert.equal(p.withoutOrigin('1').toString(), '1-2-5');
  assert.equal(p.withoutOrigin('9').toString(), '0-1-10,1-2-5,2-1-3');
  assert.ok(p.withoutOrigin('2').withoutOrigin('1').isEmpty());
});
