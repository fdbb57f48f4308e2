import { spawn } from 'node:child_process';

export interface HookResult {
  command: string;
  exitCode: number | null;
  timedOut: boolean;
  output: string;
  durationMs: number;
}

/**
 * Runs hook commands one after another through /bin/sh with the recovery's facts in the
 * environment. Each is killed (with its process group) at the timeout. Returns every result; the
 * caller decides what a failure means (a pre-failover hook's failure aborts).
 */
export async function runHooks(commands: string[], env: Record<string, string>, timeoutSeconds: number): Promise<HookResult[]> {
  const results: HookResult[] = [];
  for (const command of commands) {
    results.push(await runOne(command, env, timeoutSeconds));
    const last = results[results.length - 1]!;
    if (last.exitCode !== 0) break;
  }
  return results;
}

function runOne(command: string, env: Record<string, string>, timeoutSeconds: number): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (b: Buffer) => {
      if (output.length < 4000) output += b.toString('utf8');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutSeconds * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ command, exitCode: timedOut ? null : code, timedOut, output: output.trim(), durationMs: Date.now() - started });
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ command, exitCode: null, timedOut: false, output: String(e), durationMs: Date.now() - started });
    });
  });
}
