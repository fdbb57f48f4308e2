import type { Config } from '../config/load.ts';
import type { SwitchoverResult } from '../recovery/switchover.ts';
import { callManager, managerRefusal } from './api-client.ts';
import { withOneShotSupervisor } from './one-shot.ts';
import { pickCluster } from './recovery.ts';

function print(result: SwitchoverResult): number {
  for (const s of result.steps) process.stdout.write(`${s.ok ? '✔' : '✖'} ${s.name} (${s.durationMs} ms): ${s.detail}\n`);
  if (!result.ok) {
    process.stderr.write(`regent: switchover failed: ${result.error}\n`);
    return 1;
  }
  process.stdout.write(`switchover done in ${result.durationMs} ms: ${result.oldPrimary} -> ${result.newPrimary}, writes paused ${result.writePauseMs} ms\n`);
  return 0;
}

/**
 * `regent switchover`: through the running manager when there is one (its router holds the
 * writes), otherwise by itself with the same checks and steps.
 */
export async function switchoverCommand(config: Config, opts: { cluster?: string; to?: string }): Promise<number> {
  const cluster = pickCluster(config, opts.cluster);
  const viaManager = await callManager(config, 'POST', `/api/v1/clusters/${encodeURIComponent(cluster.name)}/switchover`, { target: opts.to });
  if (viaManager) {
    // A 500 carries the result of a switchover that ran and failed (with its steps); other errors
    // are refusals, after which nothing changed.
    if (viaManager.status >= 400 && !viaManager.json['steps']) {
      const refusal = managerRefusal(viaManager, 'switchover');
      process.stderr.write(`${refusal.line}\n`);
      return refusal.code;
    }
    return print(viaManager.json as unknown as SwitchoverResult);
  }
  return withOneShotSupervisor(config, cluster, 'switchover', async (supervisor) => {
    const r = await supervisor.manual.switchover(opts.to, 'manual (CLI)');
    if ('refusal' in r) {
      process.stderr.write(`regent: switchover refused: ${r.refusal}\n`);
      return 1;
    }
    return print(r);
  });
}
