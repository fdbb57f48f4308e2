import { callManager } from '../src/cli/api-client.ts';
import { PORT } from '../src/sandbox/sandbox.ts';
import { startSandbox } from '../test/helpers/env.ts';
import { ManagerProcess } from '../test/helpers/manager.ts';
import { WriteLoad } from '../chaos/workload.ts';
import { summary } from './stats.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Switchovers under writes through Regent's writer endpoint: the client-visible write pause is the
 * longest gap between two acknowledged writes around each switchover (3 writer connections).
 * Also reports the pause Regent measured itself (hold to release).
 */
export async function benchSwitchover(args: string[]): Promise<void> {
  const count = Number(args.find((a) => a.startsWith('--count='))?.split('=')[1] ?? 10);
  const { sandbox: sb, cleanup } = await startSandbox({ nodes: 3 });
  const manager = new ManagerProcess(sb.configFile, { env: { REGENT_LOG_LEVEL: 'info' } });
  let load: WriteLoad | undefined;
  try {
    await sb.sql(sb.node(1), ['CREATE TABLE app.sw (id BIGINT PRIMARY KEY, server_id INT NOT NULL, sent_at BIGINT NOT NULL) ENGINE=InnoDB']);
    await manager.waitFor((e) => e.event === 'manager_started', 20000);
    await sleep(1500);
    const base = sb.node(1).port;
    load = new WriteLoad(base + PORT.writer, sb.appAccount(), 3, 'app.sw');
    const config = sb.config();
    const clientPause: number[] = [];
    const regentPause: number[] = [];
    await sleep(1500);
    for (let i = 0; i < count; i++) {
      const t0 = Date.now();
      // The CLI's API client: address, token and TLS from the sandbox config.
      const res = await callManager(config, 'POST', '/api/v1/clusters/sandbox/switchover', {});
      const body = (res?.json ?? {}) as { ok?: boolean; writePauseMs?: number; newPrimary?: string; error?: string };
      if (!res || res.status !== 200 || !body.ok) throw new Error(`switchover ${i + 1} failed: ${body.error ?? res?.status ?? 'no manager answers'}`);
      await sleep(1500);
      const gap = load.longestGap(t0, Date.now() - 1000);
      clientPause.push(gap);
      regentPause.push(body.writePauseMs ?? NaN);
      process.stderr.write(`switchover ${i + 1}/${count} -> ${body.newPrimary}: client-visible pause ${gap} ms (Regent: ${body.writePauseMs} ms)\n`);
    }
    const c = summary(clientPause);
    const r = summary(regentPause);
    const lost = load.errors.length;
    process.stdout.write(
      [
        '| switchovers under writes | count | median | max |',
        '|---|---|---|---|',
        `| client-visible write pause (longest gap between acknowledged writes) | ${c.n} | ${c.median} ms | ${c.max} ms |`,
        `| write pause measured by Regent (hold to release) | ${r.n} | ${r.median} ms | ${r.max} ms |`,
        '',
        `client samples: ${clientPause.join(', ')}; failed write attempts during the run: ${lost}`,
        '',
      ].join('\n'),
    );
  } finally {
    await load?.stop();
    await manager.stop();
    await cleanup();
  }
}
