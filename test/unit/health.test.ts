import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healthOf, type Health, type InstanceReport } from '../../src/analysis/cluster-report.ts';
import { problem, type Problem } from '../../src/analysis/problems.ts';

// A cluster's health in one word (status exit code, API, dashboard): down, degraded or healthy.

const inst = (n: number, reachable: boolean): InstanceReport => ({ id: `127.0.0.1:${3300 + n}`, name: `n${n}`, role: n === 1 ? 'primary' : 'replica', reachable, promotion: 'neutral' });
const up = [inst(1, true), inst(2, true), inst(3, true)];

const dead: Problem = problem('DeadPrimaryAndAllReplicas', { instance: '127.0.0.1:3301', summary: 's', evidence: ['e'], data: {} });
const critical: Problem = problem('DeadPrimary', { instance: '127.0.0.1:3301', summary: 's', evidence: ['e'], data: { confirmedBy: ['127.0.0.1:3302'] } });
const warning: Problem = problem('ReplicaLagging', { instance: '127.0.0.1:3302', summary: 's', evidence: ['e'], data: { seconds: 60, thresholdSeconds: 10 } });
// No registered code is info-only today; the rule is about severity, so build one.
const info = { ...warning, severity: 'info' } as Problem;

const cases: { name: string; problems: Problem[]; instances: InstanceReport[]; expect: Health }[] = [
  { name: 'no problem, everything reachable: healthy', problems: [], instances: up, expect: 'healthy' },
  { name: 'every instance unreachable: down, even before any problem is reported', problems: [], instances: [inst(1, false), inst(2, false)], expect: 'down' },
  { name: 'DeadPrimaryAndAllReplicas: down, even if the report still shows a reachable instance', problems: [dead], instances: up, expect: 'down' },
  { name: 'a critical problem: degraded', problems: [critical], instances: [inst(1, false), inst(2, true)], expect: 'degraded' },
  { name: 'a warning: degraded', problems: [warning], instances: up, expect: 'degraded' },
  { name: 'only info problems: healthy', problems: [info], instances: up, expect: 'healthy' },
  { name: 'info and warning: degraded', problems: [info, warning], instances: up, expect: 'degraded' },
  { name: 'one instance reachable: not down', problems: [], instances: [inst(1, false), inst(2, true)], expect: 'healthy' },
];

for (const c of cases) test(`healthOf: ${c.name}`, () => assert.equal(healthOf(c.problems, c.instances), c.expect));
