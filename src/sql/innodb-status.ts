/**
 * The transaction list of `SHOW ENGINE INNODB STATUS`, read for what INNODB_TRX cannot give: the
 * state right now. INNODB_TRX is a copy InnoDB refreshes only when nobody has read it for 100 ms
 * (trx0i_s.cc, CACHE_MIN_IDLE_TIME_NS, and every read sets that clock again), so a look shortly
 * after another shows the earlier rows. The status text is built from the live transaction list on
 * every call. MariaDB and MySQL 8 print the list the same way:
 *
 *   ---TRANSACTION 24, ACTIVE 0 sec
 *   1 lock struct(s), heap size 1128, 0 row lock(s), undo log entries 1
 *   MariaDB thread id 11, OS thread handle 1396..., query id 54 localhost app
 *   ---TRANSACTION (0x7effe1408b80), not started
 */

/** What the list says; `undefined` from the parser when it is cut short and so proves nothing. */
export interface InnodbTransactionList {
  /** Started transactions that changed rows (undo log entries > 0), by the session's thread id when printed. */
  writeTransactions: { threadId: number | undefined; undoEntries: number }[];
}

const LIST_START = 'LIST OF TRANSACTIONS FOR EACH SESSION:';
/** innodb_show_status() puts this in place of the transactions it left out to stay under 1 MB. */
const TRUNCATED = '... truncated...';

export function parseInnodbTransactionList(status: string): InnodbTransactionList | undefined {
  const start = status.indexOf(LIST_START);
  if (start < 0 || status.includes(TRUNCATED)) return undefined;
  // The list ends where the next section's dashed header begins ("--------\nFILE I/O"); a text
  // without it was cut off at the size limit.
  const end = status.indexOf('\n--------', start);
  if (end < 0) return undefined;
  const blocks = status.slice(start + LIST_START.length, end).split('\n---TRANSACTION ').slice(1);
  const writeTransactions: InnodbTransactionList['writeTransactions'] = [];
  for (const block of blocks) {
    const header = block.slice(0, block.indexOf('\n') >= 0 ? block.indexOf('\n') : undefined);
    if (!/\bACTIVE\b/.test(header)) continue;
    const undo = /undo log entries (\d+)/.exec(block);
    if (!undo || Number(undo[1]) === 0) continue;
    const thread = /(?:MariaDB|MySQL) thread id (\d+)/.exec(block);
    writeTransactions.push({ threadId: thread ? Number(thread[1]) : undefined, undoEntries: Number(undo[1]) });
  }
  return { writeTransactions };
}
