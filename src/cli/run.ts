import type { Config } from '../config/load.ts';
import { Manager } from '../manager/manager.ts';
import type { StepName } from '../recovery/plan.ts';
import { createLogger } from '../util/log.ts';

/** `regent run`: the manager, until SIGINT or SIGTERM. */
export async function runCommand(config: Config): Promise<number> {
  const log = createLogger(process.env.REGENT_LOG_LEVEL ?? config.logLevel);
  // Test-only pause point: the chaos and HA tests kill a manager in the middle of a failover.
  const pauseAfterStep = process.env.REGENT_TEST_PAUSE_AFTER_STEP as StepName | undefined;
  const manager = new Manager(config, log, { pauseAfterStep });
  await manager.start();
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await manager.stop();
  return 0;
}
