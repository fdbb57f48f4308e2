import type { GtidFlavor } from '../gtid/index.ts';
import type { FlavorFamily } from './flavor.ts';
import { mariadbFamily } from './mariadb/mariadb-family.ts';
import { mysqlFamily } from './mysql/mysql-family.ts';

/** Every server family Regent knows, by name. */
export const FAMILIES: Readonly<Record<GtidFlavor, FlavorFamily>> = { mariadb: mariadbFamily, mysql: mysqlFamily };

/** The family of a server, or MariaDB's words when it could not be told (nothing answered). */
export function familyOf(name: GtidFlavor | undefined): FlavorFamily {
  return FAMILIES[name ?? 'mariadb'];
}
