import { deflateSync, inflateSync } from 'node:zlib';

/**
 * MySQL/MariaDB packet framing: a 3-byte little-endian payload length and a 1-byte sequence id.
 * A logical packet of 16 MiB - 1 bytes or more is split into frames of exactly 0xffffff bytes
 * followed by a shorter (possibly empty) one. Pure functions and small stateful parsers; no I/O.
 */
export const MAX_FRAME = 0xffffff;
export const HEADER = 4;

export function writeHeader(buf: Buffer, at: number, length: number, seq: number): void {
  buf[at] = length & 0xff;
  buf[at + 1] = (length >> 8) & 0xff;
  buf[at + 2] = (length >> 16) & 0xff;
  buf[at + 3] = seq & 0xff;
}

export function readLength(buf: Buffer, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16);
}

/** One logical packet as frames (several when 16 MiB or longer), starting at sequence id `seq`. */
export function frame(payload: Buffer, seq: number): Buffer {
  if (payload.length < MAX_FRAME) {
    const out = Buffer.allocUnsafe(HEADER + payload.length);
    writeHeader(out, 0, payload.length, seq);
    payload.copy(out, HEADER);
    return out;
  }
  const frames = Math.floor(payload.length / MAX_FRAME) + 1;
  const out = Buffer.allocUnsafe(payload.length + HEADER * frames);
  let src = 0;
  let dst = 0;
  for (let i = 0; i < frames; i++) {
    const len = Math.min(MAX_FRAME, payload.length - src);
    writeHeader(out, dst, len, seq + i);
    payload.copy(out, dst + HEADER, src, src + len);
    src += len;
    dst += HEADER + len;
  }
  return out;
}

/** Sequence id of the last frame of a packet of this payload length sent from `seq`. */
export function lastSeq(payloadLength: number, seq: number): number {
  return (seq + Math.floor(payloadLength / MAX_FRAME)) & 0xff;
}

/** A complete logical packet read from a stream. */
export interface Packet {
  /** Sequence id of the first frame. */
  seq: number;
  /** Sequence id of the last frame (the next packet of the exchange uses lastSeq + 1). */
  lastSeq: number;
  /** The payload (frames joined). */
  payload: Buffer;
  /** The frames as received, headers included: what is forwarded unchanged. */
  raw: Buffer;
}

export class PacketTooLarge extends Error {
  override name = 'PacketTooLarge';
  constructor(readonly limit: number) {
    super(`packet larger than ${limit} bytes`);
  }
}

/**
 * Collects bytes and hands out complete logical packets. Packets are sliced from the received
 * chunk without copying when a chunk holds them whole (the usual case); only packets split across
 * chunks or frames are joined. A packet over `maxPacket` bytes throws PacketTooLarge as soon as
 * its frames announce it, before it is buffered.
 */
export class PacketReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  constructor(private readonly maxPacket: number) {}

  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next complete packet, or undefined until more bytes arrive. */
  next(): Packet | undefined {
    if (this.#buffered < HEADER) return undefined;
    let head = this.#chunks[0]!;
    if (head.length < HEADER) head = this.#join(HEADER);
    const len = readLength(head, 0);
    // The common case: one frame, whole in the first chunk.
    if (len < MAX_FRAME) {
      if (len > this.maxPacket) throw new PacketTooLarge(this.maxPacket);
      const total = HEADER + len;
      if (this.#buffered < total) return undefined;
      if (head.length < total) head = this.#join(total);
      const raw = head.length === total ? head : head.subarray(0, total);
      this.#consume(total);
      return { seq: raw[3]!, lastSeq: raw[3]!, payload: raw.subarray(HEADER), raw };
    }
    // Several frames: walk the headers (once each, across calls) to see whether the last one is here.
    const all = this.#buffered;
    let at = this.#scanAt;
    let payloadLen = this.#scanLen;
    if (at === 0) {
      payloadLen = 0;
    }
    for (;;) {
      if (all - at < HEADER) break;
      const flen = readLength(this.#peek(at, HEADER), 0);
      if (all - at < HEADER + flen) {
        // Announced but not all here yet: the size is known already.
        if (payloadLen + flen > this.maxPacket) throw new PacketTooLarge(this.maxPacket);
        break;
      }
      payloadLen += flen;
      if (payloadLen > this.maxPacket) throw new PacketTooLarge(this.maxPacket);
      at += HEADER + flen;
      if (flen < MAX_FRAME) {
        this.#scanAt = 0;
        this.#scanLen = 0;
        return this.#takeFrames(at, payloadLen);
      }
    }
    this.#scanAt = at;
    this.#scanLen = payloadLen;
    return undefined;
  }

  #scanAt = 0;
  #scanLen = 0;

  #takeFrames(at: number, payloadLen: number): Packet {
    const raw = this.#join(at).subarray(0, at);
    this.#consume(at);
    const payload = Buffer.allocUnsafe(payloadLen);
    let src = 0;
    let dst = 0;
    let seqLast = raw[3]!;
    while (src < raw.length) {
      const flen = readLength(raw, src);
      seqLast = raw[src + 3]!;
      raw.copy(payload, dst, src + HEADER, src + HEADER + flen);
      dst += flen;
      src += HEADER + flen;
    }
    return { seq: raw[3]!, lastSeq: seqLast, payload, raw };
  }

  /** Drops whatever is buffered (the bytes of a connection being closed). */
  clear(): void {
    this.#chunks = [];
    this.#buffered = 0;
    this.#scanAt = 0;
    this.#scanLen = 0;
  }

  /** Takes every buffered byte out, raw (used when a stream changes hands, e.g. after a TLS upgrade). */
  takeAll(): Buffer {
    const b = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    this.clear();
    return b;
  }

  /** n bytes at offset `at` of the buffered stream, copied only when they straddle chunks. */
  #peek(at: number, n: number): Buffer {
    let off = at;
    let i = 0;
    while (i < this.#chunks.length && off >= this.#chunks[i]!.length) off -= this.#chunks[i++]!.length;
    const c = this.#chunks[i]!;
    if (off + n <= c.length) return c.subarray(off, off + n);
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const src = this.#chunks[i++]!;
      const k = Math.min(n - got, src.length - off);
      src.copy(out, got, off, off + k);
      got += k;
      off = 0;
    }
    return out;
  }

  /** Makes the first chunk at least n bytes long by joining chunks. */
  #join(n: number): Buffer {
    if (this.#chunks[0]!.length >= n) return this.#chunks[0]!;
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined;
  }

  #consume(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const c = this.#chunks[0]!;
      if (c.length <= n) {
        this.#chunks.shift();
        n -= c.length;
      } else {
        this.#chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}

// ---- the compressed protocol -------------------------------------------------------------
// Each compressed frame: 3-byte compressed length, 1-byte compressed sequence id, 3-byte length
// before compression (0: stored as is). Its payload is a slice of the ordinary packet stream,
// which may cut packets anywhere. zlib (deflate) format.

export const COMPRESSED_HEADER = 7;
/** Below this, payloads are sent stored: compressing them costs more than it saves (as the server does). */
const MIN_COMPRESS = 50;

/** Wraps a slice of the packet stream into compressed frames, from compressed sequence id `seq`. */
export function compressFrames(data: Buffer, seq: number): { out: Buffer; nextSeq: number } {
  const parts: Buffer[] = [];
  let at = 0;
  let s = seq;
  do {
    const piece = data.subarray(at, Math.min(data.length, at + MAX_FRAME));
    at += piece.length;
    let body: Buffer = piece;
    let ulen = 0;
    if (piece.length >= MIN_COMPRESS) {
      const z = deflateSync(piece);
      if (z.length < piece.length) {
        body = z;
        ulen = piece.length;
      }
    }
    const h = Buffer.allocUnsafe(COMPRESSED_HEADER);
    writeHeader(h, 0, body.length, s);
    h[4] = ulen & 0xff;
    h[5] = (ulen >> 8) & 0xff;
    h[6] = (ulen >> 16) & 0xff;
    parts.push(h, body);
    s = (s + 1) & 0xff;
  } while (at < data.length);
  return { out: parts.length === 2 ? Buffer.concat(parts) : Buffer.concat(parts), nextSeq: s };
}

export class CompressedStreamError extends Error {
  override name = 'CompressedStreamError';
}

/** Turns a stream of compressed frames back into the packet stream; remembers the last sequence id. */
export class Decompressor {
  #pending: Buffer = Buffer.alloc(0);
  lastSeq = -1;
  constructor(private readonly maxFrame = MAX_FRAME) {}

  /** Returns the decompressed bytes of every complete compressed frame received so far. */
  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const p = this.#pending;
      if (p.length < COMPRESSED_HEADER) break;
      const clen = readLength(p, 0);
      const ulen = p[4]! | (p[5]! << 8) | (p[6]! << 16);
      if (p.length < COMPRESSED_HEADER + clen) break;
      const body = p.subarray(COMPRESSED_HEADER, COMPRESSED_HEADER + clen);
      this.lastSeq = p[3]!;
      if (ulen === 0) out.push(body);
      else {
        if (ulen > this.maxFrame) throw new CompressedStreamError(`compressed frame announces ${ulen} bytes, more than a frame may hold`);
        let inflated: Buffer;
        try {
          inflated = inflateSync(body, { maxOutputLength: ulen });
        } catch (e) {
          throw new CompressedStreamError(`compressed frame does not inflate: ${(e as Error).message}`);
        }
        if (inflated.length !== ulen) throw new CompressedStreamError(`compressed frame inflates to ${inflated.length} bytes, announced ${ulen}`);
        out.push(inflated);
      }
      this.#pending = p.subarray(COMPRESSED_HEADER + clen);
    }
    return out;
  }
}

// ---- encodings used inside payloads -----------------------------------------------------

/** Reads a length-encoded integer at `at`; returns the value (as a number: callers use it for lengths and counts) and the bytes it took. NaN for the NULL marker (0xfb). */
export function readLenenc(buf: Buffer, at: number): { value: number; size: number } {
  const b = buf[at]!;
  if (b < 0xfb) return { value: b, size: 1 };
  if (b === 0xfb) return { value: NaN, size: 1 };
  if (b === 0xfc) return { value: buf.readUInt16LE(at + 1), size: 3 };
  if (b === 0xfd) return { value: readLength(buf, at + 1), size: 4 };
  if (b === 0xfe) return { value: Number(buf.readBigUInt64LE(at + 1)), size: 9 };
  throw new RangeError(`0x${b.toString(16)} does not start a length-encoded integer`);
}

export function lenencSize(n: number): number {
  return n < 0xfb ? 1 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 9;
}

export function writeLenenc(buf: Buffer, at: number, n: number): number {
  if (n < 0xfb) {
    buf[at] = n;
    return 1;
  }
  if (n < 0x10000) {
    buf[at] = 0xfc;
    buf.writeUInt16LE(n, at + 1);
    return 3;
  }
  if (n < 0x1000000) {
    buf[at] = 0xfd;
    buf[at + 1] = n & 0xff;
    buf[at + 2] = (n >> 8) & 0xff;
    buf[at + 3] = (n >> 16) & 0xff;
    return 4;
  }
  buf[at] = 0xfe;
  buf.writeBigUInt64LE(BigInt(n), at + 1);
  return 9;
}

export function lenencBytes(value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(lenencSize(value.length) + value.length);
  const n = writeLenenc(out, 0, value.length);
  value.copy(out, n);
  return out;
}

/** A small builder for payloads the router writes itself (handshakes, errors, internal commands). */
export class PayloadWriter {
  #parts: Buffer[] = [];
  u8(n: number): this {
    this.#parts.push(Buffer.from([n & 0xff]));
    return this;
  }
  u16(n: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(n);
    this.#parts.push(b);
    return this;
  }
  u32(n: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(n >>> 0);
    this.#parts.push(b);
    return this;
  }
  lenenc(n: number): this {
    const b = Buffer.allocUnsafe(lenencSize(n));
    writeLenenc(b, 0, n);
    this.#parts.push(b);
    return this;
  }
  bytes(b: Buffer): this {
    this.#parts.push(b);
    return this;
  }
  zeros(n: number): this {
    this.#parts.push(Buffer.alloc(n));
    return this;
  }
  nulString(s: string | Buffer): this {
    this.#parts.push(typeof s === 'string' ? Buffer.from(s, 'utf8') : s, Buffer.from([0]));
    return this;
  }
  lenencString(s: string | Buffer): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    return this.lenenc(b.length).bytes(b);
  }
  build(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

/** Reads a payload front to back; throws MalformedPacket when it runs out. */
export class MalformedPacket extends Error {
  override name = 'MalformedPacket';
}

export class PayloadReader {
  at = 0;
  constructor(readonly buf: Buffer) {}
  get left(): number {
    return this.buf.length - this.at;
  }
  #need(n: number, what: string): void {
    if (this.at + n > this.buf.length) throw new MalformedPacket(`packet ends before ${what}`);
  }
  u8(what = 'a byte'): number {
    this.#need(1, what);
    return this.buf[this.at++]!;
  }
  u16(what = 'a 2-byte integer'): number {
    this.#need(2, what);
    const v = this.buf.readUInt16LE(this.at);
    this.at += 2;
    return v;
  }
  u32(what = 'a 4-byte integer'): number {
    this.#need(4, what);
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  bytes(n: number, what = 'a field'): Buffer {
    this.#need(n, what);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  lenenc(what = 'a length-encoded integer'): number {
    this.#need(1, what);
    let r: { value: number; size: number };
    try {
      r = readLenenc(this.buf, this.at);
    } catch (e) {
      throw new MalformedPacket(`${what}: ${(e as Error).message}`);
    }
    this.#need(r.size, what);
    this.at += r.size;
    return r.value;
  }
  lenencBytes(what = 'a length-encoded string'): Buffer {
    const n = this.lenenc(what);
    if (Number.isNaN(n)) return Buffer.alloc(0);
    return this.bytes(n, what);
  }
  nulBytes(what = 'a NUL-terminated string'): Buffer {
    const end = this.buf.indexOf(0, this.at);
    if (end < 0) throw new MalformedPacket(`${what} has no terminating NUL`);
    const v = this.buf.subarray(this.at, end);
    this.at = end + 1;
    return v;
  }
  /** A NUL-terminated string, or the rest of the packet when the NUL is missing (some clients omit it at the end). */
  nulBytesOrRest(): string {
    const end = this.buf.indexOf(0, this.at);
    const v = this.buf.subarray(this.at, end < 0 ? this.buf.length : end);
    this.at = end < 0 ? this.buf.length : end + 1;
    return v.toString('utf8');
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.at);
    this.at = this.buf.length;
    return v;
  }
}
