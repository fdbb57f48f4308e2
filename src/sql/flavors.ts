import type { GtidFlavor } from '../gtid/index.ts';
import type { Flavor } from './flavor.ts';
import { MariadbFlavor } from './mariadb/mariadb-flavor.ts';
import { MysqlFlavor } from './mysql/mysql-flavor.ts';
import { UnsupportedServerError } from '../errors.ts';


/** The family a version string names (no support check: for words, not for acting). */
export function familyNameOfVersion(version: string): GtidFlavor {
  return /mariadb/i.test(version) ? 'mariadb' : 'mysql';
}

/** Picks the flavor from what the server says it is (SELECT @@version, @@version_comment). */
export function flavorForVersion(version: string): Flavor {
  if (familyNameOfVersion(version) === 'mariadb') {
    const [major = 0, minor = 0] = (/^(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
    if (major < 10 || (major === 10 && minor < 6))
      throw new UnsupportedServerError(`MariaDB ${version.split(' ')[0]} is not supported: Regent needs MariaDB 10.6 or later`);
    return new MariadbFlavor();
  }
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) throw new UnsupportedServerError(`cannot tell the server family from version "${version}"`);
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major < 8 || (major === 8 && minor === 0 && patch < 23))
    throw new UnsupportedServerError(`MySQL ${m[0]} is not supported: Regent needs MySQL 8.0.23 or later`);
  return new MysqlFlavor({ major, minor, patch });
}
