import mysql from 'mysql2';
import type { Account } from '../config/load.ts';
import { DbError, UnsupportedServerError } from '../errors.ts';


/** A result row as mysql2 returns it. */
export type Row = Record<string, unknown>;

export interface Timeouts {
  connectTimeoutMs: number;
  queryTimeoutMs: number;
}

const PRIVILEGE_ERRNOS = new Set([1142, 1143, 1227, 1044, 1370]);

export function classifyError(e: unknown, endpoint: string, user?: string): DbError {
  if (e instanceof DbError) return e;
  // Not a connection problem, but it makes the server unusable to Regent all the same.
  if (e instanceof UnsupportedServerError) return new DbError('sql', endpoint, e.message);
  const err = e as { code?: string; errno?: number; message?: string; sqlMessage?: string; fatal?: boolean };
  const code = err.code ?? '';
  const msg = err.sqlMessage ?? err.message ?? String(e);
  switch (code) {
    case 'ECONNREFUSED':
      return new DbError('refused', endpoint, 'connection refused (is the server running and listening on this port?)', undefined, code);
    case 'ETIMEDOUT':
    case 'PROTOCOL_SEQUENCE_TIMEOUT':
      return new DbError('timeout', endpoint, `no answer in time (${code === 'ETIMEDOUT' ? 'connect' : 'query'} timeout): server frozen, overloaded or unreachable`, undefined, code);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new DbError('unreachable', endpoint, 'host name does not resolve', undefined, code);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new DbError('unreachable', endpoint, 'host unreachable', undefined, code);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'PROTOCOL_CONNECTION_LOST':
    case 'ER_SERVER_SHUTDOWN':
      return new DbError('lost', endpoint, `connection lost (${code})`, undefined, code);
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_DBACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
      return new DbError(
        'auth',
        endpoint,
        `access denied for user '${user ?? '?'}': wrong password or the account does not exist for this host (see \`regent grants\`)`,
        err.errno,
        code,
      );
  }
  if (err.errno !== undefined && PRIVILEGE_ERRNOS.has(err.errno))
    return new DbError('privilege', endpoint, `missing privilege: ${msg} (see \`regent grants\`)`, err.errno, code);
  if (err.fatal) return new DbError('lost', endpoint, `connection failed: ${msg}`, err.errno, code);
  return new DbError('sql', endpoint, msg, err.errno, code);
}

/**
 * Closes a connection at once, socket included. mysql2's destroy() only half-closes (stream.end())
 * and waits for the server's FIN: a frozen server (SIGSTOP) never sends one, so the socket, and a
 * CLI process holding it, would live until the server wakes.
 */
function hardClose(conn: mysql.Connection): void {
  conn.destroy();
  (conn as unknown as { stream?: { destroy(): void } }).stream?.destroy();
}

/**
 * Calls `expired` once `ms` have passed, unless cancelled first, but only after the I/O of the
 * loop turn in which the timer fires has been read. After the event loop was held up (a GC pause,
 * a starved CPU, a long synchronous step), Node runs every expired timer before it reads the
 * sockets: an answer that arrived in time would count as late, and a primary whose probe "timed
 * out" that way, with its replicas' probes still unread, reads as dead (seen with the probe-load
 * simulator on a loaded machine: dozens of live primaries failed over at once).
 */
function deadline(ms: number, expired: () => void): () => void {
  if (!(ms > 0)) return () => undefined;
  let cancelled = false;
  const timer = setTimeout(() => {
    setImmediate(() => {
      if (!cancelled) expired();
    });
  }, ms);
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

/**
 * One connection to one server with hard timeouts on connect and on every query: a frozen server
 * (SIGSTOP) accepts TCP and then says nothing, and nothing in Regent may wait on it forever.
 * The connection reports its own death through `onClose` the moment the socket breaks, which is
 * how a crashed primary is noticed in milliseconds instead of at the next probe.
 */
export class DbConnection {
  #conn: mysql.Connection;
  #closed = false;
  #closeListeners: ((err: DbError) => void)[] = [];

  private constructor(
    conn: mysql.Connection,
    readonly endpoint: string,
    readonly timeouts: Timeouts,
    readonly user: string,
    /** Several statements may go in one round trip (`queryBatch`). */
    readonly multipleStatements: boolean,
  ) {
    this.#conn = conn;
    conn.on('error', (e) => this.#markClosed(classifyError(e, endpoint, user)));
    conn.on('end', () => this.#markClosed(new DbError('lost', endpoint, 'connection closed by the server')));
    // mysql2 only emits 'end'/'error' on the connection when a command is pending; a socket that
    // closes while idle is seen here.
    (conn as unknown as { stream?: NodeJS.EventEmitter }).stream?.on('close', () => this.#markClosed(new DbError('lost', endpoint, 'connection closed')));
  }

  /**
   * `multipleStatements` lets `queryBatch` send several statements in one round trip. Only for
   * connections that run nothing but Regent's own constant statements (the probe connection):
   * with it on, a value spliced into SQL text could carry a statement of its own.
   */
  static open(host: string, port: number, account: Account, timeouts: Timeouts, opts: { multipleStatements?: boolean } = {}): Promise<DbConnection> {
    return DbConnection.#open({ host, port }, `${host}:${port}`, account, timeouts, opts.multipleStatements ?? false);
  }

  /** Over a unix socket (sandbox root with unix_socket authentication, no password). */
  static openSocket(socketPath: string, account: Account, timeouts: Timeouts): Promise<DbConnection> {
    return DbConnection.#open({ socketPath }, socketPath, account, timeouts, false);
  }

  static #open(
    target: { host: string; port: number } | { socketPath: string },
    endpoint: string,
    account: Account,
    timeouts: Timeouts,
    multipleStatements: boolean,
  ): Promise<DbConnection> {
    return new Promise((resolve, reject) => {
      const conn = mysql.createConnection({
        ...target,
        user: account.user,
        password: account.password?.reveal(),
        // Only a backstop: the deadline below decides, after reading what already arrived.
        connectTimeout: timeouts.connectTimeoutMs + 1000,
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        multipleStatements,
        charset: 'utf8mb4',
        // mysql2 preallocates its prepared-statement cache per connection: four arrays of this many
        // slots (16,000 by default, ~0.5 MB). Regent sends text queries only, and a manager holds two
        // connections per instance: at 1,000 instances the default cost ~1 GB of heap.
        maxPreparedStatements: 8,
      });
      let settled = false;
      // TCP connect and handshake together: a server that accepts but never greets is frozen.
      const cancel = deadline(timeouts.connectTimeoutMs, () => {
        if (settled) return;
        settled = true;
        hardClose(conn);
        reject(new DbError('timeout', endpoint, `no handshake within ${timeouts.connectTimeoutMs} ms: server frozen or overloaded`, undefined, 'ETIMEDOUT'));
      });
      conn.connect((err) => {
        if (settled) return;
        settled = true;
        cancel();
        if (err) {
          hardClose(conn);
          reject(classifyError(err, endpoint, account.user));
        } else resolve(new DbConnection(conn, endpoint, timeouts, account.user, multipleStatements));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  onClose(listener: (err: DbError) => void): void {
    this.#closeListeners.push(listener);
  }

  /** Runs one statement. `?` placeholders are escaped client-side, so secrets never appear in SQL text we log. */
  query(sql: string, params: unknown[] = [], timeoutMs = this.timeouts.queryTimeoutMs): Promise<Row[]> {
    if (this.#closed) return Promise.reject(new DbError('lost', this.endpoint, 'connection already closed'));
    return new Promise((resolve, reject) => {
      let settled = false;
      const cancel = deadline(timeoutMs, () => {
        if (settled) return;
        settled = true;
        const e = classifyError({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' }, this.endpoint, this.user);
        // After a timeout the protocol state is unknown: this connection is done.
        this.destroy(e);
        reject(e);
      });
      this.#conn.query({ sql, values: params }, (err, rows) => {
        if (settled) return;
        settled = true;
        cancel();
        if (err) {
          const e = classifyError(err, this.endpoint, this.user);
          if (e.kind === 'timeout' || e.kind === 'lost') this.destroy(e);
          reject(e);
          return;
        }
        resolve(Array.isArray(rows) ? (rows as Row[]) : []);
      });
    });
  }

  /**
   * Several constant statements in one round trip (one write, one timeout), one result set
   * each. Needs a connection opened with `multipleStatements`.
   */
  async queryBatch(sql: string, count: number, timeoutMs = this.timeouts.queryTimeoutMs): Promise<Row[][]> {
    if (!this.multipleStatements) throw new Error(`${this.endpoint}: queryBatch on a connection without multipleStatements`);
    const rows = (await this.query(sql, [], timeoutMs)) as unknown[];
    // mysql2 nests the result sets only when there is more than one.
    const sets = (count === 1 ? [rows] : rows) as Row[][];
    if (sets.length !== count || !sets.every(Array.isArray)) throw new DbError('sql', this.endpoint, `expected ${count} result sets, got ${sets.length}`);
    return sets;
  }

  async queryOne(sql: string, params: unknown[] = [], timeoutMs?: number): Promise<Row | undefined> {
    const rows = await this.query(sql, params, timeoutMs);
    return rows[0];
  }

  destroy(reason?: DbError): void {
    if (!this.#closed) this.#markClosed(reason ?? new DbError('lost', this.endpoint, 'closed by Regent'));
    hardClose(this.#conn);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        hardClose(this.#conn);
        resolve();
      }, 500);
      this.#conn.end(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  #markClosed(err: DbError): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of this.#closeListeners.splice(0)) {
      try {
        l(err);
      } catch {
        // listeners must not break each other
      }
    }
  }
}
