#!/usr/bin/env node
// Runs the whole suite with node's test runner: unit tests first (fast, no servers), then the
// end-to-end tests against real servers. Extra arguments are test files or name filters.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function files(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

const args = process.argv.slice(2);
const concurrency = process.env.REGENT_TEST_CONCURRENCY ?? '2';
const env = { ...process.env, REGENT_LOG_LEVEL: process.env.REGENT_LOG_LEVEL ?? 'warn' };

function runFiles(list, n) {
  if (list.length === 0) return 0;
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${n}`, '--test-reporter=spec', ...list], { stdio: 'inherit', env });
  return result.status ?? 1;
}

if (args.length > 0) process.exit(runFiles(args, concurrency));

// Two end-to-end files at a time: each starts its own mariadbd processes on its own ports, and
// the CI machine has two cores. Files whose bounds depend on timing (pauses in milliseconds,
// errors counted around a crash; they say `regent-test: alone` in their first lines) run
// afterwards, one at a time: next to another file's servers on two cores, a 100 ms bound
// measures the neighbour, not Regent.
const e2e = files('test/e2e');
const alone = e2e.filter((f) => /regent-test: alone/.test(readFileSync(f, 'utf8').slice(0, 2000)));
const shared = [...files('test/unit'), ...e2e.filter((f) => !alone.includes(f))];
const first = runFiles(shared, concurrency);
const second = runFiles(alone, 1);
process.exit(first || second);
