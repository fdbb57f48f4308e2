/**
 * The statements of one open transaction, kept so the transaction can be replayed on a new primary
 * when the old one is lost before COMMIT (docs/sql-endpoint.md, "Transaction replay"). Pure
 * bookkeeping: what the session relays, the limits and what makes a transaction unsafe to replay.
 */

export interface ReplaySettings {
  /** Replay interrupted transactions at all. */
  enabled: boolean;
  /** A transaction whose statements are bigger than this in total is not replayed. */
  maxBytes: number;
  /** A transaction of more statements than this is not replayed. */
  maxStatements: number;
  /** Functions whose value a replay cannot reproduce; a transaction calling one is not replayed. */
  unsafeFunctions: string[];
}

export interface LoggedStatement {
  /**
   * The client's command as framed on the wire: a COM_QUERY, or a COM_STMT_EXECUTE carrying its
   * parameter types (a new connection has not seen the types bound earlier).
   */
  raw: Buffer;
  /** Its text, for the error message of a replay that differs. */
  sql: string;
  /** Checksum of the result the client received (ResultChecksum). */
  checksum: string;
  /** A COM_STMT_EXECUTE: the session's id of the prepared statement (prepared again where it is replayed). */
  statement?: number;
}

/** The first unsafe function `sql` calls (a word followed by an opening parenthesis), if any. */
export function unsafeCall(sql: string, functions: readonly string[]): string | undefined {
  if (functions.length === 0) return undefined;
  const upper = sql.toUpperCase();
  for (const f of functions) {
    const name = f.toUpperCase();
    let at = upper.indexOf(name);
    while (at >= 0) {
      const before = at === 0 ? ' ' : upper[at - 1]!;
      let end = at + name.length;
      while (end < upper.length && (upper[end] === ' ' || upper[end] === '\t' || upper[end] === '\n')) end++;
      // A whole word: not part of a longer identifier (NOW in KNOWN, RAND in BRAND).
      if (!/[A-Z0-9_$.@`]/.test(before) && upper[end] === '(') return f.toUpperCase();
      at = upper.indexOf(name, at + 1);
    }
  }
  return undefined;
}

export class ReplayLog {
  readonly statements: LoggedStatement[] = [];
  #bytes = 0;
  /** Why this transaction cannot be replayed (set once; the statements are then dropped). */
  refused?: string;

  constructor(private readonly settings: ReplaySettings) {
    if (!settings.enabled) this.refused = 'transaction replay is off (router.sql.transactionReplay.enabled)';
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Marks the transaction unsafe to replay; memory is released at once. */
  refuse(why: string): void {
    if (this.refused) return;
    this.refused = why;
    this.statements.length = 0;
    this.#bytes = 0;
  }

  /**
   * Whether a statement about to run in the transaction keeps it replayable: false (and refused)
   * when it calls an unsafe function. Checked before it runs: its result must be checksummed.
   */
  admits(sql: string): boolean {
    if (this.refused) return false;
    const f = unsafeCall(sql, this.settings.unsafeFunctions);
    if (f) {
      this.refuse(`it called ${f}(), whose result a replay cannot reproduce (router.sql.transactionReplay.unsafeFunctions)`);
      return false;
    }
    return true;
  }

  /** Records a statement that ran, with the checksum of what the client received; enforces the limits. */
  add(s: LoggedStatement): void {
    if (this.refused) return;
    if (this.statements.length + 1 > this.settings.maxStatements) return this.refuse(`it ran more than ${this.settings.maxStatements} statements (router.sql.transactionReplay.maxStatements)`);
    if (this.#bytes + s.raw.length > this.settings.maxBytes) return this.refuse(`its statements exceed ${this.settings.maxBytes} bytes (router.sql.transactionReplay.maxBytes)`);
    this.statements.push(s);
    this.#bytes += s.raw.length;
  }
}
