import type { GtidFlavor } from '../gtid/index.ts';
import type { PrivilegeNeed } from './flavor.ts';
import { FAMILIES } from './families.ts';

/**
 * The privileges each Regent account needs, per server family, with what needs them. `regent grants`
 * prints these, bootstrap and doctor check them, and the sandbox creates its users with exactly these.
 */
export type { PrivilegeNeed } from './flavor.ts';



export const REPLICATION_PRIVILEGES = ['REPLICATION SLAVE'];

export function managerPrivileges(flavor: GtidFlavor): PrivilegeNeed[] {
  return FAMILIES[flavor].grants.manager;
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

/**
 * Manager privileges a failover cannot do without: observing replicas, fencing (read_only, killing
 * sessions), stopping IO threads, promoting and re-pointing. The others serve clone, rejoin and
 * flashback, which a failover does not need.
 */
export function neededForFailover(flavor: GtidFlavor, privilege: string): boolean {
  return FAMILIES[flavor].grants.failover.has(privilege);
}

/** The replication account's privileges, with what needs them. */
export function replicationPrivileges(_flavor: GtidFlavor): PrivilegeNeed[] {
  return REPLICATION_PRIVILEGES.map((privilege) => ({ privilege, why: 'replicas connect with it to read the binary log of their source (any instance may become that source)' }));
}

/**
 * What the clone account (credentials.clone) needs: `regent clone` and `repair --reclone` load a
 * mariadb-dump into the target with sql_log_bin=0. MariaDB only (clone refuses MySQL targets).
 */

export function clonePrivileges(flavor: GtidFlavor): PrivilegeNeed[] {
  return FAMILIES[flavor].grants.clone;
}

/** 'name'@'host' with both parts quoted as SQL string literals. */
export function sqlAccount(user: string, host: string): string {
  const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return `${q(user)}@${q(host)}`;
}

/** GRANT a, b ON *.* TO account; one privilege per line with a comment saying what needs it. */
export function grantStatement(needs: PrivilegeNeed[], account: string, failoverFlavor?: GtidFlavor): string {
  if (needs.length === 0) return '';
  const width = Math.max(...needs.map((n) => n.privilege.length)) + 1;
  const lines = needs.map((n, i) => {
    const item = `${n.privilege}${i < needs.length - 1 ? ',' : ''}`;
    const tag = failoverFlavor && neededForFailover(failoverFlavor, n.privilege) ? 'failover: ' : '';
    // A comment must not end the statement early for tools that split on ';'.
    return `${i === 0 ? 'GRANT ' : '      '}${item.padEnd(width)} -- ${tag}${n.why.replace(/;/g, ',')}`;
  });
  return `${lines.join('\n')}\n   ON *.* TO ${account};`;
}

/**
 * The SQL endpoint's service account (credentials.router): reads the account hashes logins are
 * verified against. Table-level grants, not global ones. Causal waits (MASTER_GTID_WAIT) run on
 * the application's own replica connections and need no privilege.
 */
export function routerPrivileges(flavor: GtidFlavor): { privilege: string; on: string; why: string }[] {
  return FAMILIES[flavor].endpoint.accountHashesPrivileges;
}

export function routerGrantStatements(flavor: GtidFlavor, account: string): string[] {
  return routerPrivileges(flavor).map((p) => `GRANT ${p.privilege} ON ${p.on} TO ${account}`);
}

export interface AccountToGrant {
  role: 'manager' | 'replication' | 'clone' | 'router';
  user: string;
  /** Host part of the account ('%' for any). */
  host: string;
  /** The text standing for the password in the output (never the real one). */
  passwordPlaceholder: string;
  /** Where Regent reads the password from, to tell the operator (e.g. "file /etc/regent/manager.pw"). */
  passwordSource?: string;
}

const PURPOSE: Record<AccountToGrant['role'], string> = {
  manager: 'Regent observes and acts with this account (probes, failover, switchover, rejoin, clone reads)',
  replication: 'replicas connect to their source with this account',
  clone: 'regent clone / repair --reclone load data into a target with this account',
  router: 'the SQL endpoint reads account hashes with this account to verify application logins',
};

/**
 * The CREATE USER / GRANT script for Regent's accounts on one server family: minimal privileges,
 * one comment per privilege, passwords as placeholders. Meant to be run on every instance with
 * binary logging off for the session, so each server's GTID history stays its own.
 */
export function renderAccountScript(flavor: GtidFlavor, accounts: AccountToGrant[], header: string[] = []): string {
  const out: string[] = [...header.map((h) => `-- ${h}`)];
  out.push('-- Run on every instance (any of them may become the primary). sql_log_bin=0 keeps these', '-- statements out of the binary log, so no server gets GTIDs the others lack.', 'SET SESSION sql_log_bin = 0;');
  for (const a of accounts) {
    const account = sqlAccount(a.user, a.host);
    if (a.role === 'router') {
      out.push('', `-- ${a.role} account: ${PURPOSE[a.role]}.`);
      out.push(`-- Replace ${a.passwordPlaceholder} with its password${a.passwordSource ? ` (Regent reads it from ${a.passwordSource})` : ''}.`);
      out.push(`CREATE USER ${account} IDENTIFIED BY '${a.passwordPlaceholder}';`);
      for (const p of routerPrivileges(flavor)) out.push(`GRANT ${p.privilege} ON ${p.on} TO ${account}; -- ${p.why.replace(/;/g, ',')}`);
      continue;
    }
    const needs = a.role === 'manager' ? managerPrivileges(flavor) : a.role === 'replication' ? replicationPrivileges(flavor) : clonePrivileges(flavor);
    out.push('', `-- ${a.role} account: ${PURPOSE[a.role]}.`);
    out.push(`-- Replace ${a.passwordPlaceholder} with its password${a.passwordSource ? ` (Regent reads it from ${a.passwordSource})` : ''}.`);
    if (a.role === 'clone' && needs.length === 0) {
      out.push(`-- regent clone supports MariaDB only: no clone account is needed on ${flavor}.`);
      continue;
    }
    if (a.role === 'manager') out.push('-- Privileges marked "failover:" are needed for a failover: `regent doctor` reports missing ones as critical.');
    out.push(`CREATE USER ${account} IDENTIFIED BY '${a.passwordPlaceholder}';`);
    out.push(grantStatement(needs, account, a.role === 'manager' ? flavor : undefined));
  }
  return `${out.join('\n')}\n`;
}
