import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MissingDependencyError } from '../errors.ts';

/** Finds an executable on PATH (plus the sbin folders Debian puts servers in). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}


/** The path of a required program, or an error that says which Debian package brings it. */
export function requireExecutable(name: string, debianPackage: string): string {
  const p = findExecutable(name);
  if (p) return p;
  throw new MissingDependencyError(
    `${name} is not installed: run \`apt-get install -y ${debianPackage}\` as root (npm test and npm run demo do this for you when run as root)`,
  );
}
