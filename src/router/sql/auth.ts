import { createHash, publicEncrypt, constants as cryptoConstants, randomBytes } from 'node:crypto';

/**
 * Authentication without application passwords (MaxScale's method for mysql_native_password).
 *
 * The server stores H = SHA1(SHA1(password)). A client answers a scramble S with
 * token = SHA1(password) XOR SHA1(S + H). Knowing H, the router recovers SHA1(password) from the
 * token and checks that its SHA1 is H; that proves the client knows the password, and SHA1(password)
 * answers any backend's scramble the same way. It lives in the session's memory only, never in a
 * log, an error or a file.
 */

export const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha512 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

export function newScramble(): Buffer {
  // Printable, non-NUL bytes, as servers send (some clients treat the scramble as a C string).
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) b[i] = 0x21 + (b[i]! % 94);
  return b;
}

/** `*HEX` of mysql.user / global_priv into the 20 bytes of SHA1(SHA1(password)); undefined for no password, null when not a native hash. */
export function parseNativeHash(text: string): Buffer | undefined | null {
  if (text === '') return undefined;
  if (!/^\*[0-9A-Fa-f]{40}$/.test(text)) return null;
  return Buffer.from(text.slice(1), 'hex');
}

/** mysql_native_password's answer to `scramble` from SHA1(password). */
export function nativeToken(sha1Password: Buffer, scramble: Buffer): Buffer {
  return xor(sha1Password, sha1(scramble.subarray(0, 20), sha1(sha1Password)));
}

/** The client's token checked against the stored hash: SHA1(password) when it matches. */
export function recoverSha1Password(token: Buffer, scramble: Buffer, storedHash: Buffer): Buffer | undefined {
  if (token.length !== 20) return undefined;
  const candidate = xor(token, sha1(scramble.subarray(0, 20), storedHash));
  return sha1(candidate).equals(storedHash) ? candidate : undefined;
}

/** caching_sha2_password's fast-path answer: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce). */
export function cachingSha2Token(password: string, nonce: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const s1 = sha256(Buffer.from(password, 'utf8'));
  return xor(s1, sha256(sha256(s1), nonce.subarray(0, 20)));
}

/** caching_sha2_password full authentication without TLS: the password RSA-encrypted with the server's key. */
export function rsaEncryptPassword(password: string, nonce: Buffer, publicKeyPem: Buffer): Buffer {
  const plain = xor(Buffer.from(`${password}\0`, 'utf8'), nonce.subarray(0, 20));
  return publicEncrypt({ key: publicKeyPem, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plain);
}

// ---- client_ed25519 (MariaDB): Ed25519 where the secret seed is the password itself -------
// Node's crypto only signs with a 32-byte seed; MariaDB hashes a password of any length in its
// place, so the group arithmetic is done here (only at login, where speed does not matter).

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a: bigint, m = P) => ((a % m) + m) % m;
function pow(b: bigint, e: bigint, m = P): bigint {
  let r = 1n;
  let x = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * x) % m;
    x = (x * x) % m;
    e >>= 1n;
  }
  return r;
}
const inv = (a: bigint) => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));
type Pt = [bigint, bigint, bigint, bigint];
const BY = mod(4n * inv(5n));
const BX = (() => {
  const y2 = BY * BY;
  let x = pow(mod((y2 - 1n) * inv(D * y2 + 1n)), (P + 3n) / 8n);
  if (mod(x * x - (y2 - 1n) * inv(D * y2 + 1n)) !== 0n) x = mod(x * pow(2n, (P - 1n) / 4n));
  return x % 2n === 0n ? x : P - x;
})();
const BASE: Pt = [BX, BY, 1n, mod(BX * BY)];
function add(p: Pt, q: Pt): Pt {
  const a = mod((p[1] - p[0]) * (q[1] - q[0]));
  const b = mod((p[1] + p[0]) * (q[1] + q[0]));
  const c = mod(2n * p[3] * q[3] * D);
  const d = mod(2n * p[2] * q[2]);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}
function mul(s: bigint, p: Pt): Pt {
  let r: Pt = [0n, 1n, 1n, 0n];
  let q = p;
  while (s > 0n) {
    if (s & 1n) r = add(r, q);
    q = add(q, q);
    s >>= 1n;
  }
  return r;
}
function encode(p: Pt): Buffer {
  const zi = inv(p[2]);
  const x = mod(p[0] * zi);
  const y = mod(p[1] * zi);
  const out = leBytes(y, 32);
  if (x & 1n) out[31]! |= 0x80;
  return out;
}
function leBytes(n: bigint, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}
const leNum = (b: Buffer) => {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
};

/** MariaDB client_ed25519's answer: the Ed25519 signature of the scramble with the password as seed. */
export function ed25519Sign(password: Buffer, message: Buffer): Buffer {
  const az = sha512(password);
  const a = Buffer.from(az.subarray(0, 32));
  a[0]! &= 248;
  a[31]! &= 63;
  a[31]! |= 64;
  const s = leNum(a);
  const A = encode(mul(s, BASE));
  const r = mod(leNum(sha512(az.subarray(32), message)), L);
  const R = encode(mul(r, BASE));
  const k = mod(leNum(sha512(R, A, message)), L);
  const S = mod(r + k * s, L);
  return Buffer.concat([R, leBytes(S, 32)]);
}

// ---- accounts ----------------------------------------------------------------------------

export interface AccountRow {
  user: string;
  host: string;
  plugin: string;
  /** authentication_string as stored. */
  auth: string;
  locked?: boolean;
}

/** How well a host pattern fits, for ordering as the server does: exact hosts first, '%' last. */
function hostRank(host: string): number {
  if (host === '%' || host === '') return 0;
  const w = host.search(/[%_]/);
  return w < 0 ? 10000 : 1 + w;
}

function likeToRegex(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) re += ch === '%' ? '.*' : ch === '_' ? '.' : ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${re}$`, 'i');
}

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** Whether a client at `address` (an IP) matches the host part of an account. */
export function hostMatches(pattern: string, address: string): boolean {
  const ip = normalizeAddress(address);
  if (pattern === '%' || pattern === '') return true;
  if (pattern.toLowerCase() === 'localhost') return ip === '127.0.0.1' || ip === '::1';
  const slash = pattern.indexOf('/');
  if (slash > 0) {
    const net = ipv4ToInt(pattern.slice(0, slash));
    const mask = ipv4ToInt(pattern.slice(slash + 1));
    const a = ipv4ToInt(ip);
    return net !== undefined && mask !== undefined && a !== undefined && ((a & mask) >>> 0) === net;
  }
  return likeToRegex(pattern).test(ip);
}

/** The account the server would pick for `user` connecting from `address` (most specific host first, named users before anonymous). */
export function matchAccount(rows: AccountRow[], user: string, address: string): AccountRow | undefined {
  let best: AccountRow | undefined;
  let bestScore = -1;
  for (const r of rows) {
    if (r.user !== user && r.user !== '') continue;
    if (!hostMatches(r.host, address)) continue;
    const score = hostRank(r.host) * 2 + (r.user === '' ? 0 : 1);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}

/** What the router can do for one login attempt. */
export type LoginCheck =
  | { ok: true; credential: BackendCredential }
  | { ok: false; reason: 'unknown_user' | 'bad_password' | 'plugin_unsupported' | 'account_locked'; plugin?: string };

/** How the router logs in to backends on a client's behalf. */
export type BackendCredential = { kind: 'sha1'; sha1: Buffer; empty: boolean } | { kind: 'password'; password: string };

/**
 * Checks a client's mysql_native_password token (computed on `scramble`) for `user`@`address`.
 * `configured` holds passwords given as secrets for accounts with other plugins.
 */
export function checkLogin(rows: AccountRow[], user: string, address: string, token: Buffer, scramble: Buffer, configured: (user: string) => string | undefined): LoginCheck {
  const account = matchAccount(rows, user, address);
  const known = configured(user);
  if (!account && known === undefined) return { ok: false, reason: 'unknown_user' };
  if (account?.locked) return { ok: false, reason: 'account_locked' };
  if (account && (account.plugin === 'mysql_native_password' || account.plugin === '') && known === undefined) {
    const hash = parseNativeHash(account.auth);
    if (hash === null) return { ok: false, reason: 'bad_password' };
    if (hash === undefined) return token.length === 0 ? { ok: true, credential: { kind: 'sha1', sha1: Buffer.alloc(20), empty: true } } : { ok: false, reason: 'bad_password' };
    const s = recoverSha1Password(token, scramble, hash);
    return s ? { ok: true, credential: { kind: 'sha1', sha1: s, empty: false } } : { ok: false, reason: 'bad_password' };
  }
  if (known === undefined) return { ok: false, reason: 'plugin_unsupported', plugin: account?.plugin };
  // A configured password: the client proves it knows it with the same native token.
  const expected = known === '' ? Buffer.alloc(0) : nativeToken(sha1(Buffer.from(known, 'utf8')), scramble);
  return expected.length === token.length && expected.equals(token) ? { ok: true, credential: { kind: 'password', password: known } } : { ok: false, reason: 'bad_password' };
}

/** The reply to a backend's auth challenge for `plugin`, or undefined when this credential cannot answer it. */
export function backendAuthReply(cred: BackendCredential, plugin: string, data: Buffer, tls: boolean): Buffer | undefined {
  switch (plugin) {
    case 'mysql_native_password':
      if (cred.kind === 'sha1') return cred.empty ? Buffer.alloc(0) : nativeToken(cred.sha1, data);
      return cred.password === '' ? Buffer.alloc(0) : nativeToken(sha1(Buffer.from(cred.password, 'utf8')), data);
    case 'client_ed25519':
      return cred.kind === 'password' ? ed25519Sign(Buffer.from(cred.password, 'utf8'), data.subarray(0, 32)) : undefined;
    case 'caching_sha2_password':
      return cred.kind === 'password' ? cachingSha2Token(cred.password, data) : undefined;
    case 'mysql_clear_password':
      return cred.kind === 'password' && tls ? Buffer.from(`${cred.password}\0`, 'utf8') : undefined;
    default:
      return undefined;
  }
}
