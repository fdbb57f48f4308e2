// `npm run chaos -- --minutes N --seed S [--nodes 5] [--report-dir docs/chaos] [--scenario random|stuck-relay-log] [--skip-drain] [--router-processes N]
//   [--managers 3 [--idle-clusters 2]] [--faults kind,kind,...] [--endpoint l4|sql] [--writers N]`
import { parseArgs } from 'node:util';
import { FAULT_KINDS, renderReport, runChaos, type FaultKind } from './run.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    nodes: { type: 'string', default: '5' },
    'report-dir': { type: 'string', default: 'test-artifacts/chaos' },
    scenario: { type: 'string', default: 'random' },
    'skip-drain': { type: 'boolean', default: false },
    'router-processes': { type: 'string' },
    managers: { type: 'string', default: '1' },
    'idle-clusters': { type: 'string' },
    faults: { type: 'string' },
    endpoint: { type: 'string', default: 'l4' },
    writers: { type: 'string' },
  },
});
const scenario = values.scenario === 'stuck-relay-log' ? 'stuck-relay-log' : 'random';
const faults = values.faults?.split(',').map((k) => k.trim()) as FaultKind[] | undefined;
const unknown = faults?.filter((k) => !FAULT_KINDS.includes(k)) ?? [];
if (unknown.length) {
  process.stderr.write(`unknown fault kind(s): ${unknown.join(', ')} (known: ${FAULT_KINDS.join(', ')})\n`);
  process.exit(2);
}
if (values.endpoint !== 'l4' && values.endpoint !== 'sql') {
  process.stderr.write(`--endpoint is l4 (the writer and reader endpoints) or sql (the SQL-aware endpoint), got ${values.endpoint}\n`);
  process.exit(2);
}
const report = await runChaos({
  minutes: Number(values.minutes),
  seed: Number(values.seed),
  nodes: Number(values.nodes),
  reportDir: values['report-dir'],
  scenario,
  skipDrain: values['skip-drain'],
  routerProcesses: values['router-processes'] !== undefined ? Number(values['router-processes']) : undefined,
  managers: Number(values.managers),
  idleClusters: values['idle-clusters'] !== undefined ? Number(values['idle-clusters']) : undefined,
  faults,
  endpoint: values.endpoint,
  writers: values.writers !== undefined ? Number(values.writers) : undefined,
});
process.stdout.write(renderReport(report));
process.exitCode = report.violations.length === 0 ? 0 : 1;
