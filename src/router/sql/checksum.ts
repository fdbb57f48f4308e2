import { createHash, type Hash } from 'node:crypto';

/**
 * A running checksum of one command's result as the client received it, to compare with the same
 * statement's result when a transaction is replayed on another server (transaction replay).
 *
 * What is hashed is what the client could have acted on: column definitions and rows byte for
 * byte, OK packets as affected rows, insert id and warnings, EOF packets as their warning count,
 * errors as their code. Left out, because they differ between servers or connections without the
 * result being different: sequence ids (packet headers), status flags (in transaction, last row
 * sent...), session-state tracking (the GTID of a commit) and the human-readable info of an OK.
 * Packets are delimited by their length so that two results cannot collide by re-cutting bytes.
 */
export class ResultChecksum {
  #h: Hash = createHash('sha1');

  /** Start of a data packet (column count, definition, row) of `len` bytes; its bytes follow. */
  packet(len: number): void {
    this.#h.update(`D${len}:`);
  }

  /** Bytes of the current data packet (all of it, or a piece of a large one). */
  bytes(b: Buffer): void {
    this.#h.update(b);
  }

  ok(affectedRows: number | bigint, insertId: number | bigint, warnings: number): void {
    this.#h.update(`O${affectedRows}/${insertId}/${warnings};`);
  }

  eof(warnings: number): void {
    this.#h.update(`E${warnings};`);
  }

  err(code: number): void {
    this.#h.update(`X${code};`);
  }

  digest(): string {
    return this.#h.digest('hex');
  }
}
