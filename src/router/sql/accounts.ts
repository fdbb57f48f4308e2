import type { Account } from '../../config/load.ts';
import { DbConnection } from '../../sql/connection.ts';
import type { EndpointDialect } from '../../sql/flavor.ts';
import type { Logger } from '../../util/log.ts';
import type { AccountRow } from './auth.ts';

/** Rows of the family's account-hashes query (`EndpointDialect.accountHashesQuery`) as the router needs them. Pure, for tests. */
export function accountRows(rows: Record<string, unknown>[]): AccountRow[] {
  return rows.map((r) => {
    let plugin = String(r['plugin'] ?? 'mysql_native_password');
    let auth = String(r['auth'] ?? '');
    // MariaDB's IDENTIFIED VIA a OR b: use a mysql_native_password alternative when there is one.
    if (r['auth_or']) {
      try {
        const alts = JSON.parse(String(r['auth_or'])) as { plugin?: string; authentication_string?: string }[];
        const native = alts.find((a) => a.plugin === 'mysql_native_password');
        if (native) {
          plugin = 'mysql_native_password';
          auth = native.authentication_string ?? '';
        }
      } catch {
        // unreadable: the main plugin stands
      }
    }
    const locked = r['locked'] === true || r['locked'] === 'true' || r['locked'] === 1 || r['locked'] === '1';
    return { user: String(r['user'] ?? ''), host: String(r['host'] ?? '%'), plugin, auth, locked };
  });
}

/**
 * The account hashes the SQL endpoint verifies logins against, read from the primary (or, while
 * there is none, any instance) with the router service account. Refreshed periodically and when
 * a login fails (at most once a second, so a client hammering wrong passwords cannot hammer the
 * server too).
 */
export class AccountCache {
  #rows: AccountRow[] = [];
  #last = 0;
  #inflight?: Promise<boolean>;
  #timer?: NodeJS.Timeout;

  constructor(
    private readonly opts: {
      account: Account;
      /** Instances to read from, best first. */
      sources: () => { host: string; port: number; id: string }[];
      /** The servers' family's statements (the family is known once the monitor has seen a server). */
      dialect: () => EndpointDialect;
      periodMs: number;
      connectTimeoutMs: number;
      log: Logger;
      cluster: string;
    },
  ) {}

  get rows(): AccountRow[] {
    return this.#rows;
  }

  get loaded(): boolean {
    return this.#last > 0;
  }

  start(): void {
    void this.refresh(true);
    this.#timer = setInterval(() => void this.refresh(true), this.opts.periodMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /**
   * Re-reads the accounts; false when the read failed. Reads are at least a second apart: a login
   * that fails sooner after the last read waits for the next one instead of being refused (an
   * account created a moment ago must work), and every login failing meanwhile shares that read,
   * so a client hammering wrong passwords cannot hammer the server too.
   */
  refresh(force = false): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    const wait = force ? 0 : this.#last + 1000 - Date.now();
    const read = wait > 0 ? new Promise<void>((r) => setTimeout(r, wait).unref()).then(() => this.#load()) : this.#load();
    this.#inflight = read.finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #load(): Promise<boolean> {
    const errors: string[] = [];
    for (const src of this.opts.sources()) {
      let c: DbConnection | undefined;
      try {
        c = await DbConnection.open(src.host, src.port, this.opts.account, { connectTimeoutMs: this.opts.connectTimeoutMs, queryTimeoutMs: 5000 });
        const rows = await c.query(this.opts.dialect().accountHashesQuery);
        this.#rows = accountRows(rows);
        this.#last = Date.now();
        return true;
      } catch (e) {
        errors.push(`${src.id}: ${(e as Error).message}`);
      } finally {
        await c?.close().catch(() => {});
      }
    }
    this.#last = Date.now();
    this.opts.log.warn({ event: 'sql_accounts_unreadable', cluster: this.opts.cluster, errors }, `SQL endpoint of ${this.opts.cluster}: cannot read account hashes (${errors[0] ?? 'no instance'}); logins fail until it can (the router account needs SELECT on mysql.global_priv, see \`regent grants\`)`);
    return false;
  }
}
