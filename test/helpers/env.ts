import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/sandbox.ts';
import { createProgress } from '../../src/util/progress.ts';
import type { ClusterState } from '../../src/coordination/coordinator.ts';
import { decisionFromState } from '../../src/decision/decision.ts';

export const ROOT = new URL('../../', import.meta.url).pathname;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A run of `count` free ports (12000-19999: below the ephemeral range, apart from sandboxes). */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 12000 + Math.floor(Math.random() * 390) * 20;
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

export function tempDir(prefix = 'regent-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A base port for a sandbox: a random multiple of 100 in 20000-31999, so parallel test files do
 * not collide, and below Linux's ephemeral range (32768+), where busy clients would otherwise
 * already hold a port a server wants to listen on.
 */
export function sandboxBasePort(): number {
  return 20000 + Math.floor(Math.random() * 120) * 100;
}

/** A sandbox in a fresh temp dir; `cleanup` stops its servers by PID and removes the dir. */
export async function startSandbox(opts: Omit<SandboxOptions, 'dir' | 'basePort'> = {}): Promise<{ sandbox: Sandbox; cleanup: () => Promise<void> }> {
  for (let attempt = 1; ; attempt++) {
    const dir = tempDir();
    try {
      const sandbox = await createSandbox({ ...opts, dir: join(dir.path, 'sb'), basePort: sandboxBasePort(), progress: opts.progress ?? createProgress({ quiet: true }) });
      return {
        sandbox,
        cleanup: async () => {
          await sandbox.down();
          dir.remove();
        },
      };
    } catch (e) {
      dir.remove();
      // Another test took a port between the check and the start: try another range.
      if (attempt < 8 && /in use/.test((e as Error).message)) continue;
      throw e;
    }
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the real `regent` executable (bin/regent.js) as a child process. */
export function runCli(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/regent.js'), ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`regent ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 60000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Polls `cond` until it holds (errors count as "not yet"), or fails naming what it waited for. */
export async function eventually(cond: () => Promise<boolean>, timeoutMs: number, what: string, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The primary a local manager decided on, from its state file (undefined before its first decision). */
export function decidedPrimaryOf(sb: Sandbox): string | undefined {
  const f = join(sb.dir, 'state/clusters', `${sb.manifest.cluster}.json`);
  try {
    return decisionFromState(sb.manifest.cluster, JSON.parse(readFileSync(f, 'utf8')) as ClusterState).decidedPrimary;
  } catch {
    return undefined; // no decision yet, or the file is being replaced right now
  }
}
