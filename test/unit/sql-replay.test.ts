import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGtid } from '../../src/gtid/index.ts';
import { ResultChecksum } from '../../src/router/sql/checksum.ts';
import { commitOutcome, type CommitEvidence } from '../../src/router/sql/commit-outcome.ts';
import { frame } from '../../src/router/sql/packets.ts';
import { eofPayload, errPayload, okPacket, STATUS } from '../../src/router/sql/protocol.ts';
import { ReplayLog, unsafeCall, type ReplaySettings } from '../../src/router/sql/replay-log.ts';
import { ResponseRelay } from '../../src/router/sql/response.ts';

/** A text result set: column count, definitions, EOF, rows, EOF (with the given status and warnings). */
function resultSet(rows: string[], opts: { status?: number; warnings?: number; seq?: number; colName?: string } = {}): Buffer {
  let seq = opts.seq ?? 1;
  const col = Buffer.from(`\x03def\x03app\x01t\x01t\x01${opts.colName ?? 'v'}\x01v\x0c\x21\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00`, 'latin1');
  const parts = [frame(Buffer.from([1]), seq++), frame(col, seq++), frame(eofPayload(STATUS.AUTOCOMMIT), seq++)];
  for (const r of rows) parts.push(frame(Buffer.concat([Buffer.from([r.length]), Buffer.from(r)]), seq++));
  const eof = eofPayload(opts.status ?? STATUS.AUTOCOMMIT);
  if (opts.warnings) eof.writeUInt16LE(opts.warnings, 1);
  parts.push(frame(eof, seq++));
  return Buffer.concat(parts);
}

function ok(opts: { affectedRows?: number; insertId?: number; status?: number; seq?: number; info?: string }): Buffer {
  const p = okPacket(opts.seq ?? 1, opts.status ?? STATUS.AUTOCOMMIT, opts);
  if (!opts.info) return p;
  const payload = Buffer.concat([p.subarray(4), Buffer.from([opts.info.length]), Buffer.from(opts.info)]);
  return frame(payload, opts.seq ?? 1);
}

/** The checksum of a response fed in chunks of `chunk` bytes (packets split anywhere). */
function sum(response: Buffer, chunk = response.length): string {
  const c = new ResultChecksum();
  const relay = new ResponseRelay('result', { clientSessionTrack: true, checksum: c });
  for (let i = 0; i < response.length; i += chunk) relay.feed(response.subarray(i, i + chunk), []);
  assert.ok(relay.done, 'the response ended');
  return c.digest();
}

test('result checksum: what the client could act on counts, per-connection details do not', () => {
  const base = resultSet(['a', 'bb']);
  const cases: { name: string; other: Buffer; same: boolean }[] = [
    { name: 'same rows, other sequence ids', other: resultSet(['a', 'bb'], { seq: 7 }), same: true },
    { name: 'same rows, other status flags (in transaction)', other: resultSet(['a', 'bb'], { status: STATUS.AUTOCOMMIT | STATUS.IN_TRANS }), same: true },
    { name: 'a row differs', other: resultSet(['a', 'bc']), same: false },
    { name: 'a row missing', other: resultSet(['a']), same: false },
    { name: 'rows in another order', other: resultSet(['bb', 'a']), same: false },
    { name: 'other column name', other: resultSet(['a', 'bb'], { colName: 'w' }), same: false },
    { name: 'warnings differ', other: resultSet(['a', 'bb'], { warnings: 1 }), same: false },
    { name: 'an OK instead', other: ok({ affectedRows: 2 }), same: false },
  ];
  for (const c of cases) assert.equal(sum(base) === sum(c.other), c.same, c.name);
  // However the bytes arrive.
  for (const chunk of [1, 3, 7, 64]) assert.equal(sum(base, chunk), sum(base), `chunks of ${chunk}`);
});

test('result checksum: OK packets compare affected rows, insert id and warnings, not status or info', () => {
  const base = ok({ affectedRows: 1, insertId: 5 });
  const cases: { name: string; other: Buffer; same: boolean }[] = [
    { name: 'other status flags', other: ok({ affectedRows: 1, insertId: 5, status: STATUS.IN_TRANS }), same: true },
    { name: 'other info text', other: ok({ affectedRows: 1, insertId: 5, info: 'Rows matched: 1' }), same: true },
    { name: 'other sequence id', other: ok({ affectedRows: 1, insertId: 5, seq: 3 }), same: true },
    { name: 'other affected rows', other: ok({ affectedRows: 0, insertId: 5 }), same: false },
    { name: 'other insert id', other: ok({ affectedRows: 1, insertId: 6 }), same: false },
    { name: 'an error', other: frame(errPayload({ code: 1062, state: '23000' }, 'Duplicate entry'), 1), same: false },
  ];
  for (const c of cases) assert.equal(sum(base) === sum(c.other), c.same, c.name);
  const e1 = frame(errPayload({ code: 1062, state: '23000' }, "Duplicate entry '1'"), 1);
  const e2 = frame(errPayload({ code: 1062, state: '23000' }, "Duplicate entry '2'"), 1);
  assert.equal(sum(e1), sum(e2), 'errors compare by code');
});

const settings: ReplaySettings = { enabled: true, maxBytes: 100, maxStatements: 3, unsafeFunctions: ['RAND', 'UUID', 'NOW'] };
const stmt = (sql: string) => ({ raw: frame(Buffer.concat([Buffer.from([3]), Buffer.from(sql)]), 0), sql, checksum: 'x' });

test('replay log: limits and unsafe functions make a transaction unreplayable, with the reason', () => {
  const cases: { name: string; s?: Partial<ReplaySettings>; sqls: string[]; refused?: RegExp }[] = [
    { name: 'within the limits', sqls: ['INSERT INTO t VALUES (1)', 'SELECT 1'] },
    { name: 'too many statements', sqls: ['SELECT 1', 'SELECT 2', 'SELECT 3', 'SELECT 4'], refused: /more than 3 statements/ },
    { name: 'too many bytes', sqls: ['SELECT ' + 'x'.repeat(60), 'SELECT ' + 'y'.repeat(60)], refused: /exceed 100 bytes/ },
    { name: 'RAND()', sqls: ['SELECT RAND()'], refused: /called RAND\(\)/ },
    { name: 'uuid ( ) with a space, lower case', sqls: ['INSERT INTO t VALUES (uuid ( ))'], refused: /called UUID\(\)/ },
    { name: 'a column named now_at is not NOW()', sqls: ['UPDATE t SET now_at = 1'] },
    { name: 'a function ending in rand is not RAND()', sqls: ['SELECT brand(1)'] },
    { name: 'replay off', s: { enabled: false }, sqls: ['SELECT 1'], refused: /replay is off/ },
  ];
  for (const c of cases) {
    const log = new ReplayLog({ ...settings, ...c.s });
    for (const sql of c.sqls) if (log.admits(sql)) log.add(stmt(sql));
    if (c.refused) {
      assert.match(log.refused ?? '', c.refused, c.name);
      assert.equal(log.statements.length, 0, `${c.name}: memory released`);
    } else {
      assert.equal(log.refused, undefined, c.name);
      assert.equal(log.statements.length, c.sqls.length, c.name);
    }
  }
  assert.equal(unsafeCall('SELECT `rand`(1)', ['RAND']), undefined);
  assert.equal(unsafeCall('select 1', []), undefined);
});

test('commit outcome: decided from evidence, never guessed', () => {
  const g = (t: string) => parseGtid('mariadb', t);
  const cases: { name: string; e: CommitEvidence; outcome: string }[] = [
    { name: 'never sent', e: { sent: false, oldPrimaryGone: true }, outcome: 'retry' },
    { name: 'connection reset with the command unread', e: { sent: true, unread: true, oldPrimaryGone: true }, outcome: 'retry' },
    { name: 'refused by read_only', e: { sent: true, refused: true, oldPrimaryGone: false }, outcome: 'retry' },
    { name: 'sent, GTID unknown', e: { sent: true, oldPrimaryGone: true, newPrimaryExecuted: g('0-1-10') }, outcome: 'unknown' },
    { name: 'GTID on the new primary', e: { sent: true, gtid: g('0-1-9'), newPrimaryExecuted: g('0-1-10'), oldPrimaryGone: true }, outcome: 'committed' },
    { name: 'GTID not on the new primary, old one fenced', e: { sent: true, gtid: g('0-1-11'), newPrimaryExecuted: g('0-1-10'), oldPrimaryGone: true }, outcome: 'not-committed' },
    { name: 'GTID not on the new primary, old one maybe alive', e: { sent: true, gtid: g('0-1-11'), newPrimaryExecuted: g('0-1-10'), oldPrimaryGone: false }, outcome: 'unknown' },
    { name: 'new primary position unknown', e: { sent: true, gtid: g('0-1-11'), oldPrimaryGone: true }, outcome: 'unknown' },
  ];
  for (const c of cases) assert.equal(commitOutcome(c.e).outcome, c.outcome, c.name);
});
