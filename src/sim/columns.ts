import { CHARSET, FLAG, TYPE, type ColumnDef } from './wire.ts';

/**
 * Column metadata of the answers, as MariaDB 10.11.19 sends them (captured with `mariadb
 * --column-type-info`). The client parses by these types (mysql2 turns LONG into numbers and
 * LONGLONG into strings with bigNumberStrings), so the manager does the same work against the
 * simulator as against a real server.
 */

const UNSIGNED_NUM = FLAG.NOT_NULL | FLAG.UNSIGNED | FLAG.BINARY | FLAG.NUM;

const str = (name: string, length: number): ColumnDef => ({ name, type: TYPE.VAR_STRING, length, flags: FLAG.NOT_NULL, decimals: 39, charset: CHARSET.UTF8_GENERAL_CI });
const long = (name: string, length: number): ColumnDef => ({ name, type: TYPE.LONG, length, flags: UNSIGNED_NUM, decimals: 0, charset: CHARSET.BINARY });
const longlong = (name: string, length: number): ColumnDef => ({ name, type: TYPE.LONGLONG, length, flags: UNSIGNED_NUM, decimals: 0, charset: CHARSET.BINARY });

/** SHOW ALL SLAVES STATUS, MariaDB 10.11: 62 columns in this order. */
export const ALL_SLAVES_STATUS_COLUMNS: readonly ColumnDef[] = [
  str('Connection_name', 576),
  str('Slave_SQL_State', 90),
  str('Slave_IO_State', 90),
  str('Master_Host', 2298),
  str('Master_User', 1155),
  long('Master_Port', 7),
  long('Connect_Retry', 10),
  str('Master_Log_File', 1536),
  longlong('Read_Master_Log_Pos', 10),
  str('Relay_Log_File', 1536),
  longlong('Relay_Log_Pos', 10),
  str('Relay_Master_Log_File', 1536),
  str('Slave_IO_Running', 9),
  str('Slave_SQL_Running', 9),
  str('Replicate_Do_DB', 60),
  str('Replicate_Ignore_DB', 60),
  str('Replicate_Do_Table', 60),
  str('Replicate_Ignore_Table', 69),
  str('Replicate_Wild_Do_Table', 72),
  str('Replicate_Wild_Ignore_Table', 84),
  long('Last_Errno', 4),
  str('Last_Error', 60),
  long('Skip_Counter', 10),
  longlong('Exec_Master_Log_Pos', 10),
  longlong('Relay_Log_Space', 10),
  str('Until_Condition', 18),
  str('Until_Log_File', 1536),
  longlong('Until_Log_Pos', 10),
  str('Master_SSL_Allowed', 21),
  str('Master_SSL_CA_File', 1536),
  str('Master_SSL_CA_Path', 1536),
  str('Master_SSL_Cert', 1536),
  str('Master_SSL_Cipher', 1536),
  str('Master_SSL_Key', 1536),
  longlong('Seconds_Behind_Master', 10),
  str('Master_SSL_Verify_Server_Cert', 9),
  long('Last_IO_Errno', 4),
  str('Last_IO_Error', 60),
  long('Last_SQL_Errno', 4),
  str('Last_SQL_Error', 60),
  str('Replicate_Ignore_Server_Ids', 1536),
  long('Master_Server_Id', 8),
  str('Master_SSL_Crl', 1536),
  str('Master_SSL_Crlpath', 1536),
  str('Using_Gtid', 33),
  str('Gtid_IO_Pos', 90),
  str('Replicate_Do_Domain_Ids', 1536),
  str('Replicate_Ignore_Domain_Ids', 1536),
  str('Parallel_Mode', 36),
  long('SQL_Delay', 10),
  long('SQL_Remaining_Delay', 8),
  str('Slave_SQL_Running_State', 60),
  longlong('Slave_DDL_Groups', 20),
  longlong('Slave_Non_Transactional_Groups', 20),
  longlong('Slave_Transactional_Groups', 20),
  str('Replicate_Rewrite_DB', 69),
  long('Retried_transactions', 10),
  longlong('Max_relay_log_size', 10),
  long('Executed_log_entries', 10),
  long('Slave_received_heartbeats', 10),
  { name: 'Slave_heartbeat_period', type: TYPE.DOUBLE, length: 10, flags: FLAG.NOT_NULL | FLAG.BINARY | FLAG.NUM, decimals: 3, charset: CHARSET.BINARY },
  str('Gtid_Slave_Pos', 0),
];

/** Position of each column by name, for the row builder. */
export const SLAVE_COL: Readonly<Record<string, number>> = Object.fromEntries(ALL_SLAVES_STATUS_COLUMNS.map((c, i) => [c.name, i]));

/** SHOW GLOBAL VARIABLES / STATUS: two columns from information_schema. */
export function nameValueColumns(table: 'SESSION_VARIABLES' | 'SESSION_STATUS'): ColumnDef[] {
  const base = { type: TYPE.VAR_STRING, flags: FLAG.NOT_NULL | FLAG.NO_DEFAULT_VALUE, decimals: 0, charset: CHARSET.UTF8_GENERAL_CI, schema: 'information_schema', table, orgTable: table };
  return [
    { ...base, name: 'Variable_name', orgName: 'VARIABLE_NAME', length: 192 },
    { ...base, name: 'Value', orgName: 'VARIABLE_VALUE', length: 12288 },
  ];
}

/** A computed string column of a SELECT (e.g. `@@version AS version`). */
export function selectStringColumn(name: string): ColumnDef {
  return { name, type: TYPE.VAR_STRING, length: 90, flags: 0, decimals: 39, charset: CHARSET.UTF8_GENERAL_CI };
}

/** A computed integer column of a SELECT (`@@server_id`, `MASTER_GTID_WAIT(...)`). */
export function selectIntColumn(name: string): ColumnDef {
  return { name, type: TYPE.LONGLONG, length: 21, flags: FLAG.BINARY | FLAG.NUM, decimals: 0, charset: CHARSET.BINARY };
}

/** `id` from information_schema.PROCESSLIST. */
export const PROCESSLIST_ID_COLUMN: ColumnDef = {
  name: 'id',
  type: TYPE.LONGLONG,
  length: 4,
  flags: FLAG.NOT_NULL | FLAG.NO_DEFAULT_VALUE | FLAG.NUM,
  decimals: 0,
  charset: CHARSET.BINARY,
  schema: 'information_schema',
  table: 'PROCESSLIST',
  orgTable: 'PROCESSLIST',
  orgName: 'ID',
};
