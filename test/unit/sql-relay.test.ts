import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frame } from '../../src/router/sql/packets.ts';
import { eofPayload, errPayload, STATUS } from '../../src/router/sql/protocol.ts';
import { ResponseRelay } from '../../src/router/sql/response.ts';

/**
 * The response relay as a backend's bytes arrive in arbitrary chunks: the client gets exactly the
 * backend's bytes, the end of the response is found wherever the chunks cut it, and rows stream
 * through as they come instead of being held back until whole (a large result is never copied).
 */

/** A text result set: `cols` column definitions, rows of the given sizes (first column length-encoded), EOF with `status`. */
function resultSet(cols: number, rowSizes: number[], status: number, firstSeq = 1): Buffer {
  let seq = firstSeq;
  const parts = [frame(Buffer.from([cols]), seq++)];
  for (let i = 0; i < cols; i++) parts.push(frame(Buffer.alloc(40, 0x63), seq++));
  parts.push(frame(eofPayload(STATUS.AUTOCOMMIT), seq++));
  for (const size of rowSizes) {
    // A 2-byte length-encoded string (0xfc) when long, as the server writes it.
    const head = size < 251 ? Buffer.from([size]) : Buffer.from([0xfc, size & 0xff, size >> 8]);
    parts.push(frame(Buffer.concat([head, Buffer.alloc(size, 0x72)]), seq++ & 0xff));
  }
  parts.push(frame(eofPayload(status), seq & 0xff));
  return Buffer.concat(parts);
}

function feedInChunks(relay: ResponseRelay, raw: Buffer, cuts: number[]): { out: Buffer; sentAfterEach: number[] } {
  const out: Buffer[] = [];
  const sentAfterEach: number[] = [];
  let at = 0;
  for (const cut of [...cuts, raw.length]) {
    relay.feed(raw.subarray(at, cut), out);
    at = cut;
    sentAfterEach.push(out.reduce((a, b) => a + b.length, 0));
  }
  return { out: Buffer.concat(out), sentAfterEach };
}

test('relay: a result set cut at every byte offset comes out unchanged and ends where it ends', () => {
  const raw = resultSet(2, [3, 20, 300, 0, 9, 8], STATUS.AUTOCOMMIT);
  for (let cut = 1; cut < raw.length; cut++) {
    const relay = new ResponseRelay('result', { clientSessionTrack: true });
    const { out } = feedInChunks(relay, raw, [cut]);
    assert.ok(relay.done, `not done when cut at ${cut}`);
    assert.deepEqual(out, raw, `bytes changed when cut at ${cut}`);
    assert.equal(relay.summary.results, 1);
    assert.equal(relay.summary.status, STATUS.AUTOCOMMIT);
  }
});

test('relay: small chunks of a large result stream through at once (nothing held back but a header)', () => {
  const raw = resultSet(1, Array.from({ length: 200 }, () => 700), STATUS.AUTOCOMMIT);
  const cuts: number[] = [];
  for (let at = 1000; at < raw.length; at += 1000) cuts.push(at);
  const relay = new ResponseRelay('result', { clientSessionTrack: true });
  const { out, sentAfterEach } = feedInChunks(relay, raw, cuts);
  assert.deepEqual(out, raw);
  assert.ok(relay.done);
  // Every chunk but the first (column definitions) goes out in the same call, but for at most a
  // packet header and first byte that straddle its end.
  cuts.forEach((cut, i) => {
    if (i === 0) return;
    assert.ok(sentAfterEach[i]! >= cut - 5, `after ${cut} bytes in, only ${sentAfterEach[i]} out`);
  });
});

test('relay: several result sets (MORE_RESULTS) then an error in the middle of rows, cut anywhere', () => {
  const first = resultSet(1, [10, 10], STATUS.AUTOCOMMIT | STATUS.MORE_RESULTS_EXISTS);
  const err = frame(errPayload({ code: 1317, state: '70100' }, 'Query execution was interrupted'), 9);
  const second = Buffer.concat([resultSet(1, [12, 400, 12], STATUS.AUTOCOMMIT).subarray(0, -9), err]);
  const raw = Buffer.concat([first, second]);
  for (let cut = 1; cut < raw.length; cut += 7) {
    const relay = new ResponseRelay('result', { clientSessionTrack: true });
    const { out } = feedInChunks(relay, raw, [cut, Math.min(raw.length, cut + 13)]);
    assert.ok(relay.done, `not done when cut at ${cut}`);
    assert.deepEqual(out, raw);
    assert.equal(relay.summary.error?.code, 1317, `the error was not read when cut at ${cut}`);
    assert.equal(relay.summary.results, 1, 'the first result set counted, the interrupted one not');
  }
});
