import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { configJsonSchema, walkKeys } from '../../scripts/gen-config-reference.ts';
import { ROOT } from '../helpers/env.ts';

/**
 * Every configuration key does something: an operator who sets a key that no code reads gets
 * no protection and no error. Each key must be read somewhere in src besides the schema that
 * declares it (as `.key`, `['key']`, `'key' in`, or destructured).
 */

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs)$/.test(p)) out.push(p);
  }
  return out;
}

// File by file: a quote the stripping below misreads (a regex literal, a nested template) then
// hides code of that file only, not of every file after it.
const code = sources(join(ROOT, 'src'))
  .filter((f) => relative(ROOT, f) !== 'src/config/schema.ts')
  .map((f) => readFileSync(f, 'utf8'));

/**
 * Whether `key` is read in `text`. Comments and the text of messages do not count (a message that
 * names a key reads nothing), so both are taken out first; what is left must use the key.
 */
export function readSomewhere(key: string, text: string): boolean {
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (new RegExp(`\\['${k}'\\]|'${k}' in\\b`).test(text)) return true;
  const bare = text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/`(?:[^`\\]|\\.)*`|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''");
  return new RegExp(`\\.${k}\\b|\\{[^}=;]*\\b${k}\\b[^}=;]*\\}\\s*=`).test(bare);
}

test('every key of the configuration schema is read by some code', () => {
  const keys = walkKeys(configJsonSchema());
  const unread = keys.map((k) => k.path).filter((path) => !code.some((text) => readSomewhere(path.replace(/\[\]/g, '').split('.').pop()!, text)));
  assert.deepEqual(unread, []);
});

test('the check sees a key nobody reads', () => {
  assert.equal(readSomewhere('maxLagForCandidateSeconds', 'const x = cluster.failover.drainTimeoutSeconds;'), false);
  assert.equal(readSomewhere('maxLagForCandidateSeconds', 'maxLagSeconds: cluster.failover.maxLagForCandidateSeconds,'), true);
  assert.equal(readSomewhere('primaryLease', 'const { tls, primaryLease, ...rest } = c;'), true);
  assert.equal(readSomewhere('env', "if ('env' in ref) return"), true);
  // Named in a message or a comment only: not read.
  assert.equal(readSomewhere('maxLagForCandidateSeconds', "// see failover.maxLagForCandidateSeconds\nconst m = `over failover.maxLagForCandidateSeconds (${x} s)`;"), false);
});
