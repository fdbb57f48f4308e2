import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInnodbTransactionList } from '../../src/sql/innodb-status.ts';

// The live transaction list the switchover's kill-sessions step waits on. The MariaDB text is
// what 10.11 printed with one UPDATE, one read-only and one INSERT transaction open; the MySQL
// text follows 8.0's lock_print_info_all_transactions.

const wrap = (list: string) =>
  ['=====================================', 'BACKGROUND THREAD', '------------', 'TRANSACTIONS', '------------', 'Trx id counter 25', 'History list length 4', 'LIST OF TRANSACTIONS FOR EACH SESSION:', list, '--------', 'FILE I/O', '--------', 'I/O thread 0 state: waiting for completed aio requests'].join('\n');

const MARIADB = wrap(
  [
    '---TRANSACTION 24, ACTIVE 0 sec',
    '1 lock struct(s), heap size 1128, 0 row lock(s), undo log entries 1',
    'MariaDB thread id 11, OS thread handle 139637440595648, query id 54 localhost app User sleep',
    'select sleep(3)',
    '---TRANSACTION (0x7effe140a180), ACTIVE 0 sec',
    '0 lock struct(s), heap size 1128, 0 row lock(s)',
    'MariaDB thread id 12, OS thread handle 139637134829248, query id 52 localhost app User sleep',
    'select sleep(3)',
    'Trx read view will not see trx with id >= 23, sees < 23',
    '---TRANSACTION 23, ACTIVE 0 sec',
    '2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 1',
    'MariaDB thread id 13, OS thread handle 139637134522048, query id 48 localhost app User sleep',
    'select sleep(3)',
    '---TRANSACTION (0x7effe1408b80), not started',
    '0 lock struct(s), heap size 1128, 0 row lock(s)',
  ].join('\n'),
);

const MYSQL = wrap(
  [
    '---TRANSACTION 421937584536456, not started',
    '0 lock struct(s), heap size 1128, 0 row lock(s)',
    '---TRANSACTION 7951, ACTIVE 5 sec',
    '2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 12',
    'MySQL thread id 9, OS thread handle 139854, query id 41 localhost app',
    '---TRANSACTION 7950, ACTIVE (PREPARED) 2 sec committing',
    '2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 3',
    'MySQL thread id 8, OS thread handle 139855, query id 40 localhost app',
  ].join('\n'),
);

const cases: { name: string; status: string; want: { threadId: number | undefined; undoEntries: number }[] | undefined }[] = [
  { name: 'MariaDB: two write transactions, one reader, one not started', status: MARIADB, want: [{ threadId: 11, undoEntries: 1 }, { threadId: 13, undoEntries: 1 }] },
  { name: 'MySQL 8: an active and a prepared write transaction', status: MYSQL, want: [{ threadId: 9, undoEntries: 12 }, { threadId: 8, undoEntries: 3 }] },
  { name: 'an empty list', status: wrap(''), want: [] },
  { name: 'only sessions that never started a transaction', status: wrap('---TRANSACTION (0x7f1), not started\n0 lock struct(s), heap size 1128, 0 row lock(s)'), want: [] },
  { name: 'active, locks rows, changed nothing', status: wrap('---TRANSACTION 40, ACTIVE 1 sec\n1 lock struct(s), heap size 1128, 1 row lock(s)\nMariaDB thread id 5, OS thread handle 1, query id 2 localhost app'), want: [] },
  { name: 'undo entries 0 printed', status: wrap('---TRANSACTION 41, ACTIVE 1 sec\n1 lock struct(s), heap size 1128, 0 row lock(s), undo log entries 0'), want: [] },
  { name: 'a write transaction without a session line (recovered XA)', status: wrap('---TRANSACTION 42, ACTIVE (PREPARED) 9 sec recovered trx\n1 lock struct(s), heap size 1128, 0 row lock(s), undo log entries 4'), want: [{ threadId: undefined, undoEntries: 4 }] },
  // Proves nothing: the caller must fall back, never read "no transactions" into it.
  { name: 'list shortened by the server (over 1 MB)', status: wrap('---TRANSACTION 24, ACTIVE 0 sec\n... truncated...\n'), want: undefined },
  { name: 'text cut off inside the list', status: MARIADB.slice(0, MARIADB.indexOf('---TRANSACTION 23')), want: undefined },
  { name: 'no transaction section at all', status: '', want: undefined },
];

for (const c of cases) {
  test(`InnoDB transaction list: ${c.name}`, () => {
    assert.deepEqual(parseInnodbTransactionList(c.status)?.writeTransactions, c.want);
  });
}
