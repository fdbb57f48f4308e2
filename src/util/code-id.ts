import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let cached: string | undefined;

/**
 * Which code this process runs: a hash of package.json and every source file. A manager compares
 * its own with the running data plane's; a data plane started from older code is upgraded (its
 * listening sockets handed to a new process, no session dropped).
 */
export function codeId(): string {
  if (cached) return cached;
  const h = createHash('sha256');
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((e) => {
        const p = join(dir, e);
        return statSync(p).isDirectory() ? walk(p) : /\.(ts|js|mjs|json)$/.test(e) ? [p] : [];
      });
  for (const f of [join(ROOT, 'package.json'), ...walk(join(ROOT, 'src'))]) h.update(f.slice(ROOT.length)).update('\0').update(readFileSync(f)).update('\0');
  cached = h.digest('hex').slice(0, 12);
  return cached;
}
