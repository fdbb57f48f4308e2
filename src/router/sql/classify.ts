/**
 * The statement classifier: a pure function from SQL text to what the statement needs. It reads
 * tokens, never parses fully; every shape it does not know is `unsure`, and unsure goes to the
 * primary. Executable comments (`/*!40101 ... *\/`, `/*M!100100 ... *\/`) count as code, as the
 * server runs them; other comments are skipped except routing hints (`/* regent:primary *\/`,
 * `/* regent:replica *\/`).
 */

export type StatementKind =
  /** May run on a replica (autocommit, no side effect, no session-bound result). */
  | 'read'
  /** SELECT ... FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE. */
  | 'locking-read'
  /** Changes data or schema, or has effects beyond the statement. */
  | 'write'
  /** BEGIN / START TRANSACTION (read-write). */
  | 'begin'
  /** START TRANSACTION READ ONLY: may run on a replica as a whole. */
  | 'begin-read-only'
  /** COMMIT / ROLLBACK: ends the transaction where it runs. */
  | 'end'
  /** SAVEPOINT, RELEASE SAVEPOINT, ROLLBACK TO: goes where the transaction is. */
  | 'savepoint'
  /** Changes session state the router records (SET of session variables, USE): runs on the primary, replayed elsewhere. */
  | 'session'
  /** Reads what the previous statement left (SHOW WARNINGS, GET DIAGNOSTICS): goes where that one ran. */
  | 'last'
  | 'unsure';

export interface Classification {
  kind: StatementKind;
  /** Why, in a word or two (logs and metrics). */
  reason: string;
  /** The session must stay on the primary from now on (temporary table, lock, user variable...). */
  pin?: string;
  /** Several statements in one COM_QUERY: always the primary. */
  multi?: boolean;
  hint?: 'primary' | 'replica';
  /** Session state that session tracking does not report (SET ROLE): its text is replayed as is. */
  replay?: boolean;
  /** Changes session_track_*: the router can no longer see the session's GTIDs. */
  trackingChanged?: boolean;
  /** KILL [QUERY|CONNECTION] n / KILL QUERY ID n: the id is one the client got from the router. */
  kill?: { query: boolean; id: number };
}

// ---- lexer ------------------------------------------------------------------------------

const enum T {
  Word,
  Quoted,
  Number,
  UserVar,
  SysVar,
  Punct,
}

interface Token {
  t: T;
  /** Upper-cased word, punctuation character, variable name (lower-cased, scope prefix removed). */
  v: string;
  /** For system variables: GLOBAL / SESSION / '' */
  scope?: string;
  /** Backquoted identifier (never a keyword). */
  quotedIdent?: boolean;
}

interface Lexed {
  statements: Token[][];
  hint?: 'primary' | 'replica';
}

const isWordStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c >= 128;
const isWordChar = (c: number) => isWordStart(c) || (c >= 48 && c <= 57);
const isDigit = (c: number) => c >= 48 && c <= 57;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;

function lex(sql: string): Lexed {
  const statements: Token[][] = [];
  let cur: Token[] = [];
  let hint: Lexed['hint'];
  const n = sql.length;
  let i = 0;
  /** Inside an executable comment: its closing `*\/` is skipped. */
  let inExec = false;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    // Comments.
    if (c === 35 /* # */ || (c === 45 && sql.charCodeAt(i + 1) === 45 && (i + 2 >= n || isSpace(sql.charCodeAt(i + 2))))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === 42 /* * */ && inExec && sql.charCodeAt(i + 1) === 47) {
      inExec = false;
      i += 2;
      continue;
    }
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      // /*! or /*M! : executable comment, optionally with a version number.
      let j = i + 2;
      if (sql.charCodeAt(j) === 77 /* M */ && sql.charCodeAt(j + 1) === 33) j++;
      if (sql.charCodeAt(j) === 33 /* ! */) {
        j++;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        inExec = true;
        i = j;
        continue;
      }
      const end = sql.indexOf('*/', i + 2);
      const body = sql.slice(i + 2, end < 0 ? n : end);
      const m = /^\s*\+?\s*regent:(primary|replica)\s*$/i.exec(body);
      if (m) hint = m[1]!.toLowerCase() as 'primary' | 'replica';
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (c === 39 || c === 34) {
      // 'string' or "string" (both are strings unless ANSI_QUOTES; as an identifier it is harmless here).
      i = skipQuoted(sql, i, c);
      cur.push({ t: T.Quoted, v: '' });
      continue;
    }
    if (c === 96 /* ` */) {
      const end = skipQuoted(sql, i, 96);
      cur.push({ t: T.Word, v: sql.slice(i + 1, end - 1).replace(/``/g, '`').toUpperCase(), quotedIdent: true });
      i = end;
      continue;
    }
    if (c === 64 /* @ */) {
      if (sql.charCodeAt(i + 1) === 64) {
        let j = i + 2;
        while (j < n && (isWordChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j++;
        let name = sql.slice(i + 2, j).toLowerCase();
        let scope = '';
        const dot = name.indexOf('.');
        if (dot >= 0) {
          scope = name.slice(0, dot).toUpperCase();
          name = name.slice(dot + 1);
          if (scope === 'LOCAL') scope = 'SESSION';
        }
        cur.push({ t: T.SysVar, v: name, scope });
        i = j;
        continue;
      }
      let j = i + 1;
      const q = sql.charCodeAt(j);
      if (q === 39 || q === 34 || q === 96) j = skipQuoted(sql, j, q);
      else while (j < n && (isWordChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j++;
      cur.push({ t: T.UserVar, v: sql.slice(i + 1, j).toLowerCase() });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      let j = i + 1;
      while (j < n && (isWordChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j++;
      cur.push({ t: T.Number, v: sql.slice(i, j) });
      i = j;
      continue;
    }
    if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordChar(sql.charCodeAt(j))) j++;
      // x'..', b'..', N'..', _utf8'..': string literals with a prefix.
      const nx = sql.charCodeAt(j);
      if ((nx === 39 || nx === 34) && /^(x|b|n|_[a-z0-9]+)$/i.test(sql.slice(i, j))) {
        i = skipQuoted(sql, j, nx);
        cur.push({ t: T.Quoted, v: '' });
        continue;
      }
      cur.push({ t: T.Word, v: sql.slice(i, j).toUpperCase() });
      i = j;
      continue;
    }
    if (c === 59 /* ; */) {
      if (cur.length > 0) statements.push(cur);
      cur = [];
      i++;
      continue;
    }
    // := and other punctuation, one character at a time (':=' becomes ':' '=').
    cur.push({ t: T.Punct, v: sql[i]! });
    i++;
  }
  if (cur.length > 0) statements.push(cur);
  return { statements, hint };
}

function skipQuoted(sql: string, start: number, q: number): number {
  const n = sql.length;
  let i = start + 1;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 92 /* \ */ && q !== 96) {
      i += 2;
      continue;
    }
    if (c === q) {
      if (sql.charCodeAt(i + 1) === q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return n;
}

// ---- knowledge -------------------------------------------------------------------------

/** Built-in functions that neither write nor depend on the session beyond its replayed state. */
const PURE_FUNCTIONS = new Set(
  `ABS ACOS ADDDATE ADDTIME AES_DECRYPT AES_ENCRYPT ANY_VALUE ASCII ASIN ATAN ATAN2 AVG BENCHMARK BIN BINARY BIT_AND BIT_COUNT BIT_LENGTH BIT_OR BIT_XOR
  CAST CEIL CEILING CHAR CHARACTER_LENGTH CHARSET CHAR_LENGTH CHR COALESCE COERCIBILITY COLLATION COMPRESS CONCAT CONCAT_WS CONV CONVERT CONVERT_TZ COS COT COUNT CRC32 CRC32C
  CUME_DIST CURDATE CURRENT_DATE CURRENT_ROLE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURTIME DATABASE DATE DATEDIFF DATE_ADD DATE_FORMAT DATE_SUB DAY DAYNAME DAYOFMONTH
  DAYOFWEEK DAYOFYEAR DECODE DECODE_HISTOGRAM DEGREES DENSE_RANK DES_DECRYPT DES_ENCRYPT ELT ENCODE ENCRYPT EXP EXPORT_SET EXTRACT EXTRACTVALUE FIELD FIND_IN_SET FIRST_VALUE FLOOR FORMAT
  FORMAT_BYTES FORMAT_PICO_TIME FROM_BASE64 FROM_DAYS FROM_UNIXTIME GREATEST GROUP_CONCAT HEX HOUR IF IFNULL INET6_ATON INET6_NTOA INET_ATON INET_NTOA INSERT INSTR INTERVAL IS_IPV4
  IS_IPV4_COMPAT IS_IPV4_MAPPED IS_IPV6 ISNULL JSON_ARRAY JSON_ARRAYAGG JSON_ARRAY_APPEND JSON_ARRAY_INSERT JSON_ARRAY_INTERSECT JSON_COMPACT JSON_CONTAINS JSON_CONTAINS_PATH JSON_DEPTH JSON_DETAILED
  JSON_EQUALS JSON_EXISTS JSON_EXTRACT JSON_INSERT JSON_KEYS JSON_LENGTH JSON_LOOSE JSON_MERGE JSON_MERGE_PATCH JSON_MERGE_PRESERVE JSON_NORMALIZE JSON_OBJECT JSON_OBJECTAGG
  JSON_OBJECT_FILTER_KEYS JSON_OBJECT_TO_ARRAY JSON_OVERLAPS JSON_PRETTY JSON_QUERY JSON_QUOTE JSON_REMOVE JSON_REPLACE JSON_SCHEMA_VALID JSON_SEARCH JSON_SET JSON_TABLE JSON_TYPE JSON_UNQUOTE
  JSON_VALID JSON_VALUE LAG LAST_DAY LAST_VALUE LCASE LEAD LEAST LEFT LENGTH LENGTHB LN LOCALTIME LOCALTIMESTAMP LOCATE LOG LOG10 LOG2 LOWER LPAD LTRIM MAKEDATE MAKETIME MAKE_SET MAX MD5
  MEDIAN MICROSECOND MID MIN MINUTE MOD MONTH MONTHNAME NATURAL_SORT_KEY NOW NTH_VALUE NTILE NULLIF NVL NVL2 OCT OCTET_LENGTH ORD PERCENTILE_CONT PERCENTILE_DISC PERCENT_RANK PERIOD_ADD
  PERIOD_DIFF PI POSITION POW POWER QUARTER QUOTE RADIANS RAND RANK REGEXP REGEXP_INSTR REGEXP_LIKE REGEXP_REPLACE REGEXP_SUBSTR REPEAT REPLACE REVERSE RIGHT RLIKE ROUND ROW_NUMBER RPAD RTRIM
  SCHEMA SEC_TO_TIME SECOND SESSION_USER SFORMAT SHA SHA1 SHA2 SIGN SIN SOUNDEX SPACE SQRT STD STDDEV STDDEV_POP STDDEV_SAMP STRCMP STR_TO_DATE SUBDATE SUBSTR SUBSTRING SUBSTRING_INDEX
  SUBTIME SUM SYSDATE SYSTEM_USER SYS_GUID TAN TIME TIMEDIFF TIMESTAMP TIMESTAMPADD TIMESTAMPDIFF TIME_FORMAT TIME_TO_SEC TO_BASE64 TO_CHAR TO_DAYS TO_SECONDS TRIM TRUNCATE UCASE
  UNCOMPRESS UNCOMPRESSED_LENGTH UNHEX UNIX_TIMESTAMP UPDATEXML UPPER USER UTC_DATE UTC_TIME UTC_TIMESTAMP UUID UUID_SHORT VALUES VARIANCE VAR_POP VAR_SAMP VERSION WEEK WEEKDAY
  WEEKOFYEAR WEIGHT_STRING YEAR YEARWEEK SLEEP ST_ASTEXT ST_ASBINARY ST_GEOMFROMTEXT ST_DISTANCE ST_CONTAINS ST_WITHIN ST_X ST_Y POINT ASTEXT GEOMFROMTEXT ROW`.split(/\s+/),
);

/** Functions whose result belongs to the session on the primary: the session stays there. */
const SESSION_FUNCTIONS = new Map([
  ['GET_LOCK', 'GET_LOCK'],
  ['RELEASE_LOCK', 'GET_LOCK'],
  ['RELEASE_ALL_LOCKS', 'GET_LOCK'],
  ['IS_FREE_LOCK', 'GET_LOCK'],
  ['IS_USED_LOCK', 'GET_LOCK'],
  ['LAST_INSERT_ID', 'LAST_INSERT_ID()'],
  ['FOUND_ROWS', 'FOUND_ROWS()'],
  ['ROW_COUNT', 'ROW_COUNT()'],
  ['CONNECTION_ID', 'CONNECTION_ID()'],
  ['NEXTVAL', 'sequence'],
  ['LASTVAL', 'sequence'],
  ['SETVAL', 'sequence'],
]);

/** Words that may stand before '(' without being a function call. */
const PAREN_KEYWORDS = new Set(
  `AND OR NOT XOR IN EXISTS WHERE ON USING FROM JOIN AS SELECT VALUES VALUE OVER WHEN THEN ELSE CASE HAVING BY LIKE BETWEEN IS ANY ALL SOME LATERAL UNION INTERSECT EXCEPT DISTINCT
  WITH RECURSIVE OUTER INNER LEFT RIGHT CROSS NATURAL STRAIGHT_JOIN LIMIT OFFSET WINDOW PARTITION ORDER GROUP AGAINST MATCH DIV MOD ESCAPE INTO SET REGEXP RLIKE SOUNDS NULL
  COLUMNS PATH NESTED ORDINALITY EMPTY ERROR DEFAULT LOCKED MODE SHARE NOWAIT SKIP WAIT`.split(/\s+/),
);

/** System variables whose value is the previous statement's or this connection's own: primary, session pinned. */
const SESSION_BOUND_VARS = new Set(['last_insert_id', 'identity', 'insert_id', 'last_gtid', 'rand_seed1', 'rand_seed2', 'pseudo_thread_id', 'gtid_seq_no']);
/** System variables that say something about the previous statement: read where it ran. */
const LAST_STATEMENT_VARS = new Set(['warning_count', 'error_count']);
/** Setting these ties the session to the primary (replication and identity plumbing). */
const PIN_ON_SET = new Set(['gtid_seq_no', 'gtid_domain_id', 'server_id', 'sql_log_bin', 'pseudo_thread_id', 'insert_id', 'last_insert_id', 'rand_seed1', 'rand_seed2', 'identity', 'skip_replication', 'pseudo_slave_mode', 'gtid_next']);
/** Global state a replica answers differently from the primary (read_only above all). */
const PRIMARY_STATE_VARS = new Set(['read_only', 'super_read_only', 'innodb_read_only', 'gtid_binlog_pos', 'gtid_current_pos', 'gtid_executed', 'gtid_slave_pos', 'rpl_semi_sync_master_enabled', 'log_bin']);

/** SHOW statements a replica answers as the primary would (schema and metadata). */
const SHOW_REPLICA_OK = new Set(['TABLES', 'DATABASES', 'SCHEMAS', 'COLUMNS', 'FIELDS', 'INDEX', 'INDEXES', 'KEYS', 'CREATE', 'TRIGGERS', 'EVENTS', 'COLLATION', 'CHARACTER', 'CHARSET', 'ENGINES', 'PLUGINS', 'PRIVILEGES', 'GRANTS', 'TABLE', 'PROCEDURE', 'FUNCTION', 'PACKAGE']);
const SHOW_LAST = new Set(['WARNINGS', 'ERRORS', 'PROFILE', 'PROFILES', 'COUNT']);

const WRITE_STARTS = new Set(
  `INSERT UPDATE DELETE REPLACE LOAD CREATE ALTER DROP RENAME TRUNCATE GRANT REVOKE FLUSH RESET PURGE OPTIMIZE REPAIR ANALYZE CHECK CHECKSUM INSTALL UNINSTALL SHUTDOWN
  CHANGE STOP START BACKUP BINLOG CACHE SIGNAL RESIGNAL IMPORT RESTART CLONE`.split(/\s+/),
);

// ---- classification --------------------------------------------------------------------

// No closures on this path (it runs for every COM_QUERY): the TypeScript loader keeps function
// names by redefining `name` on each closure it creates, which costs more than the lexing.
export function classify(sql: string): Classification {
  const { statements, hint } = lex(sql);
  if (statements.length === 0) return withHint({ kind: 'unsure', reason: 'empty' }, hint);
  if (statements.length === 1) return withHint(classifyOne(statements[0]!), hint);
  // Several statements: the primary runs them all; the session-level effects of each still count.
  const parts = statements.map(classifyOne);
  const pin = parts.find((p) => p.pin)?.pin ?? (parts.some((p) => p.replay) ? 'SET ROLE in a multi-statement' : undefined);
  return withHint({ kind: parts.some((p) => p.kind !== 'read') ? 'write' : 'read', reason: 'multi-statement', multi: true, pin, trackingChanged: parts.some((p) => p.trackingChanged) || undefined }, hint);
}

function withHint(c: Classification, hint: Classification['hint']): Classification {
  return hint ? { ...c, hint } : c;
}

/** The unquoted word at token i, if that token is one. */
function wordAt(toks: Token[], i: number): string | undefined {
  const t = toks[i];
  return t !== undefined && t.t === T.Word && !t.quotedIdent ? t.v : undefined;
}

function classifyOne(toks: Token[]): Classification {
  const first = toks[0]!;
  if (first.t === T.Punct && first.v === '(') return selectLike(toks, 'read');
  if (first.t !== T.Word || first.quotedIdent) return { kind: 'unsure', reason: 'unknown statement' };
  const w = first.v;
  switch (w) {
    case 'SELECT':
    case 'WITH':
    case 'VALUES':
    case 'TABLE':
      return selectLike(toks, 'read');
    case 'DO':
      return selectLike(toks, 'read');
    case 'SHOW':
      return show(toks);
    case 'DESC':
    case 'DESCRIBE':
    case 'EXPLAIN': {
      const next = wordAt(toks, 1);
      if (next === 'FOR' || (next === 'FORMAT' && toks.some((t) => t.v === 'FOR'))) return { kind: 'unsure', reason: 'EXPLAIN FOR CONNECTION' };
      if (next === 'ANALYZE') return { kind: 'write', reason: 'EXPLAIN ANALYZE executes' };
      return { kind: 'read', reason: 'explain' };
    }
    case 'ANALYZE': {
      const next = wordAt(toks, 1);
      if (next === 'SELECT' || next === 'WITH' || next === 'FORMAT') {
        // MariaDB's ANALYZE runs the statement: a SELECT stays a read.
        const at = toks.findIndex((t) => t.v === 'SELECT' || t.v === 'WITH');
        return at > 0 ? selectLike(toks.slice(at), 'read') : { kind: 'unsure', reason: 'ANALYZE' };
      }
      return { kind: 'write', reason: 'maintenance' };
    }
    case 'HELP':
      return { kind: 'read', reason: 'help' };
    case 'BEGIN':
      if (wordAt(toks, 1) === undefined || wordAt(toks, 1) === 'WORK') return { kind: 'begin', reason: 'transaction' };
      return { kind: 'unsure', reason: 'BEGIN ...' };
    case 'START': {
      if (wordAt(toks, 1) !== 'TRANSACTION') return { kind: 'write', reason: 'START' };
      const mods = toks.slice(2).filter((t) => t.t === T.Word).map((t) => t.v);
      const ro = mods.includes('ONLY') && mods[mods.indexOf('ONLY') - 1] === 'READ';
      if (ro && !mods.includes('WRITE')) return { kind: 'begin-read-only', reason: 'read-only transaction' };
      return { kind: 'begin', reason: 'transaction' };
    }
    case 'COMMIT':
      return { kind: 'end', reason: 'transaction' };
    case 'ROLLBACK':
      if (wordAt(toks, 1) === 'TO' || (wordAt(toks, 1) === 'WORK' && wordAt(toks, 2) === 'TO')) return { kind: 'savepoint', reason: 'transaction' };
      return { kind: 'end', reason: 'transaction' };
    case 'SAVEPOINT':
      return { kind: 'savepoint', reason: 'transaction' };
    case 'RELEASE':
      return wordAt(toks, 1) === 'SAVEPOINT' ? { kind: 'savepoint', reason: 'transaction' } : { kind: 'unsure', reason: 'RELEASE' };
    case 'USE':
      return toks.length === 2 ? { kind: 'session', reason: 'USE' } : { kind: 'unsure', reason: 'USE ...' };
    case 'SET':
      return setStatement(toks);
    case 'LOCK':
      return { kind: 'write', reason: 'LOCK', pin: 'table locks' };
    case 'UNLOCK':
      return { kind: 'write', reason: 'UNLOCK', pin: 'table locks' };
    case 'HANDLER':
      return { kind: 'write', reason: 'HANDLER', pin: 'HANDLER' };
    case 'PREPARE':
    case 'EXECUTE':
    case 'DEALLOCATE':
      return { kind: 'write', reason: 'SQL prepared statement', pin: 'SQL prepared statements' };
    case 'XA':
      return { kind: 'write', reason: 'XA', pin: 'XA transaction' };
    case 'CALL':
      return { kind: 'unsure', reason: 'CALL' };
    case 'GET':
      return wordAt(toks, 1) === 'DIAGNOSTICS' || (wordAt(toks, 2) === 'DIAGNOSTICS') ? { kind: 'last', reason: 'diagnostics' } : { kind: 'unsure', reason: 'GET' };
    case 'KILL': {
      const rest = toks.slice(1);
      let query = false;
      let k = 0;
      if (rest[k]?.v === 'HARD' || rest[k]?.v === 'SOFT') k++;
      if (rest[k]?.v === 'QUERY') {
        query = true;
        k++;
        if (rest[k]?.v === 'ID') k++;
      } else if (rest[k]?.v === 'CONNECTION') k++;
      const id = rest[k];
      if (id?.t === T.Number && rest.length === k + 1 && /^\d+$/.test(id.v)) return { kind: 'write', reason: 'KILL', kill: { query, id: Number(id.v) } };
      return { kind: 'write', reason: 'KILL' };
    }
    case 'CREATE':
      if (toks.slice(1, 4).some((t) => t.v === 'TEMPORARY')) return { kind: 'write', reason: 'temporary table', pin: 'temporary table' };
      return { kind: 'write', reason: 'DDL' };
    case 'DROP':
      if (wordAt(toks, 1) === 'TEMPORARY') return { kind: 'write', reason: 'temporary table', pin: 'temporary table' };
      return { kind: 'write', reason: 'DDL' };
    default:
      if (WRITE_STARTS.has(w)) {
        if (w === 'FLUSH' && toks.some((t) => t.v === 'LOCK')) return { kind: 'write', reason: 'FLUSH ... LOCK', pin: 'table locks' };
        if (w === 'BACKUP') return { kind: 'write', reason: 'BACKUP', pin: 'backup lock' };
        return { kind: 'write', reason: w === 'INSERT' || w === 'UPDATE' || w === 'DELETE' || w === 'REPLACE' || w === 'LOAD' ? 'DML' : 'DDL/admin' };
      }
      return { kind: 'unsure', reason: `unknown statement ${w}` };
  }
}

/** A SELECT (or WITH/VALUES/DO/parenthesised select): read unless something in it says otherwise. */
function selectLike(toks: Token[], base: 'read'): Classification {
  let pin: string | undefined;
  const verdict: Verdict = { kind: base, reason: 'read' };
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.t === T.UserVar) {
      const next = toks[i + 1];
      const assigns = next?.v === ':' && toks[i + 2]?.v === '=';
      const into = toks[i - 1]?.v === 'INTO' || (toks[i - 1]?.v === ',' && toks.slice(0, i).some((x) => x.v === 'INTO'));
      if (assigns || into) {
        pin ??= 'user variables';
        worsen(verdict, 'write', 'user variable assignment');
      } else worsen(verdict, 'unsure', 'reads a user variable');
      continue;
    }
    if (t.t === T.SysVar) {
      if (SESSION_BOUND_VARS.has(t.v)) {
        pin ??= `@@${t.v}`;
        worsen(verdict, 'write', `@@${t.v}`);
      } else if (LAST_STATEMENT_VARS.has(t.v)) worsen(verdict, 'last', `@@${t.v}`);
      else if (PRIMARY_STATE_VARS.has(t.v)) worsen(verdict, 'unsure', `@@${t.v} differs on replicas`);
      continue;
    }
    if (t.t !== T.Word) continue;
    const v = t.v;
    if (!t.quotedIdent) {
      if (v === 'FOR' && (toks[i + 1]?.v === 'UPDATE' || toks[i + 1]?.v === 'SHARE')) worsen(verdict, 'locking-read', 'locking read');
      else if (v === 'LOCK' && toks[i + 1]?.v === 'IN' && toks[i + 2]?.v === 'SHARE') worsen(verdict, 'locking-read', 'locking read');
      else if (v === 'INTO') {
        const next = toks[i + 1];
        if (next?.v === 'OUTFILE' || next?.v === 'DUMPFILE') worsen(verdict, 'write', 'INTO OUTFILE');
        else if (next?.t !== T.UserVar) worsen(verdict, 'unsure', 'SELECT INTO');
      } else if (v === 'SQL_CALC_FOUND_ROWS') {
        pin ??= 'FOUND_ROWS()';
        worsen(verdict, 'write', 'SQL_CALC_FOUND_ROWS');
      } else if (v === 'NEXT' || v === 'PREVIOUS') {
        if (toks[i + 1]?.v === 'VALUE' && toks[i + 2]?.v === 'FOR') {
          pin ??= 'sequence';
          worsen(verdict, 'write', 'sequence');
        }
      }
    }
    const open = toks[i + 1];
    if (open?.t === T.Punct && open.v === '(') {
      if (t.quotedIdent || toks[i - 1]?.v === '.') {
        worsen(verdict, 'unsure', 'stored function');
        continue;
      }
      const session = SESSION_FUNCTIONS.get(v);
      if (session) {
        pin ??= session;
        worsen(verdict, 'write', session);
      } else if (!PURE_FUNCTIONS.has(v) && !PAREN_KEYWORDS.has(v)) worsen(verdict, 'unsure', `function ${v}()`);
    }
  }
  return pin ? { kind: verdict.kind, reason: verdict.reason, pin } : { kind: verdict.kind, reason: verdict.reason };
}

interface Verdict {
  kind: StatementKind;
  reason: string;
}

function kindRank(x: StatementKind): number {
  return x === 'read' ? 0 : x === 'last' ? 1 : x === 'locking-read' ? 2 : x === 'unsure' ? 3 : 4;
}

/** Keeps the worst of what was found in a SELECT (read < last < locking read < unsure < write). */
function worsen(v: Verdict, k: StatementKind, why: string): void {
  if (kindRank(k) > kindRank(v.kind)) {
    v.kind = k;
    v.reason = why;
  }
}

function show(toks: Token[]): Classification {
  let k = 1;
  while (toks[k]?.v === 'FULL' || toks[k]?.v === 'GLOBAL' || toks[k]?.v === 'SESSION' || toks[k]?.v === 'EXTENDED') {
    if (toks[k]?.v === 'GLOBAL' || toks[k]?.v === 'SESSION') return { kind: 'unsure', reason: 'SHOW status/variables' };
    k++;
  }
  const what = toks[k]?.v ?? '';
  if (SHOW_LAST.has(what)) return { kind: 'last', reason: 'SHOW WARNINGS' };
  if (what === 'TABLE' && toks[k + 1]?.v !== 'STATUS') return { kind: 'unsure', reason: `SHOW ${what}` };
  if ((what === 'PROCEDURE' || what === 'FUNCTION' || what === 'PACKAGE') && toks[k + 1]?.v === 'CODE') return { kind: 'read', reason: 'schema' };
  if (SHOW_REPLICA_OK.has(what)) return { kind: 'read', reason: 'schema' };
  return { kind: 'unsure', reason: `SHOW ${what}` };
}

function setStatement(toks: Token[]): Classification {
  const second = toks[1];
  const w = second?.t === T.Word && !second.quotedIdent ? second.v : undefined;
  if (w === 'STATEMENT') {
    // SET STATEMENT var=... FOR <statement>: what the inner statement is.
    const at = toks.findIndex((t, i) => i > 1 && t.t === T.Word && !t.quotedIdent && t.v === 'FOR');
    if (at < 0) return { kind: 'unsure', reason: 'SET STATEMENT' };
    const inner = classifyOne(toks.slice(at + 1));
    return inner.kind === 'session' ? { kind: 'unsure', reason: 'SET STATEMENT ... FOR SET' } : inner;
  }
  if (w === 'TRANSACTION') return { kind: 'write', reason: 'SET TRANSACTION (next transaction)', pin: 'SET TRANSACTION' };
  if (w === 'GLOBAL' || (second?.t === T.SysVar && second.scope === 'GLOBAL')) return { kind: 'write', reason: 'SET GLOBAL' };
  if (w === 'PASSWORD' || (w === 'DEFAULT' && toks[2]?.v === 'ROLE')) return { kind: 'write', reason: `SET ${w}` };
  if (w === 'ROLE') return { kind: 'session', reason: 'SET ROLE', replay: true };
  if (w === 'NAMES' || w === 'CHARSET' || (w === 'CHARACTER' && toks[2]?.v === 'SET')) return { kind: 'session', reason: 'SET NAMES' };
  // Assignments separated by commas at depth 0: look at each target.
  let pin: string | undefined;
  let trackingChanged = false;
  let global = false;
  let depth = 0;
  let expectTarget = true;
  for (let i = 1; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.t === T.Punct && t.v === '(') depth++;
    else if (t.t === T.Punct && t.v === ')') depth--;
    else if (depth === 0 && t.t === T.Punct && t.v === ',') {
      expectTarget = true;
      continue;
    }
    if (!expectTarget) {
      // Right-hand sides: a session-bound function or variable still matters.
      if (t.t === T.UserVar) pin ??= 'user variables';
      if (t.t === T.Word && toks[i + 1]?.v === '(' && SESSION_FUNCTIONS.has(t.v)) pin ??= SESSION_FUNCTIONS.get(t.v);
      if (t.t === T.Word && toks[i + 1]?.v === '(' && !PURE_FUNCTIONS.has(t.v) && !PAREN_KEYWORDS.has(t.v) && !SESSION_FUNCTIONS.has(t.v)) pin ??= `function ${t.v}()`;
      continue;
    }
    expectTarget = false;
    let target = t;
    if (t.t === T.Word && !t.quotedIdent && (t.v === 'SESSION' || t.v === 'LOCAL')) target = toks[++i]!;
    else if (t.t === T.Word && !t.quotedIdent && t.v === 'GLOBAL') {
      global = true;
      target = toks[++i]!;
    }
    if (!target) return { kind: 'unsure', reason: 'SET' };
    if (target.t === T.UserVar) {
      pin ??= 'user variables';
      continue;
    }
    if (target.t === T.SysVar && target.scope === 'GLOBAL') {
      global = true;
      continue;
    }
    const name = target.t === T.SysVar ? target.v : target.t === T.Word ? target.v.toLowerCase() : undefined;
    if (!name) return { kind: 'unsure', reason: 'SET' };
    if (name === 'names' || name === 'character') continue;
    if (name.startsWith('session_track')) trackingChanged = true;
    if (PIN_ON_SET.has(name)) pin ??= `SET ${name}`;
  }
  if (global) return { kind: 'write', reason: 'SET GLOBAL', pin };
  const out: Classification = { kind: pin ? 'write' : 'session', reason: pin ? 'SET pins the session' : 'SET' };
  if (pin) out.pin = pin;
  if (trackingChanged) out.trackingChanged = true;
  return out;
}
