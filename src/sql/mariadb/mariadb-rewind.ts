import type { Account, InstanceConfig } from '../../config/load.ts';
import type { DbConnection } from '../connection.ts';
import type { RewindTool, ServerSettings } from '../flavor.ts';
import { findExecutable } from '../../util/deps.ts';
import { applySqlFile, dumpBinlogAfter } from './mariadb-tools.ts';

/**
 * Rewinding a former primary's errant transactions with `mariadb-binlog --flashback`: the events
 * after the common point are read from the server's own binary log (remotely), saved as SQL a DBA
 * can replay, reversed, and the reversal applied with binary logging off.
 */
export const mariadbRewind: RewindTool = {
  check(settings: ServerSettings): true | string {
    if (!findExecutable('mariadb-binlog') || !findExecutable('mariadb')) return 'mariadb-binlog and the mariadb client are not installed here (apt-get install -y mariadb-client)';
    if (settings.binlogFormat !== 'ROW') return `flashback needs binlog_format=ROW (the server has ${settings.binlogFormat || 'unknown'})`;
    return true;
  },
  saveEvents(node: InstanceConfig, conn: DbConnection, account: Account, from: string, file: string): Promise<number> {
    return dumpBinlogAfter(node, conn, account, from, file, false);
  },
  async reverse(node: InstanceConfig, conn: DbConnection, account: Account, from: string, workFile: string): Promise<void> {
    await dumpBinlogAfter(node, conn, account, from, workFile, true);
    await applySqlFile(node, account, workFile);
  },
};
