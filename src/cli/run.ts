import type { Config } from '../config/load.ts';
import { Manager } from '../manager/manager.ts';
import { CredentialsRejected } from '../manager/credentials-watch.ts';
import { createLogger, heldDestination } from '../util/log.ts';

/**
 * `regent run`: the manager, until SIGINT or SIGTERM. `regent proxy` is the same process in
 * observe-only mode: it probes and routes, and follows the primary the acting manager decided.
 */
export async function runCommand(config: Config, opts: { observeOnly?: boolean } = {}): Promise<number> {
  // Held until the start stands (see heldDestination).
  const stderr = heldDestination(process.stderr);
  const log = createLogger(process.env.REGENT_LOG_LEVEL || config.logLevel, stderr);
  // Test-only pause point: the chaos and HA tests kill a manager in the middle of a failover.
  const pauseAfterStep = process.env.REGENT_TEST_PAUSE_AFTER_STEP;
  const [delayStep, delayMs] = (process.env.REGENT_TEST_DELAY_BEFORE_STEP ?? '').split(':');
  const delayBeforeStep = delayStep ? { step: delayStep, ms: Number(delayMs) } : undefined;
  const skipDrain = process.env.REGENT_TEST_SKIP_DRAIN === '1';
  if (skipDrain) log.warn({ event: 'test_mode' }, 'REGENT_TEST_SKIP_DRAIN is set: failovers skip the relay-log drain (test-only, loses data)');
  const manager = new Manager(config, log, { pauseAfterStep, delayBeforeStep, skipDrain, observeOnly: opts.observeOnly });
  if (opts.observeOnly && manager.routers.size === 0) {
    stderr.release();
    log.error({ event: 'no_router' }, 'no cluster has router.writer, router.reader or health endpoints configured: nothing to serve');
    return 2;
  }
  try {
    await manager.start();
  } catch (e) {
    // Release what did start (API port, pipe processes) so the error ends the process.
    await manager.stop().catch(() => undefined);
    // The refusal's own line says it all; any other failure keeps the log that led to it.
    if (e instanceof CredentialsRejected) stderr.discard();
    else stderr.release();
    throw e;
  }
  stderr.release();
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await manager.stop();
  return 0;
}
