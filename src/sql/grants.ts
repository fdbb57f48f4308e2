import type { GtidFlavor } from '../gtid/index.ts';

/**
 * The privileges each Regent account needs, per server family, with what needs them. `regent grants`
 * prints these, bootstrap and doctor check them, and the sandbox creates its users with exactly these.
 */
export interface PrivilegeNeed {
  privilege: string;
  why: string;
}

const MARIADB_MANAGER: PrivilegeNeed[] = [
  { privilege: 'SELECT', why: 'checksums and reading data for clone' },
  { privilege: 'PROCESS', why: 'listing client sessions to fence a primary' },
  { privilege: 'RELOAD', why: 'FLUSH statements during clone and rejoin' },
  { privilege: 'SLAVE MONITOR', why: 'SHOW ALL SLAVES STATUS' },
  { privilege: 'BINLOG MONITOR', why: 'SHOW BINARY LOGS and binlog positions' },
  { privilege: 'REPLICATION SLAVE ADMIN', why: 'START/STOP/CHANGE MASTER, gtid_slave_pos, semi-sync replica side' },
  { privilege: 'REPLICATION MASTER ADMIN', why: 'semi-sync primary settings' },
  { privilege: 'READ_ONLY ADMIN', why: 'setting read_only (SUPER no longer covers it in 10.11)' },
  { privilege: 'BINLOG ADMIN', why: 'purging and resetting binary logs on rejoin' },
  { privilege: 'CONNECTION ADMIN', why: 'killing client sessions when fencing, connecting when max_connections is reached' },
  { privilege: 'REPLICATION SLAVE', why: 'reading binlogs remotely for flashback and errant-transaction capture' },
  { privilege: 'BINLOG REPLAY', why: 'applying flashback events' },
  { privilege: 'SHOW VIEW', why: 'clone: mariadb-dump of views' },
  { privilege: 'TRIGGER', why: 'clone: mariadb-dump of triggers' },
  { privilege: 'EVENT', why: 'clone: mariadb-dump of events' },
  { privilege: 'LOCK TABLES', why: 'clone: mariadb-dump of non-transactional tables' },
];

const MYSQL_MANAGER: PrivilegeNeed[] = [
  { privilege: 'SELECT', why: 'checksums and reading data for clone' },
  { privilege: 'PROCESS', why: 'listing client sessions to fence a primary' },
  { privilege: 'RELOAD', why: 'FLUSH statements during clone and rejoin' },
  { privilege: 'REPLICATION CLIENT', why: 'SHOW REPLICA STATUS and binlog positions' },
  { privilege: 'REPLICATION SLAVE', why: 'reading binlogs remotely' },
  { privilege: 'REPLICATION_SLAVE_ADMIN', why: 'START/STOP/CHANGE REPLICATION SOURCE' },
  { privilege: 'SYSTEM_VARIABLES_ADMIN', why: 'read_only, super_read_only, semi-sync settings' },
  { privilege: 'CONNECTION_ADMIN', why: 'killing client sessions when fencing' },
  { privilege: 'BINLOG_ADMIN', why: 'resetting binary logs on rejoin' },
];

export const REPLICATION_PRIVILEGES = ['REPLICATION SLAVE'];

export function managerPrivileges(flavor: GtidFlavor): PrivilegeNeed[] {
  return flavor === 'mariadb' ? MARIADB_MANAGER : MYSQL_MANAGER;
}

/** Privileges named in SHOW GRANTS output for one account (global level only). */
export function parseGlobalGrants(grantLines: string[]): Set<string> {
  const out = new Set<string>();
  for (const line of grantLines) {
    const m = /^GRANT\s+(.+?)\s+ON\s+\*\.\*\s+TO\s/i.exec(line.trim());
    if (!m?.[1]) continue;
    if (/\bWITH GRANT OPTION\b/i.test(line)) out.add('GRANT OPTION');
    for (const p of m[1].split(',')) out.add(p.trim().toUpperCase().replace(/\s+/g, ' '));
  }
  return out;
}

/** Which of the needed privileges the account lacks (ALL PRIVILEGES covers everything). */
export function missingPrivileges(have: Set<string>, needed: PrivilegeNeed[]): PrivilegeNeed[] {
  if (have.has('ALL PRIVILEGES') || have.has('ALL')) return [];
  return needed.filter((n) => !have.has(n.privilege));
}
