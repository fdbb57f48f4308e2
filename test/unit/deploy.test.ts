import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/env.ts';
import { dashboardExpressions, ruleExpressions, selectors } from '../helpers/promql.ts';

/**
 * deploy/: the Prometheus alerting rules pass promtool (syntax, and the unit tests beside them that
 * make each alert fire), every alert explains itself and links to a runbook section that exists, and
 * the Grafana dashboard is well formed. That every metric they name is really exported is checked
 * against a live manager in test/e2e/observability.test.ts.
 */

const RULES = join(ROOT, 'deploy/prometheus/regent-alerts.yml');

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: join(ROOT, 'deploy/prometheus'), encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is missing (npm test installs Debian's prometheus package for it): ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

test('promtool check rules passes on the alerting rules', () => {
  const r = promtool(['check', 'rules', RULES]);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: every alert fires on trouble and stays quiet on a healthy cluster', () => {
  const r = promtool(['test', 'rules', 'regent-alerts.test.yml']);
  assert.equal(r.status, 0, r.out);
  // Every alert of the rules file is exercised by the unit tests.
  const tested = readFileSync(join(ROOT, 'deploy/prometheus/regent-alerts.test.yml'), 'utf8');
  for (const { name } of ruleExpressions()) assert.match(tested, new RegExp(`alertname: ${name}\\b`), `${name} has no promtool unit test`);
});

test('the alerts the operator needs exist, each with a severity, summary, description and a runbook section that exists', () => {
  const rules = ruleExpressions();
  const names = rules.map((r) => r.name);
  for (const needed of ['RegentPrimaryDown', 'RegentFailoverFailed', 'RegentFailoverBlocked', 'RegentReplicaLagging', 'RegentReplicationBroken', 'RegentErrantTransactions', 'RegentNoLeader', 'RegentRouterHoldingConnections', 'RegentCredentialsRejected'])
    assert.ok(names.includes(needed), `missing alert ${needed}`);
  const doc = readFileSync(RULES, 'utf8');
  assert.equal((doc.match(/severity: (critical|warning)/g) ?? []).length, rules.length, 'every alert has severity critical or warning');
  const runbooks = readFileSync(join(ROOT, 'docs/runbooks.md'), 'utf8');
  const anchors = new Set([...runbooks.matchAll(/^#{2,4} (.+)$/gm)].map((m) => anchor(m[1]!)));
  for (const r of rules) {
    assert.ok((r.annotations['summary'] ?? '').length > 10, `${r.name}: summary`);
    assert.ok((r.annotations['description'] ?? '').length > 40, `${r.name}: description`);
    const url = r.annotations['runbook_url'] ?? '';
    const m = /^docs\/runbooks\.md#(.+)$/.exec(url);
    assert.ok(m, `${r.name}: runbook_url ${url} is not docs/runbooks.md#anchor`);
    assert.ok(anchors.has(m[1]!), `${r.name}: docs/runbooks.md has no heading for #${m[1]}`);
  }
});

test('every link to a section inside docs/runbooks.md leads to a heading that exists', () => {
  const runbooks = readFileSync(join(ROOT, 'docs/runbooks.md'), 'utf8');
  const anchors = new Set([...runbooks.matchAll(/^#{1,4} (.+)$/gm)].map((m) => anchor(m[1]!)));
  const links = [...runbooks.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
  assert.ok(links.length >= 10, `only ${links.length} internal links`);
  for (const l of links) assert.ok(anchors.has(l), `docs/runbooks.md links to #${l}, which is no heading`);
});

test('the PromQL selector extraction tells metric names from functions, keywords, labels and durations', () => {
  const got = selectors('max by (cluster, instance) (regent_instance_is_primary == 1 and on (cluster, instance) regent_instance_up{cluster=~"$cluster", role!="x"} == 0) > bool 0');
  assert.deepEqual(
    got.map((s) => [s.name, s.matchers.map((m) => `${m.label}${m.op}${m.value}`)]),
    [
      ['regent_instance_is_primary', []],
      ['regent_instance_up', ['cluster=~$cluster', 'role!=x']],
    ],
  );
  assert.deepEqual(
    selectors('histogram_quantile(0.99, sum by (le) (rate(regent_x_bucket{a="1"}[$__rate_interval]))) or vector(0) + absent(regent_y) offset 5m').map((s) => s.name),
    ['regent_x_bucket', 'regent_y'],
  );
  assert.deepEqual(selectors('sum(increase(regent_f_total{outcome="failed"}[30m])) by (cluster) / {__name__="regent_z"}').map((s) => s.name), ['regent_f_total', 'regent_z']);
  assert.throws(() => selectors('regent_a{cluster=}'), /bad label matcher/);
});

test('the Grafana dashboard: valid JSON, every panel queries Prometheus through the $datasource variable, a $cluster variable', () => {
  const doc = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/regent-dashboard.json'), 'utf8')) as {
    uid: string;
    title: string;
    panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
    templating: { list: { name: string }[] };
  };
  assert.equal(doc.uid, 'regent-overview');
  assert.deepEqual(doc.templating.list.map((v) => v.name), ['datasource', 'cluster']);
  const panels = doc.panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 15, `only ${panels.length} panels`);
  for (const p of panels) {
    assert.equal(p.datasource?.uid, '${datasource}', `panel ${p.title}`);
    assert.ok((p.targets ?? []).length > 0, `panel ${p.title} has no query`);
  }
  // Every expression parses and names at least one regent_ series.
  for (const e of dashboardExpressions()) assert.ok(selectors(e.expr).some((s) => s.name.startsWith('regent_')), `${e.name}: ${e.expr}`);
});
