import { ALL_SLAVES_STATUS_COLUMNS, nameValueColumns, PROCESSLIST_ID_COLUMN, selectIntColumn, selectStringColumn } from './columns.ts';
import { formatGtid, parseGtid, type ReplicationModel, type SimInstance } from './replication-model.ts';
import { ResultHeader, SERVER_VERSION, type Reply } from './wire.ts';

/**
 * SQL text to answer. Each distinct statement text is compiled once (a regex match) into a
 * function that writes the whole response into a PacketWriter; Regent's probe statements are
 * constant strings, so a probe costs a map lookup plus the rows themselves.
 *
 * What is simulated: the probe statements (@@version, SHOW GLOBAL VARIABLES / STATUS ... WHERE
 * Variable_name IN (...), SHOW ALL SLAVES STATUS) and what a failover, a fence and a rejoin by
 * GTID send (SET GLOBAL read_only / rpl_semi_sync_* / gtid_slave_pos, STOP / START / RESET SLAVE,
 * CHANGE MASTER TO, the PROCESSLIST queries, KILL, MASTER_GTID_WAIT, INNODB_TRX, RESET MASTER).
 * Anything else gets ERR 1064 naming the statement, and is counted as unknown.
 */

export interface Session {
  readonly id: number;
  readonly user: string;
}

/** What a statement may touch besides the model: the instance's open sessions. */
export interface StatementHost {
  readonly model: ReplicationModel;
  readonly inst: SimInstance;
  sessions(): Iterable<Session>;
  /** Ends a session (KILL CONNECTION); false when no session has that id. */
  kill(id: number): boolean;
}

export interface Statement {
  /** For statistics: 'probe:replica-status' and so on. */
  readonly kind: string;
  /** Writes this statement's result (a result set, OK or ERR) into the reply. */
  run(reply: Reply, host: StatementHost, session: Session): void;
}

const onOff = (b: boolean): string => (b ? 'ON' : 'OFF');

/** A variable as SHOW VARIABLES prints it, or undefined when the simulator has no such variable. */
export function variableValue(name: string, model: ReplicationModel, inst: SimInstance, t: number): string | undefined {
  switch (name) {
    case 'server_id':
      return String(inst.serverId);
    case 'version':
      return SERVER_VERSION;
    case 'version_comment':
      return 'Regent probe-load simulator';
    case 'hostname':
      return inst.host;
    case 'port':
      return String(inst.port);
    case 'read_only':
      return onOff(inst.readOnly);
    case 'log_bin':
    case 'log_slave_updates':
    case 'gtid_strict_mode':
      return 'ON';
    case 'binlog_format':
      return 'ROW';
    case 'gtid_domain_id':
      return '0';
    case 'gtid_binlog_pos':
      return formatGtid(model.own(inst, t));
    case 'gtid_slave_pos':
      return formatGtid(model.applied(inst, t));
    case 'gtid_current_pos': {
      const own = model.own(inst, t);
      const applied = model.applied(inst, t);
      return formatGtid(own && applied ? (own.seq >= applied.seq ? own : applied) : (own ?? applied));
    }
    case 'rpl_semi_sync_master_enabled':
      return onOff(inst.semiSyncMaster);
    case 'rpl_semi_sync_slave_enabled':
      return onOff(inst.semiSyncSlave);
    case 'rpl_semi_sync_master_timeout':
      return String(inst.semiSyncTimeoutMs);
    case 'slave_net_timeout':
      return String(model.slaveNetTimeoutSec);
    default:
      return undefined;
  }
}

export function statusValue(name: string, model: ReplicationModel, inst: SimInstance, t: number): string | undefined {
  switch (name) {
    case 'rpl_semi_sync_master_status':
      return onOff(inst.semiSyncMaster);
    case 'rpl_semi_sync_master_clients':
      return String(model.semiSyncClients(inst, t));
    case 'rpl_semi_sync_slave_status':
      return onOff(inst.semiSyncSlave && model.link(inst, t)?.io === 'yes');
    case 'uptime':
      return String(Math.max(0, Math.floor((t - inst.livenessSince) / 1000)));
    default:
      return undefined;
  }
}

const VARIABLE_NAMES = ['binlog_format', 'gtid_binlog_pos', 'gtid_current_pos', 'gtid_domain_id', 'gtid_slave_pos', 'gtid_strict_mode', 'hostname', 'log_bin', 'log_slave_updates', 'port', 'read_only', 'rpl_semi_sync_master_enabled', 'rpl_semi_sync_master_timeout', 'rpl_semi_sync_slave_enabled', 'server_id', 'slave_net_timeout', 'version', 'version_comment'];
const STATUS_NAMES = ['Rpl_semi_sync_master_clients', 'Rpl_semi_sync_master_status', 'Rpl_semi_sync_slave_status', 'Uptime'];

/** @@ variables that SELECT returns as integers (booleans as 1/0), as the server does. */
const NUMERIC_SELECT = new Set(['server_id', 'port', 'slave_net_timeout', 'rpl_semi_sync_master_timeout', 'gtid_domain_id', 'read_only', 'log_bin', 'log_slave_updates', 'gtid_strict_mode', 'rpl_semi_sync_master_enabled', 'rpl_semi_sync_slave_enabled']);

const VARS_HEADER = new ResultHeader(nameValueColumns('SESSION_VARIABLES'));
const STATUS_HEADER = new ResultHeader(nameValueColumns('SESSION_STATUS'));
const SLAVES_HEADER = new ResultHeader(ALL_SLAVES_STATUS_COLUMNS);
const PROCESSLIST_HEADER = new ResultHeader([PROCESSLIST_ID_COLUMN]);
const GTID_WAIT_HEADER = new ResultHeader([{ ...selectIntColumn('result'), type: 0x03, length: 2, flags: 0x1 | 0x80 | 0x8000 }]);
const INNODB_TRX_HEADER = new ResultHeader([selectIntColumn('id'), selectIntColumn('secs'), selectIntColumn('rows_modified')]);
const BINARY_LOGS_HEADER = new ResultHeader([selectStringColumn('Log_name'), selectIntColumn('File_size')]);
const INNODB_STATUS_HEADER = new ResultHeader([selectStringColumn('Type'), selectStringColumn('Name'), selectStringColumn('Status')]);
/** A simulated server has no client transactions: an empty list, framed as the server frames it. */
const INNODB_STATUS_TEXT = '------------\nTRANSACTIONS\n------------\nLIST OF TRANSACTIONS FOR EACH SESSION:\n--------\nFILE I/O\n--------\n';

/** Which of the simulator's names a `LIKE` pattern or an `IN (...)` list selects (case-insensitive, sorted as the server sorts). */
function selectNames(all: readonly string[], where: string | undefined): string[] {
  if (!where) return [...all];
  const inList = /^WHERE\s+Variable_name\s+IN\s*\(([^)]*)\)$/i.exec(where);
  if (inList) {
    const wanted = new Set(inList[1]!.split(',').map((s) => s.trim().replace(/^'(.*)'$/, '$1').toLowerCase()));
    return all.filter((n) => wanted.has(n.toLowerCase()));
  }
  const like = /^(?:WHERE\s+Variable_name\s+)?LIKE\s+'([^']*)'$/i.exec(where);
  if (like) {
    const re = new RegExp(`^${like[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.')}$`, 'i');
    return all.filter((n) => re.test(n));
  }
  throw new Error(`unsupported condition: ${where}`);
}

function nameValue(kind: string, header: ResultHeader, names: string[], value: (n: string, model: ReplicationModel, inst: SimInstance, t: number) => string | undefined): Statement {
  const lower = names.map((n) => n.toLowerCase());
  return {
    kind,
    run(reply, host) {
      const t = host.model.now();
      reply.beginRows(header);
      for (let i = 0; i < names.length; i++) {
        const v = value(lower[i]!, host.model, host.inst, t);
        if (v !== undefined) reply.row().lenencString(names[i]!).lenencString(v).end();
      }
      reply.endRows();
    },
  };
}

/** SHOW ALL SLAVES STATUS: one row for the default connection, none without a source. */
const replicaStatus: Statement = {
  kind: 'probe:replica-status',
  run(reply, { model, inst }) {
    const t = model.now();
    const c = inst.channel;
    reply.beginRows(SLAVES_HEADER);
    if (c) {
      const l = model.link(inst, t)!;
      const received = model.received(inst, t);
      const applied = model.applied(inst, t);
      const readPos = String(330 + 300 * (received?.seq ?? 0));
      const execPos = String(330 + 300 * (applied?.seq ?? 0));
      const sqlState = c.sqlRunning ? 'Slave has read all relay log; waiting for more updates' : '';
      const behind = model.secondsBehind(inst, t);
      const w = reply.row();
      w.value('') // Connection_name
        .value(sqlState)
        .value(l.ioState)
        .value(c.host)
        .value(c.user)
        .value(String(c.port))
        .value(String(c.connectRetrySec))
        .value('mariadb-bin.000001')
        .value(readPos)
        .value('relay-bin.000002')
        .value(String(555 + 300 * (applied?.seq ?? 0)))
        .value('mariadb-bin.000001')
        .value(l.io === 'yes' ? 'Yes' : l.io === 'connecting' ? 'Connecting' : 'No')
        .value(c.sqlRunning ? 'Yes' : 'No');
      for (let i = 0; i < 6; i++) w.value(''); // Replicate_* filters
      w.value('0') // Last_Errno
        .value('') // Last_Error
        .value('0') // Skip_Counter
        .value(execPos)
        .value(String(900 + 300 * (received?.seq ?? 0))) // Relay_Log_Space
        .value('None')
        .value('')
        .value('0')
        .value('No'); // Master_SSL_Allowed
      for (let i = 0; i < 5; i++) w.value(''); // Master_SSL_*
      w.value(behind === null ? null : String(behind))
        .value('No')
        .value(String(l.ioErrno))
        .value(l.ioError)
        .value('0')
        .value('')
        .value('') // Replicate_Ignore_Server_Ids
        .value(String(model.sourceOf(inst)?.serverId ?? 0))
        .value('')
        .value('')
        .value(c.useGtid)
        .value(formatGtid(received))
        .value('')
        .value('')
        .value('optimistic')
        .value('0') // SQL_Delay
        .value(null) // SQL_Remaining_Delay
        .value(sqlState)
        .value('0')
        .value('0')
        .value(String(applied?.seq ?? 0)) // Slave_Transactional_Groups
        .value('')
        .value('0')
        .value('1073741824')
        .value(String(7 + 3 * (applied?.seq ?? 0)))
        .value(String(model.heartbeats(inst, t)))
        .value(c.heartbeatPeriodSec.toFixed(3))
        .value(formatGtid(applied));
      w.end();
    }
    reply.endRows();
  },
};

function ok(kind: string, apply: (host: StatementHost) => void): Statement {
  return {
    kind,
    run(reply, host) {
      apply(host);
      reply.ok();
    },
  };
}

/** A statement the simulator refuses the way MariaDB would (the server's errno and message). */
class SqlError extends Error {
  constructor(
    readonly errno: number,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
  }
}

function guarded(kind: string, apply: (host: StatementHost) => void): Statement {
  return {
    kind,
    run(reply, host) {
      try {
        apply(host);
        reply.ok();
      } catch (e) {
        if (!(e instanceof SqlError)) throw e;
        reply.err(e.errno, e.sqlState, e.message);
      }
    },
  };
}

const runningSlave = (): SqlError => new SqlError(1198, 'HY000', "This operation cannot be performed as you have a running slave ''; run STOP SLAVE '' first");

function boolSetting(v: string): boolean {
  const t = v.trim().replace(/^'(.*)'$/, '$1').toUpperCase();
  return t === 'ON' || t === '1' || t === 'TRUE';
}

function setGlobal(name: string, rawValue: string): Statement {
  const value = rawValue.trim();
  switch (name.toLowerCase()) {
    case 'read_only':
      return ok('action:set-read-only', ({ model, inst }) => model.change(inst, () => (inst.readOnly = boolSetting(value))));
    case 'rpl_semi_sync_master_enabled':
      return ok('action:semi-sync', ({ model, inst }) => model.change(inst, () => (inst.semiSyncMaster = boolSetting(value))));
    case 'rpl_semi_sync_slave_enabled':
      return ok('action:semi-sync', ({ model, inst }) => model.change(inst, () => (inst.semiSyncSlave = boolSetting(value))));
    case 'rpl_semi_sync_master_timeout':
      return ok('action:semi-sync', ({ inst }) => (inst.semiSyncTimeoutMs = Number(value)));
    case 'gtid_slave_pos':
      return guarded('action:set-gtid-slave-pos', ({ model, inst }) => {
        if (inst.channel?.ioRunning || inst.channel?.sqlRunning) throw runningSlave();
        model.change(inst, () => {
          const g = parseGtid(value.replace(/^'(.*)'$/, '$1'));
          inst.snap = { ...inst.snap, applied: g, received: g };
        });
      });
    default:
      return ok('action:set-other', () => undefined);
  }
}

function slaveThreads(verb: 'START' | 'STOP', which: string | undefined): Statement {
  const io = !which || /IO_THREAD/i.test(which);
  const sql = !which || /SQL_THREAD/i.test(which);
  return guarded(`action:${verb.toLowerCase()}-slave`, ({ model, inst }) => {
    const c = inst.channel;
    if (!c) {
      if (verb === 'START') throw new SqlError(1200, 'HY000', 'Misconfigured slave: MASTER_HOST was not set; Fix in config file or with CHANGE MASTER TO');
      return; // STOP SLAVE without a source: a warning only
    }
    model.change(inst, () => {
      if (io) c.ioRunning = verb === 'START';
      if (sql) c.sqlRunning = verb === 'START';
      if (verb === 'START' && io) inst.scriptedIo = undefined;
    });
  });
}

const resetSlaveAll = guarded('action:reset-slave', ({ model, inst }) => {
  if (inst.channel?.ioRunning || inst.channel?.sqlRunning) throw runningSlave();
  model.change(inst, () => {
    inst.channel = undefined;
    inst.scriptedIo = undefined;
    inst.lagSeconds = 0;
  });
});

const resetMaster = ok('action:reset-master', ({ model, inst }) => model.change(inst, () => (inst.snap = { ...inst.snap, own: undefined })));

/** CHANGE MASTER TO k = v, ...: values as mysql2 escapes them ('text', numbers, bare words). */
function changeMaster(assignments: string): Statement {
  const values = new Map<string, string>();
  const re = /(\w+)\s*=\s*('(?:[^'\\]|\\.|'')*'|[^,\s]+)/g;
  for (let m = re.exec(assignments); m; m = re.exec(assignments)) values.set(m[1]!.toUpperCase(), m[2]!.replace(/^'(.*)'$/s, '$1'));
  return guarded('action:change-master', ({ model, inst }) => {
    const prev = inst.channel;
    if (prev?.ioRunning || prev?.sqlRunning) throw runningSlave();
    const host = values.get('MASTER_HOST') ?? prev?.host;
    if (!host) throw new SqlError(1200, 'HY000', 'Misconfigured slave: MASTER_HOST was not set');
    const mode = (values.get('MASTER_USE_GTID') ?? '').toLowerCase();
    model.change(inst, () => {
      inst.channel = {
        host,
        port: Number(values.get('MASTER_PORT') ?? prev?.port ?? 3306),
        user: values.get('MASTER_USER') ?? prev?.user ?? '',
        heartbeatPeriodSec: Number(values.get('MASTER_HEARTBEAT_PERIOD') ?? prev?.heartbeatPeriodSec ?? model.slaveNetTimeoutSec / 2),
        connectRetrySec: Number(values.get('MASTER_CONNECT_RETRY') ?? prev?.connectRetrySec ?? 60),
        useGtid: mode === 'current_pos' ? 'Current_Pos' : 'Slave_Pos',
        ioRunning: false,
        sqlRunning: false,
      };
      inst.scriptedIo = undefined;
      // The IO thread will fetch from gtid_slave_pos (or gtid_current_pos): Gtid_IO_Pos restarts there.
      const s = inst.snap;
      const from = mode === 'current_pos' && s.own && (!s.applied || s.own.seq > s.applied.seq) ? s.own : s.applied;
      inst.snap = { ...s, received: from, applied: from ?? s.applied, heartbeats: 0 };
    });
  });
}

function processlist(excludedUsers: string[] | undefined, slaveIoOnly: boolean): Statement {
  return {
    kind: slaveIoOnly ? 'action:processlist-io-thread' : 'action:processlist-sessions',
    run(reply, host, session) {
      const rows: string[][] = [];
      if (slaveIoOnly) {
        if (host.inst.channel?.ioRunning && host.model.link(host.inst)?.io !== 'no') rows.push([String(host.inst.ioThreadId)]);
      } else {
        for (const s of host.sessions()) if (s.id !== session.id && !excludedUsers?.includes(s.user)) rows.push([String(s.id)]);
      }
      reply.resultSet(PROCESSLIST_HEADER, rows);
    },
  };
}

function kill(id: number): Statement {
  return guarded('action:kill', (host) => {
    const c = host.inst.channel;
    if (c && id === host.inst.ioThreadId) {
      host.model.change(host.inst, () => (c.ioRunning = false));
      return;
    }
    if (!host.kill(id)) throw new SqlError(1094, 'HY000', `Unknown thread id: ${id}`);
  });
}

/** MASTER_GTID_WAIT answers at once: the simulator has nothing to wait for (0 reached, -1 not). */
function gtidWait(pos: string): Statement {
  const want = parseGtid(pos);
  return {
    kind: 'action:gtid-wait',
    run(reply, { model, inst }) {
      const have = model.applied(inst);
      const reached = !want || (have !== undefined && have.seq >= want.seq);
      reply.resultSet(GTID_WAIT_HEADER, [[reached ? '0' : '-1']]);
    },
  };
}

function selectVariables(list: string): Statement {
  const items = list.split(',').map((part) => {
    const m = /^\s*@@(?:global\.|session\.)?(\w+)(?:\s+AS\s+`?(\w+)`?)?\s*$/i.exec(part);
    if (!m) throw new Error(`unsupported select item: ${part}`);
    const name = m[1]!.toLowerCase();
    return { name, alias: m[2] ?? part.trim(), numeric: NUMERIC_SELECT.has(name) };
  });
  const header = new ResultHeader(items.map((i) => (i.numeric ? selectIntColumn(i.alias) : selectStringColumn(i.alias))));
  return {
    kind: items.some((i) => i.name === 'version') ? 'probe:version' : 'select-variables',
    run(reply, { model, inst }) {
      const t = model.now();
      const row = items.map((i) => {
        const v = variableValue(i.name, model, inst, t);
        if (v === undefined) return null;
        if (!i.numeric) return v;
        return v === 'ON' ? '1' : v === 'OFF' ? '0' : v;
      });
      reply.resultSet(header, [row]);
    },
  };
}

const empty = (kind: string, header: ResultHeader): Statement => ({ kind, run: (reply) => reply.resultSet(header, []) });

/** Statement patterns, tried in order on the normalized text. */
const PATTERNS: [RegExp, (m: RegExpExecArray) => Statement][] = [
  [/^SELECT\s+(@@.+)$/i, (m) => selectVariables(m[1]!)],
  [/^SHOW\s+(?:GLOBAL\s+|SESSION\s+)?VARIABLES(?:\s+(.+))?$/i, (m) => nameValue('probe:variables', VARS_HEADER, selectNames(VARIABLE_NAMES, m[1]), variableValue)],
  [/^SHOW\s+(?:GLOBAL\s+|SESSION\s+)?STATUS(?:\s+(.+))?$/i, (m) => nameValue('probe:status', STATUS_HEADER, selectNames(STATUS_NAMES, m[1]), statusValue)],
  [/^SHOW\s+ALL\s+SLAVES\s+STATUS$/i, () => replicaStatus],
  [/^SET\s+GLOBAL\s+(\w+)\s*=\s*(.+)$/i, (m) => setGlobal(m[1]!, m[2]!)],
  [/^SET\s+(?:SESSION\s+)?\w+\s*=.+$/i, () => ok('set-session', () => undefined)],
  [/^(START|STOP)\s+SLAVE(?:\s+(IO_THREAD|SQL_THREAD))?$/i, (m) => slaveThreads(m[1]!.toUpperCase() as 'START' | 'STOP', m[2])],
  [/^RESET\s+SLAVE\s+ALL$/i, () => resetSlaveAll],
  [/^RESET\s+MASTER$/i, () => resetMaster],
  [/^CHANGE\s+MASTER\s+TO\s+(.+)$/is, (m) => changeMaster(m[1]!)],
  [/^SELECT\s+ID\s+AS\s+id\s+FROM\s+information_schema\.PROCESSLIST\s+WHERE\s+COMMAND\s*=\s*'Slave_IO'$/i, () => processlist(undefined, true)],
  [
    /^SELECT\s+ID\s+AS\s+id\s+FROM\s+information_schema\.PROCESSLIST\s+WHERE\s+ID\s*<>\s*CONNECTION_ID\(\)\s+AND\s+USER\s+NOT\s+IN\s*\(([^)]*)\).*$/i,
    (m) => processlist(m[1]!.split(',').map((s) => s.trim().replace(/^'(.*)'$/, '$1')), false),
  ],
  [/^KILL\s+(?:CONNECTION\s+|QUERY\s+)?(\d+)$/i, (m) => kill(Number(m[1]))],
  [/^SELECT\s+MASTER_GTID_WAIT\(\s*'([^']*)'\s*,\s*[\d.]+\s*\)\s+AS\s+result$/i, (m) => gtidWait(m[1]!)],
  [/^SELECT\s+trx_id\s+AS\s+id\b.*INNODB_TRX.*$/is, () => empty('action:innodb-trx', INNODB_TRX_HEADER)],
  [/^SHOW\s+ENGINE\s+INNODB\s+STATUS$/i, () => ({ kind: 'action:innodb-status', run: (reply) => reply.resultSet(INNODB_STATUS_HEADER, [['InnoDB', '', INNODB_STATUS_TEXT]]) })],
  [/^SHOW\s+BINARY\s+LOGS$/i, () => ({ kind: 'show-binary-logs', run: (reply) => reply.resultSet(BINARY_LOGS_HEADER, [['mariadb-bin.000001', '1048576']]) })],
];

function unknownStatement(sql: string, why?: string): Statement {
  return {
    kind: 'unknown',
    run(reply) {
      reply.err(1064, '42000', `statement not simulated by regent-sim${why ? ` (${why})` : ''}: ${sql.slice(0, 200)}`);
    },
  };
}

/**
 * Splits a multi-statement query on the semicolons outside quotes (a probe sends its three
 * statements in one round trip).
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let quote = '';
  let from = 0;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = '';
    } else if (ch === "'" || ch === '"' || ch === '`') quote = ch;
    else if (ch === ';') {
      out.push(sql.slice(from, i));
      from = i + 1;
    }
  }
  out.push(sql.slice(from));
  return out.filter((x) => x.trim() !== '');
}

/**
 * Compiled statements by exact query text. Statements carrying ids or positions (KILL 123,
 * MASTER_GTID_WAIT) vary, so the cache is bounded: past its size it starts over.
 */
export class StatementCache {
  readonly #cache = new Map<string, readonly Statement[]>();
  constructor(readonly maxEntries = 2000) {}

  get(sql: string): readonly Statement[] {
    const hit = this.#cache.get(sql);
    if (hit) return hit;
    const compiled = splitStatements(sql).map(compileStatement);
    if (this.#cache.size >= this.maxEntries) this.#cache.clear();
    this.#cache.set(sql, compiled);
    return compiled;
  }
}

export function compileStatement(sql: string): Statement {
  const text = sql.trim().replace(/;\s*$/, '').replace(/\s+/g, ' ');
  for (const [re, make] of PATTERNS) {
    const m = re.exec(text);
    if (!m) continue;
    try {
      return make(m);
    } catch (e) {
      return unknownStatement(text, (e as Error).message);
    }
  }
  return unknownStatement(text);
}
