/**
 * SQL text the SQL endpoint (src/router/sql) sends on a client's behalf that is the same on MariaDB
 * and MySQL: replaying a session's state on another backend connection, and translating KILL.
 * Family-specific statements (session tracking, account hashes, GTID waits) are in each family's
 * `endpoint` member.
 */

/**
 * A string literal that reads the same whatever the session's sql_mode: quotes are doubled, and a
 * backslash (an escape character unless NO_BACKSLASH_ESCAPES, which the session may have set) is
 * spelled CHAR(92) so neither mode can misread it.
 */
export function sqlString(s: string): string {
  if (!s.includes('\\')) return `'${s.replace(/'/g, "''")}'`;
  return `CONCAT(${s
    .split('\\')
    .map((part) => `'${part.replace(/'/g, "''")}'`)
    .join(', CHAR(92), ')})`;
}

export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** A session variable's value as its session tracker reported it, as an SQL value for SET. */
export function trackedValue(v: string): string {
  if (/^-?\d+(\.\d+)?$/.test(v)) return v;
  if (v === 'NULL') return 'NULL';
  return sqlString(v);
}

/** System variable names are words; anything else is refused rather than spliced into SQL. */
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * One SET SESSION statement restoring variables as their tracker reported them, in the order
 * given. Throws on a name that is not a plain variable name (it came from a server; a strange one
 * means something is wrong and must not become SQL).
 */
export function setSessionVariables(vars: [string, string][]): string {
  if (vars.length === 0) throw new Error('setSessionVariables: no variables');
  return `SET SESSION ${vars
    .map(([k, v]) => {
      if (!VARIABLE_NAME.test(k)) throw new Error(`not a system variable name: ${JSON.stringify(k)}`);
      return `${k} = ${trackedValue(v)}`;
    })
    .join(', ')}`;
}

export function useSchema(name: string): string {
  return `USE ${quoteIdentifier(name)}`;
}

/** KILL of a server thread (the endpoint translates its own session ids to the primary's thread ids). */
export function killStatement(thread: number, queryOnly: boolean): string {
  if (!Number.isSafeInteger(thread) || thread < 0) throw new Error(`not a thread id: ${thread}`);
  return `KILL ${queryOnly ? 'QUERY ' : ''}${thread}`;
}

/** Ends a replayed transaction that could not be carried over (transaction replay, issue 15). */
export function rollbackStatement(): string {
  return 'ROLLBACK';
}
