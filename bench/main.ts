// `npm run bench -- <name> [options]`: benchmarks that need real servers. They print their numbers
// (and a Markdown block for docs/benchmarks.md); they never assert on wall-clock time.
import { benchFailover } from './failover.ts';
import { benchFleet } from './fleet.ts';
import { benchProxy } from './proxy.ts';
import { benchSwitchover } from './switchover.ts';

const [name, ...rest] = process.argv.slice(2);
const benches: Record<string, (args: string[]) => Promise<void>> = {
  failover: benchFailover,
  fleet: benchFleet,
  proxy: benchProxy,
  switchover: benchSwitchover,
};

const run = name ? benches[name] : undefined;
if (!run) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join('|')}>\n`);
  process.exit(2);
}
await run(rest);
