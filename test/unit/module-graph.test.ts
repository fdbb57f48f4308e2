import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/env.ts';

/**
 * The seams of the source tree, checked on the text of every module: no import cycle (between
 * files, or between the folders that name Regent's parts), the server families behind src/sql,
 * and one owner for the decided primary.
 */

const SRC = join(ROOT, 'src');

function sourceFiles(dir = SRC): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const files = sourceFiles();
const rel = (f: string) => relative(SRC, f);
const text = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));

/** Every relative import and re-export, type-only ones included: a type cycle is a tangle too. */
function imports(f: string): string[] {
  const out: string[] = [];
  for (const m of text.get(f)!.matchAll(/^(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/gms)) out.push(resolve(dirname(f), m[1]!));
  return out;
}

function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('no module imports itself back, directly or through others (type imports included)', () => {
  const graph = new Map(files.map((f) => [f, new Set(imports(f).filter((t) => text.has(t)))]));
  assert.deepEqual(cycles(graph).map((c) => c.map(rel).sort()), []);
});

test('no two parts of Regent import each other (folders under src, type imports included)', () => {
  const part = (f: string) => rel(f).split('/')[0]!;
  const graph = new Map<string, Set<string>>();
  for (const f of files) {
    const from = part(f);
    if (!graph.has(from)) graph.set(from, new Set());
    for (const t of imports(f)) if (text.has(t) && part(t) !== from) graph.get(from)!.add(part(t));
  }
  assert.deepEqual(cycles(graph).map((c) => c.sort()), []);
  // The API declares what it needs of a manager; the composition root wires the two.
  assert.ok(!graph.get('api')!.has('manager'), 'src/api imports src/manager');
  assert.ok(!graph.get('manager')!.has('api'), 'src/manager imports src/api');
});

// src/sim plays the server's side (it answers statements and words its errors as MariaDB does);
// it issues none.
const outsideSql = files.filter((f) => !rel(f).startsWith('sql/') && !rel(f).startsWith('sim/'));

/** Code lines only: what a comment says is not what a module does. */
function code(f: string): string[] {
  return text
    .get(f)!
    .split('\n')
    .filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l));
}

test('outside src/sql nothing asks which server family it talks to', () => {
  // flavor.name === ..., flavor() === ..., or a family's name compared with anything.
  const asks = /flavor\.name\s*[!=]==|flavor\(\)\s*[!=]==|[!=]==\s*'(mysql|mariadb)'|'(mysql|mariadb)'\s*[!=]==/;
  const found = outsideSql.flatMap((f) => code(f).filter((l) => asks.test(l)).map((l) => `${rel(f)}: ${l.trim()}`));
  assert.deepEqual(found, []);
});

test('outside src/sql no module issues SQL of its own', () => {
  const statements = /\b(RESET MASTER|RESET BINARY LOGS|CHANGE MASTER|CHANGE REPLICATION SOURCE|SET GLOBAL read_only|START SLAVE|STOP SLAVE|START REPLICA|STOP REPLICA)\b/;
  const issued = /\.(query|queryOne)\(\s*['`"]/;
  // The SQL endpoint's own statements on backend connections (BackendConnection.run, COM_QUERY payloads).
  const endpoint = /\.run\(\s*['`"]|queryPayload\(\s*['`"]/;
  const found = outsideSql.flatMap((f) =>
    code(f)
      .filter((l) => statements.test(l) || issued.test(l) || (rel(f).startsWith('router/') && endpoint.test(l)))
      .map((l) => `${rel(f)}: ${l.trim()}`),
  );
  assert.deepEqual(found, []);
});

test('the decided primary is assigned in the decision module only', () => {
  // An assignment to the field, or an object literal that sets it from something other than a
  // decision it reads (`decidedPrimary: x.decidedPrimary` passes a decision on; that is reading).
  const assigns = /\bdecidedPrimary\s*=(?!=)|\bdecidedPrimary:\s*(?![\w.?]*decidedPrimary\b)[^,}\s]/;
  const found = files
    .filter((f) => !rel(f).startsWith('decision/'))
    .flatMap((f) => code(f).filter((l) => assigns.test(l) && !/^\s*(readonly\s+)?decidedPrimary\?:/.test(l)).map((l) => `${rel(f)}: ${l.trim()}`));
  assert.deepEqual(found, []);
});
