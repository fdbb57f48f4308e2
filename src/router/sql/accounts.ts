import type { Account } from '../../config/load.ts';
import { DbConnection } from '../../sql/connection.ts';
import type { Logger } from '../../util/log.ts';
import type { AccountRow } from './auth.ts';

const MARIADB_QUERY =
  "SELECT User AS user, Host AS host, JSON_VALUE(Priv, '$.plugin') AS plugin, JSON_VALUE(Priv, '$.authentication_string') AS auth, JSON_VALUE(Priv, '$.account_locked') AS locked, JSON_QUERY(Priv, '$.auth_or') AS auth_or FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.is_role') IS NULL OR JSON_VALUE(Priv, '$.is_role') <> 'true'";
const MYSQL_QUERY = "SELECT user, host, plugin, authentication_string AS auth, account_locked = 'Y' AS locked FROM mysql.user";

/** Rows of mysql.global_priv / mysql.user as the router needs them. Pure, for tests. */
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
      flavor: () => 'mariadb' | 'mysql';
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

  /** Re-reads the accounts; false when skipped (too soon after the last read) or failed. */
  refresh(force = false): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    if (!force && Date.now() - this.#last < 1000) return Promise.resolve(false);
    this.#inflight = this.#load().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #load(): Promise<boolean> {
    const errors: string[] = [];
    for (const src of this.opts.sources()) {
      let c: DbConnection | undefined;
      try {
        c = await DbConnection.open(src.host, src.port, this.opts.account, { connectTimeoutMs: this.opts.connectTimeoutMs, queryTimeoutMs: 5000 });
        const rows = await c.query(this.opts.flavor() === 'mysql' ? MYSQL_QUERY : MARIADB_QUERY);
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
