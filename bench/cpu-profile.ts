import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a function lives, in words a reader of this repository knows. */
function area(url: string): string {
  if (!url) return '(native / GC / idle)';
  const m = /\/(src|bench|test)\/(.+)$/.exec(url);
  if (m && !url.includes('node_modules')) return `${m[1]}/${m[2]!.split('/').slice(0, -1).join('/') || '.'}`;
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return `npm:${mod[1]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url;
}

/**
 * Self time by function and by area (src/monitor, npm:mysql2, node:internal...) of a V8
 * .cpuprofile, as Markdown-ready lines. `(idle)` and `(program)` are left out of the percentages:
 * they are time the process was not running JavaScript.
 */
export function summarizeProfile(file: string, opts: { top?: number; fromSec?: number; toSec?: number } = {}): string {
  const top = opts.top ?? 25;
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // Only samples inside [fromSec, toSec] after the profile started (the steady-state window).
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (opts.fromSec !== undefined && t < opts.fromSec * 1e6) continue;
    if (opts.toSec !== undefined && t > opts.toSec * 1e6) break;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)') {
      idle += us;
      continue;
    }
    total += us;
    const key = `${name} ${area(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const a = name === '(garbage collector)' ? '(garbage collector)' : area(n.callFrame.url);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1)}%`;
  const window = opts.fromSec !== undefined ? ` between ${opts.fromSec.toFixed(1)} s and ${opts.toSec?.toFixed(1)} s` : '';
  const lines = [`profile ${file}${window}: ${(total / 1e6).toFixed(2)} s of JavaScript and GC (${(idle / 1e6).toFixed(2)} s idle/program not counted)`, '', 'by area (self time):'];
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, 15)) lines.push(`  ${pct(us).padStart(6)}  ${a}`);
  lines.push('', `top ${top} functions (self time):`);
  for (const [k, us] of [...fn].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(us).padStart(6)}  ${k}`);
  return lines.join('\n');
}

/**
 * The main thread's profile of the newest process in a directory. Node writes one file per thread
 * (CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile); tsx's module loader runs in a thread of
 * its own (thread 1), the program in thread 0.
 */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    .sort();
  const last = files[files.length - 1];
  return last ? join(dir, last) : undefined;
}
