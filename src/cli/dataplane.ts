import type { Config } from '../config/load.ts';
import { DataPlaneProcess, dataPlanePaths, runningDataPlane, type DataPlanePaths } from '../router/dataplane.ts';
import { createLogger } from '../util/log.ts';
import { terminate } from '../util/processes.ts';

/**
 * `regent dataplane`: the process that holds every endpoint of every cluster and outlives the
 * manager (`regent run` starts it when none runs, and adopts it otherwise). Runs until SIGTERM;
 * SIGHUP re-reads the configuration (changed routers are replaced, the others keep their sessions).
 */
export async function dataPlaneCommand(config: Config, opts: { socket?: string; pidFile?: string }): Promise<number> {
  const log = createLogger(process.env.REGENT_LOG_LEVEL ?? config.logLevel, process.stdout);
  const defaults = dataPlanePaths(config);
  const paths: DataPlanePaths = { socket: opts.socket ?? defaults.socket, pidFile: opts.pidFile ?? defaults.pidFile, logFile: defaults.logFile };
  const dp = new DataPlaneProcess(config, paths, log);
  try {
    await dp.start();
  } catch (e) {
    await dp.stop().catch(() => undefined);
    throw e;
  }
  process.on('SIGHUP', () => void dp.reload().catch((e: Error) => log.error({ event: 'dataplane_reload_failed', err: e.message }, `configuration not reloaded: ${e.message}`)));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dp.stop();
  return 0;
}

/** `regent dataplane stop`: ends the data plane of this configuration (its sessions end with it). */
export async function dataPlaneStopCommand(config: Config, opts: { role?: 'run' | 'proxy' }): Promise<number> {
  const paths = dataPlanePaths(config, opts.role ?? 'run');
  const pid = runningDataPlane(paths);
  if (pid === undefined) {
    process.stdout.write(`no data plane runs for ${paths.socket}\n`);
    return 0;
  }
  await terminate(pid, 5000);
  process.stdout.write(`data plane ${pid} stopped\n`);
  return 0;
}
