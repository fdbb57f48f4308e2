import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerRoutes } from '../api/routes.ts';
import { ApiServer } from '../api/server.ts';
import type { Config } from '../config/load.ts';
import { CredentialsRejected } from '../errors.ts';
import { Manager, type ManagerOptions } from '../manager/manager.ts';
import { routes } from '../router/host.ts';
import { registerUi } from '../ui/serve.ts';
import { createLogger, heldDestination, type Logger } from '../util/log.ts';
import { readPidFile } from '../util/processes.ts';

export interface RunningManager {
  manager: Manager;
  api?: ApiServer;
  stop(): Promise<void>;
}

/**
 * The composition root: builds the manager and its HTTP API (API, dashboard, /metrics) and wires
 * one to the other through the interface the API declares, then starts both. On a failed start,
 * whatever did start (the API port) is released before the error goes on.
 */
export async function startManager(config: Config, log: Logger, opts: Omit<ManagerOptions, 'apiAddress'> = {}): Promise<RunningManager> {
  const api = config.api ? apiServer(config.api, log) : undefined;
  const manager = new Manager(config, log, { ...opts, apiAddress: api?.address });
  if (api) {
    // The data plane's series (router, SQL endpoint) come from its own process.
    api.serveMetrics(manager.registry, async () => (manager.dataPlane ? manager.dataPlane.metrics() : ''));
    registerRoutes(api, manager);
    registerUi(api);
  }
  const stop = async () => {
    await manager.stop().catch(() => undefined);
    await api?.stop().catch(() => undefined);
  };
  try {
    await api?.start();
    await manager.start();
  } catch (e) {
    await stop();
    throw e;
  }
  return { manager, api, stop };
}

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
  const observeOnly = opts.observeOnly ?? false;
  if (observeOnly && !config.clusters.some(routes)) {
    stderr.release();
    log.error({ event: 'no_router' }, 'no cluster has router.writer, router.reader, router.sql or health endpoints configured: nothing to serve');
    return 2;
  }
  let running: RunningManager;
  try {
    running = await startManager(config, log, { pauseAfterStep, delayBeforeStep, skipDrain, observeOnly });
  } catch (e) {
    // The refusal's own line says it all; any other failure keeps the log that led to it.
    if (e instanceof CredentialsRejected) stderr.discard();
    else stderr.release();
    throw e;
  }
  stderr.release();
  // SIGHUP (and `regent reload`): read the configuration again; a file that does not load
  // changes nothing and is reported in one line.
  const onHangup = () =>
    void running.manager.reload('SIGHUP').catch((e: Error) => log.error({ event: 'reload_failed', trigger: 'SIGHUP', err: e.message }, `configuration not reloaded, nothing changed: ${e.message}`));
  process.on('SIGHUP', onHangup);
  const pidFile = managerPidFile(config);
  mkdirSync(config.stateDir, { recursive: true });
  writeFileSync(pidFile, `${process.pid}\n`);
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  process.off('SIGHUP', onHangup);
  if (readPidFile(pidFile) === process.pid) rmSync(pidFile, { force: true });
  await running.stop();
  return 0;
}

/** Where `regent run` notes its PID, for `regent reload` on a host without manager.api. */
export function managerPidFile(config: Config): string {
  return join(config.stateDir, `manager-${createHash('sha256').update(config.file).digest('hex').slice(0, 8)}.pid`);
}

function apiServer(settings: NonNullable<Config['api']>, log: Logger): ApiServer {
  const i = settings.listen.lastIndexOf(':');
  return new ApiServer({ host: settings.listen.slice(0, i), port: Number(settings.listen.slice(i + 1)) }, settings.token, log, settings.tls);
}
