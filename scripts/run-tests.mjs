#!/usr/bin/env node
// Runs the whole suite with node's test runner: unit tests first (fast, no servers), then the
// end-to-end tests against real servers. Extra arguments are test files or name filters.
import { readdirSync, statSync } from 'node:fs';
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
const selected = args.length > 0 ? args : [...files('test/unit'), ...files('test/e2e')];
// Two end-to-end files at a time: each starts its own mariadbd processes on its own ports, and
// the CI machine has two cores.
const concurrency = process.env.REGENT_TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...selected],
  { stdio: 'inherit', env: { ...process.env, REGENT_LOG_LEVEL: process.env.REGENT_LOG_LEVEL ?? 'warn' } },
);
process.exit(result.status ?? 1);
