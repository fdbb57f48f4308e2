import type { Config } from '../config/load.ts';
import { DataPlaneProcess, dataPlanePaths, runningDataPlane, type DataPlanePaths } from '../router/dataplane.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { setPriority } from 'node:os';
import { terminate } from '../util/processes.ts';
import { connect } from 'node:net';
import { UsageError } from '../errors.ts';
import type { FromDataPlane, ToDataPlane } from '../router/wire.ts';

/**
 * `regent dataplane`: the process that holds every endpoint of every cluster and outlives the
 * manager (`regent run` starts it when none runs, and adopts it otherwise). Runs until SIGTERM;
 * SIGHUP re-reads the configuration (changed routers are replaced, the others keep their sessions).
 */
export async function dataPlaneCommand(config: Config, opts: { socket?: string; pidFile?: string; takeover?: boolean }): Promise<number> {
  // Two data planes share a log file for a while during an upgrade: each line names its process.
  const log = createLogger(process.env.REGENT_LOG_LEVEL || config.logLevel, process.stdout).child({ pid: process.pid });
  const defaults = dataPlanePaths(config);
  const paths: DataPlanePaths = { socket: opts.socket ?? defaults.socket, pidFile: opts.pidFile ?? defaults.pidFile, logFile: defaults.logFile };
  raisePriority(log);
  const dp = new DataPlaneProcess(config, paths, log);
  try {
    await dp.start({ takeover: opts.takeover });
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

/**
 * Applications' statements go through this process: on a small machine a manager starting up (or
 * anything else busy) must not starve it. Lowering the nice value needs root (or CAP_SYS_NICE);
 * without it the data plane runs at the normal priority and says so.
 */
function raisePriority(log: Logger): void {
  try {
    setPriority(0, DATA_PLANE_NICE);
  } catch (e) {
    log.info({ event: 'dataplane_priority_unchanged', err: (e as Error).message }, `data plane at normal priority (nice ${DATA_PLANE_NICE} not allowed: ${(e as Error).message})`);
  }
}

const DATA_PLANE_NICE = -5;

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

/**
 * `regent dataplane upgrade`: the running data plane hands its endpoints to a new process of the
 * code on disk; open sessions stay with the old process until they end (no session dropped).
 */
export async function dataPlaneUpgradeCommand(config: Config, opts: { role?: 'run' | 'proxy' }): Promise<number> {
  const paths = dataPlanePaths(config, opts.role ?? 'run');
  const pid = runningDataPlane(paths);
  if (pid === undefined) throw new UsageError(`no data plane runs for ${paths.socket}: \`regent run\` starts one from the code on disk`);
  const r = await controlRequest(paths.socket, { op: 'upgrade', id: 1 }, 90000);
  if (!r.ok) {
    process.stderr.write(`regent: upgrade refused: ${r.error}\n`);
    return 1;
  }
  process.stdout.write(`data plane ${pid} replaced by ${r.pid}: new connections go to ${r.pid}; ${pid} serves its open sessions until they end\n`);
  return 0;
}

/** One request on a data plane's control socket. */
function controlRequest(socket: string, msg: ToDataPlane, timeoutMs: number): Promise<FromDataPlane> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UsageError(`the data plane did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      buf += c;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      s.end();
      resolve(JSON.parse(buf.slice(0, i)) as FromDataPlane);
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new UsageError(`cannot reach the data plane at ${socket}: ${e.message}`));
    });
    s.on('connect', () => s.write(`${JSON.stringify(msg)}\n`));
  });
}
