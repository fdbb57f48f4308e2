import type { GtidFlavor, GtidState } from './gtid-state.ts';
import { MariaGtidPosition } from './mariadb-gtid.ts';
import { MysqlGtidSet } from './mysql-gtid.ts';

export { GtidFlavorMismatch, GtidParseError } from '../errors.ts';
export type { GtidFlavor, GtidState } from './gtid-state.ts';
export { MariaGtidPosition } from './mariadb-gtid.ts';
export type { MariaGtid, MariaComparison } from './mariadb-gtid.ts';
export { MysqlGtidSet } from './mysql-gtid.ts';
export type { GtidInterval, MysqlComparison } from './mysql-gtid.ts';

/** Parses whatever the server reported, picking the representation by the server family. */
export function parseGtid(flavor: GtidFlavor, text: string): GtidState {
  switch (flavor) {
    case 'mariadb':
      return MariaGtidPosition.parse(text);
    case 'mysql':
      return MysqlGtidSet.parse(text);
    default: {
      // Reachable only from untyped callers (e.g. config values), so report it plainly.
      const unknown: never = flavor;
      throw new TypeError(`Unknown GTID flavor ${JSON.stringify(unknown)}; expected 'mariadb' or 'mysql'`);
    }
  }
}

export function emptyGtid(flavor: GtidFlavor): GtidState {
  return parseGtid(flavor, '');
}
