import { createServer, type Server, type Socket } from 'node:net';
import { listenOn } from '../listen.ts';
import { createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import type { Account } from '../../config/load.ts';
import type { GtidState } from '../../gtid/index.ts';
import type { Logger } from '../../util/log.ts';
import type { Secret } from '../../util/secret.ts';
import { readServerVersion } from '../../doctor/server-version.ts';
import { familyOf } from '../../sql/families.ts';
import type { RoutingTable } from '../routing-table.ts';
import { AccountCache } from './accounts.ts';
import type { BackendConnection } from './backend.ts';
import type { SqlMetrics, StatementCounts } from './metrics.ts';
import { Session, type EndpointContext, type SqlSessionSettings } from './session.ts';

/** What the manager (or, later, whoever decides) pushes to the endpoint whenever its view changes. */
export interface SqlRouting {
  table: RoutingTable;
  /** Each instance's applied GTID position (observations' gtids.executed). */
  applied: Map<string, GtidState>;
  /** Seconds behind per replica (null: unknown); replicas missing here count as unknown. */
  lag?: Map<string, number | null>;
  flavor: 'mariadb' | 'mysql';
  /** Former primaries that were fenced (sessions on them stop), from the decision record. */
  fenced?: ReadonlySet<string>;
  /** A failover or switchover is under way (sessions busy on the primary stop). */
  changing?: boolean;
  /** Writes are held because the decision is too old to trust (no manager, no coordination): nothing goes on on the old primary. */
  stale?: boolean;
}

export interface SqlEndpointOptions {
  cluster: string;
  listen: { host: string; port: number };
  settings: SqlSessionSettings & { accountRefreshSeconds: number };
  /** The router service account: reads account hashes (SELECT on mysql.global_priv / mysql.user). */
  serviceAccount: Account;
  /** Passwords of accounts with other plugins than mysql_native_password, by user. */
  passwords: Map<string, Secret>;
  clientTls?: { cert: Buffer; key: Buffer; mode: 'required' | 'optional' };
  backendTls?: { ca?: Buffer; verify: boolean; required: boolean };
  /** Address of an instance id. */
  address: (id: string) => { host: string; port: number } | undefined;
  /** Instance ids in config order (where account hashes can be read from). */
  instances: string[];
  metrics: SqlMetrics;
  log: Logger;
}

const FALLBACK_VERSION = '5.5.5-10.11.0-MariaDB';

/**
 * The SQL-aware endpoint of one cluster: a MySQL-protocol listener whose sessions send reads to
 * replicas and everything else to the primary. It knows nothing of the manager: it is fed routing
 * snapshots through `update()`, so it can run wherever the data plane runs.
 */
export class SqlEndpoint {
  #server?: Server;
  #sessions = new Map<number, Session>();
  #routing: SqlRouting = { table: { writer: { mode: 'hold', reason: 'no routing table yet' }, readers: [], excluded: {} }, applied: new Map(), flavor: 'mariadb' };
  #applied = new Map<string, GtidState>();
  #learned = new Map<string, GtidState>();
  #lag = new Map<string, number | null>();
  #global?: GtidState;
  #writerWaiters: { resolve: (t: string | undefined) => void; timer: NodeJS.Timeout }[] = [];
  #cursor = 0;
  #version?: string;
  #versionPromise?: Promise<void>;
  #charset = 45;
  #accounts: AccountCache;
  #ctx: EndpointContext;
  #backends = { primary: 0, replica: 0 };
  #statements: StatementCounts;

  constructor(private readonly opts: SqlEndpointOptions) {
    this.#statements = opts.metrics.statementCounts(opts.cluster);
    const clientTls: SecureContext | undefined = opts.clientTls ? createSecureContext({ cert: opts.clientTls.cert, key: opts.clientTls.key }) : undefined;
    // An explicit `checkServerIdentity: undefined` would replace Node's default check (and trip
    // an internal assertion in tls.connect): the key is only there to turn the check off.
    const backendTls = opts.backendTls
      ? {
          options: { ...(opts.backendTls.ca ? { ca: opts.backendTls.ca } : {}), rejectUnauthorized: opts.backendTls.verify, ...(opts.backendTls.verify ? {} : { checkServerIdentity: () => undefined }) } as ConnectionOptions,
          required: opts.backendTls.required,
        }
      : undefined;
    this.#accounts = new AccountCache({
      account: opts.serviceAccount,
      sources: () => this.#sources(),
      dialect: () => familyOf(this.#routing.flavor).endpoint,
      periodMs: opts.settings.accountRefreshSeconds * 1000,
      connectTimeoutMs: opts.settings.connectTimeoutMs,
      log: opts.log,
      cluster: opts.cluster,
    });
    const labels = { cluster: opts.cluster };
    const self = this;
    this.#ctx = {
      cluster: opts.cluster,
      settings: { ...opts.settings, tlsMode: opts.clientTls?.mode },
      log: opts.log,
      metrics: opts.metrics,
      statements: this.#statements,
      clientTls,
      backendTls,
      dialect: () => familyOf(this.#routing.flavor).endpoint,
      serverVersion: () => this.#version ?? FALLBACK_VERSION,
      serverCharset: () => this.#charset,
      accounts: () => this.#accounts.rows,
      refreshAccounts: () => this.#accounts.refresh(),
      password: (user) => opts.passwords.get(user)?.reveal(),
      address: opts.address,
      table: () => this.#routing.table,
      applied: () => this.#applied,
      lag: () => this.#lag,
      globalWritten: () => {
        const p = this.#routing.table.writer.mode === 'route' ? this.#routing.applied.get(this.#routing.table.writer.target) : undefined;
        if (!p) return this.#global;
        try {
          return this.#global ? this.#global.union(p) : p;
        } catch {
          return this.#global;
        }
      },
      waitWriter: (ms) => this.#waitWriter(ms),
      mayFinishOn: (id) => {
        const r = this.#routing;
        return r.table.writer.mode === 'hold' && !r.stale && !(r.fenced?.has(id) ?? false);
      },
      isFenced: (id) => this.#routing.fenced?.has(id) ?? false,
      recovered: (kind, session, detail) => {
        opts.metrics.recoveries.inc({ cluster: opts.cluster, kind });
        opts.log.info({ event: 'sql_session_recovered', cluster: opts.cluster, session, kind, detail }, `SQL endpoint: session ${session}: ${kind} (${detail})`);
      },
      cursor: (next) => (next === undefined ? this.#cursor : (this.#cursor = next)),
      learnApplied: (id, g) => {
        const merge = (m: Map<string, GtidState>) => {
          const cur = m.get(id);
          try {
            m.set(id, cur ? cur.union(g) : g);
          } catch {
            m.set(id, g);
          }
        };
        merge(this.#learned);
        merge(this.#applied);
      },
      noteWrite: (g) => {
        try {
          this.#global = this.#global ? this.#global.union(g) : g;
        } catch {
          this.#global = g;
        }
      },
      parseGtid: (text) => familyOf(this.#routing.flavor).parseGtid(text),
      session: (id) => this.#sessions.get(id),
      backendOpened(b: BackendConnection, role: 'primary' | 'replica') {
        self.#backends[role]++;
        opts.metrics.backendConnections.set({ ...labels, role }, self.#backends[role]);
        opts.metrics.backendConnectionsTotal.inc({ ...labels, backend: b.id });
        if (!self.#version) {
          self.#version = b.greeting.version;
          self.#charset = b.greeting.charset;
        }
        b.onClose(() => {
          self.#backends[role]--;
          opts.metrics.backendConnections.set({ ...labels, role }, self.#backends[role]);
        });
      },
      closed: (s) => {
        if (this.#sessions.delete(s.id)) opts.metrics.sessions.set(labels, this.#sessions.size);
      },
    };
    // Series exist from the start, at zero.
    opts.metrics.sessions.set(labels, 0);
    opts.metrics.sessionsTotal.inc(labels, 0);
    for (const role of ['primary', 'replica']) opts.metrics.backendConnections.set({ ...labels, role }, 0);
    for (const outcome of ['caught_up', 'timeout', 'error']) opts.metrics.causalWaits.inc({ ...labels, outcome }, 0);
    for (const kind of ['moved', 'retried_read', 'retried_unsent', 'replayed', 'replay_refused', 'in_doubt']) opts.metrics.recoveries.inc({ ...labels, kind }, 0);
    opts.metrics.causalWaitSeconds.zero(labels);
    for (const reason of ['bad_password', 'unknown_user', 'plugin_unsupported', 'account_locked', 'tls_required', 'backend_refused']) opts.metrics.authFailures.inc({ ...labels, reason }, 0);
    for (const reason of ['read', 'read_only_transaction', 'hint']) opts.metrics.statements.inc({ ...labels, route: 'replica', reason }, 0);
    for (const reason of ['write', 'transaction', 'locking_read', 'session_bound', 'multi_statement', 'session_command', 'unsure', 'causal_wait', 'no_replica', 'hint'])
      opts.metrics.statements.inc({ ...labels, route: 'primary', reason }, 0);
  }

  get listen(): { host: string; port: number } {
    return this.opts.listen;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  async start(): Promise<void> {
    this.#accounts.start();
    this.#versionPromise = this.#probeVersion();
    const server = createServer({ noDelay: true }, (c) => this.#accept(c));
    // Through the data plane's registry: an upgrade hands this socket to the next process.
    await listenOn(server, this.opts.listen.host, this.opts.listen.port);
    server.on('error', (e) => this.opts.log.error({ event: 'sql_listener_error', cluster: this.opts.cluster, err: e.message }));
    this.#server = server;
    this.opts.log.info({ event: 'sql_endpoint_started', cluster: this.opts.cluster, listen: `${this.opts.listen.host}:${this.opts.listen.port}` }, `SQL endpoint of ${this.opts.cluster} on ${this.opts.listen.host}:${this.opts.listen.port}`);
  }

  async stop(): Promise<void> {
    this.#accounts.stop();
    this.#statements.release();
    for (const w of this.#writerWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    for (const s of [...this.#sessions.values()]) s.close('endpoint stopping');
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }

  /** A new routing snapshot: later statements route by it; sessions on a former primary move or close. */
  update(r: SqlRouting): void {
    const before = this.#routing.table;
    this.#routing = r;
    this.#applied = new Map(r.applied);
    for (const [id, g] of this.#learned) {
      const m = this.#applied.get(id);
      try {
        if (!m || !m.contains(g)) this.#applied.set(id, m ? m.union(g) : g);
        else this.#learned.delete(id);
      } catch {
        this.#learned.delete(id);
      }
    }
    this.#lag = r.lag ?? new Map();
    if (r.table.writer.mode === 'route') {
      const target = r.table.writer.target;
      for (const w of this.#writerWaiters.splice(0)) {
        clearTimeout(w.timer);
        w.resolve(target);
      }
    }
    if (JSON.stringify(before.writer) !== JSON.stringify(r.table.writer) || before.readers.join() !== r.table.readers.join()) {
      const replacing = { fenced: r.fenced ?? new Set<string>(), changing: r.changing ?? false };
      for (const s of this.#sessions.values()) s.tableChanged(r.table, replacing);
    }
  }

  /**
   * Resolves once no session has a transaction open or a command running on `primary` (the
   * switchover sets read_only only then), or after `timeoutMs`; resolves with how many still do.
   */
  async drain(primary: string, timeoutMs: number): Promise<number> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      let open = 0;
      for (const s of this.#sessions.values()) if (s.holdsPrimary(primary)) open++;
      if (open === 0 || performance.now() >= end) return open;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  #waitWriter(ms: number): Promise<string | undefined> {
    const w = this.#routing.table.writer;
    if (w.mode === 'route') return Promise.resolve(w.target);
    return new Promise((resolve) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          const i = this.#writerWaiters.indexOf(entry);
          if (i >= 0) this.#writerWaiters.splice(i, 1);
          resolve(undefined);
        }, ms),
      };
      this.#writerWaiters.push(entry);
    });
  }

  #sources(): { host: string; port: number; id: string }[] {
    const t = this.#routing.table;
    const order = [...(t.writer.mode === 'route' ? [t.writer.target] : []), ...t.readers, ...this.opts.instances];
    const seen = new Set<string>();
    const out: { host: string; port: number; id: string }[] = [];
    for (const id of order) {
      if (seen.has(id)) continue;
      seen.add(id);
      const a = this.opts.address(id);
      if (a) out.push({ ...a, id });
    }
    return out;
  }

  /** The greeting shows the servers' version (clients adapt to it), read once from any instance. */
  async #probeVersion(): Promise<void> {
    for (const src of this.#sources()) {
      try {
        const v = await readServerVersion(src.host, src.port, this.opts.settings.connectTimeoutMs);
        // MariaDB announces itself as "5.5.5-<version>" to clients; keep that.
        this.#version ??= /mariadb/i.test(v) && !v.startsWith('5.5.5-') ? `5.5.5-${v}` : v;
        return;
      } catch {
        // next
      }
    }
  }

  #accept(c: Socket): void {
    this.opts.metrics.sessionsTotal.inc({ cluster: this.opts.cluster });
    c.on('error', () => c.destroy());
    const begin = () => {
      const s = new Session(c, this.#ctx);
      this.#sessions.set(s.id, s);
      this.opts.metrics.sessions.set({ cluster: this.opts.cluster }, this.#sessions.size);
      s.start();
    };
    if (this.#version || !this.#versionPromise) begin();
    else {
      c.pause();
      void this.#versionPromise.finally(() => {
        c.resume();
        if (!c.destroyed) begin();
      });
    }
  }
}
