// `npm run chaos -- --minutes N --seed S [--nodes 5] [--report-dir docs/chaos] [--scenario random|stuck-relay-log] [--skip-drain] [--router-processes N]`
import { parseArgs } from 'node:util';
import { renderReport, runChaos } from './run.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    nodes: { type: 'string', default: '5' },
    'report-dir': { type: 'string', default: 'test-artifacts/chaos' },
    scenario: { type: 'string', default: 'random' },
    'skip-drain': { type: 'boolean', default: false },
    'router-processes': { type: 'string' },
  },
});
const scenario = values.scenario === 'stuck-relay-log' ? 'stuck-relay-log' : 'random';
const report = await runChaos({
  minutes: Number(values.minutes),
  seed: Number(values.seed),
  nodes: Number(values.nodes),
  reportDir: values['report-dir'],
  scenario,
  skipDrain: values['skip-drain'],
  routerProcesses: values['router-processes'] !== undefined ? Number(values['router-processes']) : undefined,
});
process.stdout.write(renderReport(report));
process.exitCode = report.violations.length === 0 ? 0 : 1;
