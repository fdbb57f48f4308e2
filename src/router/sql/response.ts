import type { ResultChecksum } from './checksum.ts';
import { HEADER, MAX_FRAME, readLength, writeHeader } from './packets.ts';
import { parseErr, parseOk, STATUS, stripSessionTrack, type ErrInfo, type SessionTrack } from './protocol.ts';

/** What a command's response looks like, which decides where it ends. */
export type Expect =
  /** COM_QUERY / COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request, or result sets (several with MORE_RESULTS). */
  | 'result'
  /** COM_STMT_PREPARE: PREPARE_OK then parameter and column definitions. */
  | 'prepare'
  /** COM_STMT_FETCH: rows then EOF, or ERR. */
  | 'fetch'
  /** One OK, EOF or ERR packet (COM_PING, COM_INIT_DB, COM_SET_OPTION, COM_STMT_RESET...). */
  | 'ok'
  /** COM_FIELD_LIST: column definitions until EOF, or ERR. */
  | 'fieldlist'
  /** One packet of any shape (COM_STATISTICS). */
  | 'one';

const enum S {
  First,
  Cols,
  ColsEof,
  Rows,
  Infile,
  PrepParams,
  PrepParamsEof,
  PrepCols,
  PrepColsEof,
  FieldList,
  Done,
}

/** Packets shorter than this are held until whole before they are judged (OK, ERR, EOF, metadata). */
const INSPECT_LIMIT = 16384;

export interface ResponseSummary {
  /** Status flags of the last OK or EOF. */
  status?: number;
  error?: ErrInfo;
  /** Session state changes reported by every OK of the response, in order. */
  track: SessionTrack[];
  /** COM_STMT_PREPARE: what the backend answered. */
  prepared?: { stmtId: number; columns: number; params: number };
  /** The server asked for a LOCAL INFILE: the client's file follows. */
  localInfile?: boolean;
  /** Result sets and OKs seen (multi-results count each). */
  results: number;
}

/**
 * Follows one command's response as it streams from a backend to the client, packet by packet,
 * reading only what decides where it ends: the first byte of each packet, whole OK/ERR/EOF packets
 * (small), the status flags they carry and their session-state information. Rows and column
 * definitions pass untouched; chunks go out as they came unless a packet must be rewritten (a
 * prepared statement's id, an OK packet's session tracking for a client that did not ask for it).
 */
export class ResponseRelay {
  #s: S;
  #left = 0;
  /** Bytes of the current frame's payload still to pass (a large packet streams through). */
  #skip = 0;
  /** The current frame is a continuation of a 16 MiB one. */
  #continued = false;
  #hold: Buffer | undefined;
  /** PREPARE_OK's column count, for after the parameter definitions. */
  #afterParams = 0;
  readonly summary: ResponseSummary = { track: [], results: 0 };
  /** The packet being judged was hashed in a normalized form (OK, EOF, ERR). */
  #special = false;

  constructor(
    readonly expect: Expect,
    private readonly opts: {
      /** The client negotiated CLIENT_SESSION_TRACK (else OK packets are rewritten without it). */
      clientSessionTrack: boolean;
      /** Replaces the backend's statement id in PREPARE_OK (the client sees the session's own ids). */
      stmtId?: number;
      /** Fed what the client receives (transaction replay compares it; see checksum.ts). */
      checksum?: ResultChecksum;
    },
  ) {
    this.#s = expect === 'fetch' ? S.Rows : expect === 'fieldlist' ? S.FieldList : S.First;
  }

  get done(): boolean {
    return this.#s === S.Done;
  }

  /** Waiting for the client's LOCAL INFILE data (relayed by the caller); the final OK/ERR follows. */
  get awaitingInfile(): boolean {
    return this.#s === S.Infile;
  }

  /** The client's LOCAL INFILE data ended (empty packet sent): the server answers OK or ERR next. */
  infileSent(): void {
    if (this.#s === S.Infile) this.#s = S.First;
  }

  /**
   * Takes the next chunk from the backend; returns what to send to the client (in order) and any
   * bytes past the end of the response (a protocol violation the caller reports).
   */
  feed(chunk: Buffer, out: Buffer[]): Buffer | undefined {
    let buf = chunk;
    if (this.#hold) {
      buf = Buffer.concat([this.#hold, chunk]);
      this.#hold = undefined;
    }
    let pos = 0;
    let from = 0;
    const n = buf.length;
    while (pos < n) {
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, n - pos);
        this.opts.checksum?.bytes(buf.subarray(pos, pos + k));
        pos += k;
        this.#skip -= k;
        continue;
      }
      if (this.#s === S.Done) {
        if (from < pos) out.push(buf.subarray(from, pos));
        return buf.subarray(pos);
      }
      if (n - pos < HEADER) break;
      const len = readLength(buf, pos);
      if (this.#continued) {
        this.#continued = len === MAX_FRAME;
        pos += HEADER;
        this.#skip = len;
        continue;
      }
      // Rows and definitions are judged by their first byte (only a short EOF or an ERR says more),
      // so they stream through as they come: never held back, never copied whole.
      if (len > 0 && n - pos < HEADER + 1) break;
      const whole = len < INSPECT_LIMIT && (len === 0 || this.#wantsWhole(buf[pos + HEADER]!, len));
      if (whole && n - pos < HEADER + len) break;
      const at = pos + HEADER;
      const sum = this.opts.checksum;
      // Hashed before #packet may rewrite it (a prepared statement's id): the bytes as the server sent them.
      let copy: Buffer | undefined;
      if (sum) {
        this.#special = false;
        copy = Buffer.from(buf.subarray(at, whole ? at + len : Math.min(n, at + len)));
      }
      const replacement = this.#packet(buf, at, len, whole);
      if (sum && !this.#special) {
        sum.packet(len);
        sum.bytes(copy!);
      }
      this.#continued = len === MAX_FRAME;
      pos = this.#after(buf, pos, at, len, whole, replacement, out, from);
      if (replacement) from = pos;
    }
    if (pos < n) this.#hold = buf.subarray(pos);
    if (from < pos) out.push(from === 0 && pos === n ? buf : buf.subarray(from, pos));
    return undefined;
  }

  /** Advances past a judged packet, sending what replaces it if anything does: returns the new position. */
  #after(buf: Buffer, pos: number, at: number, len: number, whole: boolean, replacement: Buffer | undefined, out: Buffer[], from: number): number {
    if (replacement) {
      if (from < pos) out.push(buf.subarray(from, pos));
      const framed = Buffer.allocUnsafe(HEADER + replacement.length);
      writeHeader(framed, 0, replacement.length, buf[pos + 3]!);
      replacement.copy(framed, HEADER);
      out.push(framed);
      return at + len;
    }
    if (whole) return at + len;
    const k = Math.min(len, buf.length - at);
    this.#skip = len - k;
    return at + k;
  }

  #eofSum(buf: Buffer, at: number, len: number): void {
    if (!this.opts.checksum) return;
    this.#special = true;
    this.opts.checksum.eof(len >= 3 ? buf.readUInt16LE(at + 1) : 0);
  }

  /** Whether a packet starting with `first` must be read whole before it is judged. */
  #wantsWhole(first: number, len: number): boolean {
    switch (this.#s) {
      case S.Cols:
      case S.Rows:
      case S.PrepParams:
      case S.PrepCols:
      case S.FieldList:
        return first === 0xff || (first === 0xfe && len < 9);
      default:
        return true;
    }
  }

  /** Judges one packet (whole when it must be read; else only its first byte). Returns a replacement payload, if any. */
  #packet(buf: Buffer, at: number, len: number, whole: boolean): Buffer | undefined {
    const first = len > 0 ? buf[at]! : -1;
    switch (this.#s) {
      case S.First: {
        if (this.expect === 'one') {
          this.#s = S.Done;
          return undefined;
        }
        if (first === 0x00 && this.expect === 'prepare') return this.#prepareOk(buf, at, len);
        if (first === 0x00 || (first === 0xfe && len < 9 && this.expect === 'ok')) return this.#ok(buf, at, len, whole);
        if (first === 0xff) return this.#err(buf, at, len);
        if (this.expect === 'ok') {
          // Anything else where one packet was due ends the response too (the caller compares).
          this.#s = S.Done;
          return undefined;
        }
        if (first === 0xfb && this.expect === 'result') {
          this.summary.localInfile = true;
          this.#s = S.Infile;
          return undefined;
        }
        // A column count starts a result set.
        const b = first;
        this.#left = b < 0xfb ? b : b === 0xfc ? buf.readUInt16LE(at + 1) : b === 0xfd ? readLength(buf, at + 1) : Number.MAX_SAFE_INTEGER;
        this.#s = this.#left > 0 ? S.Cols : S.ColsEof;
        return undefined;
      }
      case S.Cols:
        if (first === 0xff) return this.#err(buf, at, len);
        if (--this.#left === 0) this.#s = S.ColsEof;
        return undefined;
      case S.ColsEof:
        if (first === 0xff) return this.#err(buf, at, len);
        if (first === 0xfe && len < 9) {
          const status = len >= 5 ? buf.readUInt16LE(at + 3) : 0;
          this.summary.status = status;
          this.#eofSum(buf, at, len);
          // An opened cursor: rows come with COM_STMT_FETCH.
          if (status & STATUS.CURSOR_EXISTS) {
            this.summary.results++;
            this.#s = S.Done;
          } else this.#s = S.Rows;
        }
        return undefined;
      case S.Rows:
        if (first === 0xfe && len < 9) {
          const status = len >= 5 ? buf.readUInt16LE(at + 3) : 0;
          this.summary.status = status;
          this.#eofSum(buf, at, len);
          this.summary.results++;
          this.#s = status & STATUS.MORE_RESULTS_EXISTS && this.expect === 'result' ? S.First : S.Done;
          return undefined;
        }
        if (first === 0xff && whole) return this.#err(buf, at, len);
        return undefined;
      case S.PrepParams:
        if (--this.#left === 0) this.#s = S.PrepParamsEof;
        return undefined;
      case S.PrepParamsEof:
        this.#left = this.#afterParams;
        this.#s = this.#left > 0 ? S.PrepCols : S.Done;
        return undefined;
      case S.PrepCols:
        if (--this.#left === 0) this.#s = S.PrepColsEof;
        return undefined;
      case S.PrepColsEof:
        this.#s = S.Done;
        return undefined;
      case S.FieldList:
        if (first === 0xff) return this.#err(buf, at, len);
        if (first === 0xfe && len < 9) {
          this.#eofSum(buf, at, len);
          this.#s = S.Done;
        }
        return undefined;
      case S.Infile:
        // The server sends nothing while the client's file streams; anything here ends the exchange.
        if (first === 0xff) return this.#err(buf, at, len);
        return this.#ok(buf, at, len, whole);
      default:
        return undefined;
    }
  }

  #ok(buf: Buffer, at: number, len: number, whole: boolean): Buffer | undefined {
    if (!whole) {
      this.#s = S.Done;
      return undefined;
    }
    const payload = buf.subarray(at, at + len);
    this.summary.results++;
    if (payload[0] === 0xfe) {
      this.#eofSum(buf, at, len);
      this.summary.status = len >= 5 ? payload.readUInt16LE(3) : 0;
      this.#s = S.Done;
      return undefined;
    }
    let replacement: Buffer | undefined;
    try {
      const ok = parseOk(payload, true);
      if (this.opts.checksum) {
        this.#special = true;
        this.opts.checksum.ok(ok.affectedRows, ok.insertId, ok.warnings);
      }
      this.summary.status = ok.status;
      if (ok.track) this.summary.track.push(ok.track);
      if (!this.opts.clientSessionTrack) replacement = stripSessionTrack(payload);
    } catch {
      // A short OK (no flags): nothing to learn from it.
    }
    this.#s = (this.summary.status ?? 0) & STATUS.MORE_RESULTS_EXISTS && this.expect === 'result' ? S.First : S.Done;
    return replacement;
  }

  #err(buf: Buffer, at: number, len: number): undefined {
    this.summary.error = parseErr(buf.subarray(at, at + len));
    if (this.opts.checksum) {
      this.#special = true;
      this.opts.checksum.err(this.summary.error.code);
    }
    this.#s = S.Done;
    return undefined;
  }

  #prepareOk(buf: Buffer, at: number, len: number): undefined {
    if (len < 9) {
      this.#s = S.Done;
      return undefined;
    }
    const stmtId = buf.readUInt32LE(at + 1);
    const columns = buf.readUInt16LE(at + 5);
    const params = buf.readUInt16LE(at + 7);
    this.summary.prepared = { stmtId, columns, params };
    if (this.opts.stmtId !== undefined) buf.writeUInt32LE(this.opts.stmtId >>> 0, at + 1);
    if (params > 0) {
      this.#left = params;
      this.#s = S.PrepParams;
      this.#afterParams = columns;
    } else if (columns > 0) {
      this.#left = columns;
      this.#s = S.PrepCols;
    } else this.#s = S.Done;
    return undefined;
  }

}
