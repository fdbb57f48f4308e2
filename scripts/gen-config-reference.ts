#!/usr/bin/env -S node --import tsx
// Writes docs/config-reference.md from the configuration schema (src/config/schema.ts): every key
// path with its type, default and description. `--check` only compares and exits 1 on a difference.
// test/unit/config-reference.test.ts regenerates it in memory, so the committed file never drifts.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.ts';

/** The subset of JSON Schema (draft 2020-12, as z.toJSONSchema writes it) the walker reads. */
export interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  minItems?: number;
  pattern?: string;
}

export interface KeyDoc {
  /** Dotted path; list items as [], e.g. clusters[].instances[].port. */
  path: string;
  type: string;
  required: boolean;
  /** JSON text of the default, when there is one. */
  default?: string;
  description?: string;
  /** Set for keys that exist only in one alternative of a union, e.g. "only with backend: etcd". */
  when?: string;
}

/** The schema as users write it (io: input): keys with defaults are optional. */
export function configJsonSchema(schema: z.ZodType = configSchema): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

/** Every key of every object in the schema, depth first, in declaration order. */
export function walkKeys(schema: JsonSchema, prefix = '', when?: string): KeyDoc[] {
  const out: KeyDoc[] = [];
  const required = new Set(schema.required ?? []);
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push({
      path,
      type: typeOf(child),
      required: required.has(key),
      ...(child.default !== undefined ? { default: JSON.stringify(child.default) } : {}),
      ...(child.description !== undefined ? { description: child.description } : {}),
      ...(when ? { when } : {}),
    });
    out.push(...walkChildren(child, path, when));
  }
  return out;
}

function walkChildren(node: JsonSchema, path: string, when?: string): KeyDoc[] {
  const out: KeyDoc[] = [];
  if (node.properties) out.push(...walkKeys(node, path, when));
  if (node.items) out.push(...walkChildren(node.items, `${path}[]`, when));
  for (const alt of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) {
    // An alternative picked by a constant (a discriminated union) qualifies its other keys.
    const disc = Object.entries(alt.properties ?? {}).find(([, p]) => p.const !== undefined);
    const form = alt.properties ? `in the {${Object.keys(alt.properties).join(', ')}} form` : undefined;
    out.push(...walkChildren(alt, path, disc ? `only with ${disc[0]}: ${String(disc[1].const)}` : (form ?? when)));
  }
  return out;
}

/** Paths of keys without a description: every key must explain itself. */
export function undocumentedKeys(schema: JsonSchema): string[] {
  return walkKeys(schema)
    .filter((k) => !k.description || k.description.trim() === '')
    .map((k) => (k.when ? `${k.path} (${k.when})` : k.path));
}

function typeOf(s: JsonSchema): string {
  const alts = s.anyOf ?? s.oneOf;
  if (alts) {
    const disc = alts.map((a) => Object.entries(a.properties ?? {}).find(([, p]) => p.const !== undefined)).filter(Boolean);
    if (disc.length === alts.length && disc.length > 0) return `mapping, one of ${disc.map((d) => `{${d![0]}: ${JSON.stringify(d![1].const)}, …}`).join(' or ')}`;
    return alts.map(shortType).join(' or ');
  }
  const t = Array.isArray(s.type) ? s.type.join(' or ') : s.type;
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(' or ');
  if (t === 'array') return `list${s.minItems ? ` (at least ${s.minItems})` : ''} of ${s.items?.type === 'object' ? 'mappings' : s.items ? shortType(s.items) : 'anything'}`;
  if (t === 'object') {
    if (!s.properties && typeof s.additionalProperties === 'object') return `mapping of name to ${shortType(s.additionalProperties)}`;
    return 'mapping';
  }
  if (t === 'integer' || t === 'number') {
    // zod writes the safe-integer limits of .int() as bounds: they are no real limit.
    const bound = (n: number | undefined) => (n === undefined || Math.abs(n) >= Number.MAX_SAFE_INTEGER ? undefined : n);
    const min = bound(s.minimum ?? s.exclusiveMinimum);
    const max = bound(s.maximum);
    const range = min !== undefined && max !== undefined ? `, ${min} to ${max}` : min !== undefined ? `, at least ${min}` : max !== undefined ? `, at most ${max}` : '';
    return `${t === 'integer' ? 'whole number' : 'number'}${range}`;
  }
  if (t === 'string') {
    if (s.pattern) return `string matching \`${s.pattern}\``;
    return s.minLength ? 'non-empty string' : 'string';
  }
  return t ?? 'any';
}

/** A compact type for list items and union members. */
function shortType(s: JsonSchema): string {
  if (s.type === 'object' && s.properties) return `{${Object.keys(s.properties).join(', ')}}`;
  if (s.type === 'object') return 'mapping';
  if (s.type === 'string') return s.pattern ? `string (\`${s.pattern}\`)` : 'string';
  return typeOf(s);
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
/** Prose outside code spans: <prefix> would otherwise be read as an HTML tag. */
const prose = (text: string): string => cell(text).replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Rows of the same path from different union alternatives become one row. */
function mergeRows(keys: KeyDoc[]): KeyDoc[] {
  const byPath = new Map<string, KeyDoc[]>();
  for (const k of keys) byPath.set(k.path, [...(byPath.get(k.path) ?? []), k]);
  const out: KeyDoc[] = [];
  for (const [path, group] of byPath) {
    const first = group[0]!;
    if (group.length === 1) {
      out.push(first);
      continue;
    }
    const types = [...new Set(group.map((g) => g.type))];
    const descriptions = [...new Set(group.map((g) => g.description ?? ''))];
    out.push({
      path,
      type: types.join(' or '),
      required: group.every((g) => g.required),
      ...(first.default !== undefined ? { default: first.default } : {}),
      description: descriptions.length === 1 ? descriptions[0] : group.map((g) => `${g.type}: ${g.description ?? ''}`).join(' '),
    });
  }
  return out;
}

export function renderConfigReference(schema: JsonSchema = configJsonSchema()): string {
  const keys = mergeRows(walkKeys(schema));
  const lines: string[] = [
    '<!-- Generated by scripts/gen-config-reference.ts from src/config/schema.ts: do not edit by hand.',
    '     Regenerate with `node --import tsx scripts/gen-config-reference.ts`; a unit test fails when this file drifts. -->',
    '',
    '# Configuration reference',
    '',
    `${schema.description ?? ''} Every command takes it with \`--config FILE\`. Unknown keys are refused`,
    'with the key named; relative paths (state directory, password files) are relative to the file itself.',
    '',
    'Passwords and tokens are secrets: write `{env: NAME}` (an environment variable) or `{file: PATH}` (a',
    'file holding only the value, mode 0600) rather than the value itself. Regent never prints them.',
    '`regent grants --config FILE` prints the accounts to create; `regent doctor --config FILE` checks a',
    'running cluster against this configuration.',
    '',
    'Examples: [three nodes](examples/three-nodes.yaml), [two data centers with etcd](examples/two-datacenters.yaml).',
    '',
    'Key paths use `[]` for list items (`clusters[].instances[].port` is the port of each instance of each',
    'cluster). A key marked *required* must be given when its parent is; the others take the default shown,',
    'or stay unset.',
  ];
  const top = Object.keys(schema.properties ?? {});
  for (const section of top) {
    const rows = keys.filter((k) => k.path === section || k.path.startsWith(`${section}.`) || k.path.startsWith(`${section}[]`));
    const head = rows.find((r) => r.path === section);
    lines.push('', `## \`${section}\``, '', prose(head?.description ?? ''), '', '| key | type | default | description |', '|---|---|---|---|');
    for (const k of rows) {
      const def = k.default !== undefined ? `\`${k.default}\`` : k.required ? '*required*' : '(unset)';
      const desc = `${k.when ? `(${k.when}) ` : ''}${k.description ?? ''}`;
      lines.push(`| \`${k.path}\` | ${cell(k.type)} | ${cell(def)} | ${prose(desc)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export const REFERENCE_FILE = fileURLToPath(new URL('../docs/config-reference.md', import.meta.url));

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = renderConfigReference();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(REFERENCE_FILE, 'utf8');
    } catch {
      // missing counts as different
    }
    if (current !== text) {
      process.stderr.write(`${REFERENCE_FILE} is out of date; run: node --import tsx scripts/gen-config-reference.ts\n`);
      process.exit(1);
    }
    process.stdout.write(`${REFERENCE_FILE} is up to date\n`);
  } else {
    writeFileSync(REFERENCE_FILE, text);
    process.stdout.write(`wrote ${REFERENCE_FILE}\n`);
  }
}
