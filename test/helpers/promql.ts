import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from './env.ts';

/**
 * The series selectors of PromQL expressions (alerting rules, Grafana panels), found by a tokenizer,
 * not by a regular expression over the text: function and aggregation names, keywords, grouping
 * labels (by/without/on/ignoring/group_left/group_right), strings, numbers, durations and range or
 * subquery brackets are told apart from metric names. Grafana's $variables in matcher values match
 * anything.
 */

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}
export interface Selector {
  name: string;
  matchers: Matcher[];
  /** The expression it came from, for messages. */
  expr: string;
}

type Token = { kind: 'ident' | 'string' | 'number' | 'punct' | 'op'; text: string };

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'atan2', 'Inf', 'NaN', 'inf', 'nan']);
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

export function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      let value = '';
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === '\\' && c !== '`') {
          value += expr[j + 1] ?? '';
          j += 2;
        } else value += expr[j++];
      }
      if (j >= expr.length) throw new Error(`unterminated string in ${expr}`);
      tokens.push({ kind: 'string', text: value });
      i = j + 1;
      continue;
    }
    const number = /^(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?([smhdwy]|ms)?([0-9]+([smhdwy]|ms))*|Inf|NaN)/.exec(expr.slice(i));
    if (/[0-9.]/.test(c) && number) {
      tokens.push({ kind: 'number', text: number[0] });
      i += number[0].length;
      continue;
    }
    const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i));
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0] });
      i += ident[0].length;
      continue;
    }
    const op = /^(=~|!~|!=|==|>=|<=|[-+*/%^<>=,])/.exec(expr.slice(i));
    if (op) {
      tokens.push({ kind: 'op', text: op[0] });
      i += op[0].length;
      continue;
    }
    if ('(){}[]'.includes(c)) {
      tokens.push({ kind: 'punct', text: c });
      i++;
      continue;
    }
    if (c === '$') {
      // A Grafana variable outside a string ($__rate_interval in a range): one token.
      const v = /^\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?/.exec(expr.slice(i));
      if (!v) throw new Error(`unexpected "$" at ${i} in ${expr}`);
      tokens.push({ kind: 'number', text: v[0] });
      i += v[0].length;
      continue;
    }
    throw new Error(`unexpected "${c}" at ${i} in ${expr}`);
  }
  return tokens;
}

export function selectors(expr: string): Selector[] {
  const t = tokenize(expr);
  const out: Selector[] = [];
  const matchersAt = (start: number): { matchers: Matcher[]; end: number } => {
    // t[start] is '{'
    const matchers: Matcher[] = [];
    let k = start + 1;
    while (t[k] && t[k]!.text !== '}') {
      const label = t[k];
      const op = t[k + 1];
      const value = t[k + 2];
      if (label?.kind !== 'ident' || op?.kind !== 'op' || !['=', '!=', '=~', '!~'].includes(op.text) || value?.kind !== 'string')
        throw new Error(`bad label matcher near token ${k} in ${expr}`);
      matchers.push({ label: label.text, op: op.text as Matcher['op'], value: value.text });
      k += 3;
      if (t[k]?.text === ',') k++;
    }
    if (!t[k]) throw new Error(`unclosed { in ${expr}`);
    return { matchers, end: k };
  };
  for (let k = 0; k < t.length; k++) {
    const tok = t[k]!;
    if (tok.kind === 'punct' && tok.text === '[') {
      // range or subquery: durations and $variables, no selectors
      while (k < t.length && t[k]!.text !== ']') k++;
      continue;
    }
    if (tok.kind === 'punct' && tok.text === '{') {
      const { matchers, end } = matchersAt(k);
      const name = matchers.find((m) => m.label === '__name__' && m.op === '=');
      if (!name) throw new Error(`a selector without a metric name in ${expr}`);
      out.push({ name: name.value, matchers: matchers.filter((m) => m !== name), expr });
      k = end;
      continue;
    }
    if (tok.kind !== 'ident') continue;
    if (LABEL_LIST_KEYWORDS.has(tok.text) && t[k + 1]?.text === '(') {
      while (k < t.length && t[k]!.text !== ')') k++;
      continue;
    }
    if (KEYWORDS.has(tok.text)) continue;
    if (t[k + 1]?.text === '(') continue; // a function or an aggregation
    if (AGGREGATIONS.has(tok.text) && (t[k + 1]?.text === 'by' || t[k + 1]?.text === 'without')) continue; // sum by (x) (...)
    if (t[k + 1]?.text === '{') {
      const { matchers, end } = matchersAt(k + 1);
      out.push({ name: tok.text, matchers, expr });
      k = end;
    } else out.push({ name: tok.text, matchers: [], expr });
  }
  return out;
}

/** Every expression of the alerting rules file. */
export function ruleExpressions(file = join(ROOT, 'deploy/prometheus/regent-alerts.yml')): { name: string; expr: string; annotations: Record<string, string> }[] {
  const doc = parseYaml(readFileSync(file, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string; annotations?: Record<string, string> }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ name: r.alert ?? r.record ?? '?', expr: String(r.expr), annotations: r.annotations ?? {} })));
}

/** Every PromQL expression of the Grafana dashboard: panel targets and query variables. */
export function dashboardExpressions(file = join(ROOT, 'deploy/grafana/regent-dashboard.json')): { name: string; expr: string }[] {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
  };
  const out: { name: string; expr: string }[] = [];
  for (const p of doc.panels) for (const t of p.targets ?? []) out.push({ name: `panel "${p.title}"`, expr: t.expr });
  for (const v of doc.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query ?? '';
    // Grafana's label_values(SELECTOR, LABEL): the first argument is PromQL, the second a label name.
    const lv = /^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.exec(q.trim());
    out.push({ name: `variable $${v.name}`, expr: lv ? lv[1]! : q });
  }
  return out;
}

/** Samples of a Prometheus text exposition: metric name and labels. */
export function parseExposition(text: string): { name: string; labels: Record<string, string> }[] {
  const samples: { name: string; labels: Record<string, string> }[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? \S+$/.exec(line);
    if (!m) throw new Error(`not Prometheus text format: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    samples.push({ name: m[1]!, labels });
  }
  return samples;
}

/** Whether a sample satisfies a selector (matchers whose value holds a Grafana $variable match anything). */
export function matches(sel: Selector, sample: { name: string; labels: Record<string, string> }): boolean {
  if (sample.name !== sel.name) return false;
  return sel.matchers.every((m) => {
    if (m.value.includes('$')) return true;
    const v = sample.labels[m.label] ?? '';
    switch (m.op) {
      case '=':
        return v === m.value;
      case '!=':
        return v !== m.value;
      case '=~':
        return new RegExp(`^(?:${m.value})$`).test(v);
      case '!~':
        return !new RegExp(`^(?:${m.value})$`).test(v);
    }
  });
}
