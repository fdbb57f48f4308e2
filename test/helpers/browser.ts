import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { ROOT } from './env.ts';

/** Debian's chromium: the only browser the dashboard tests use (nothing is downloaded elsewhere). */
export const CHROMIUM = '/usr/bin/chromium';

/** Where dashboard screenshots are kept after a run (git-ignored). */
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'dashboard');

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure /usr/bin/chromium exists: as root it installs Debian's `chromium` package with apt-get
 * (updating the package lists once if the first attempt fails); otherwise it throws a message that
 * says exactly what to run.
 */
export function ensureChromium(): string {
  if (executable(CHROMIUM)) return CHROMIUM;
  if (process.getuid?.() !== 0)
    throw new Error(`the dashboard tests need Debian's chromium at ${CHROMIUM}; install it with: sudo apt-get install -y chromium`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args: string[]) => spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env }).status === 0;
  process.stderr.write('regent tests: installing chromium with apt-get ...\n');
  if (!apt(['install', '-y', '-q', 'chromium']) && !(apt(['update', '-q']) && apt(['install', '-y', '-q', 'chromium'])))
    throw new Error('apt-get could not install chromium; install it by hand: apt-get install -y chromium');
  if (!executable(CHROMIUM)) throw new Error(`chromium was installed but ${CHROMIUM} is missing`);
  return CHROMIUM;
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface TestBrowser {
  browser: Browser;
  context: BrowserContext;
  close: () => Promise<void>;
}

/**
 * A headless Debian chromium. Playwright's `launch` starts it with a fresh temporary user data dir
 * (no profile, cache or storage shared with anything else) and deletes it on close.
 */
export async function launchBrowser(opts: { width?: number; height?: number; args?: string[] } = {}): Promise<TestBrowser> {
  const executablePath = ensureChromium();
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS, ...(opts.args ?? [])] });
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1400, height: opts.height ?? 1000 } });
  return {
    browser,
    context,
    close: async () => {
      await context.close().catch(() => {});
      await browser.close().catch(() => {});
    },
  };
}

export function artifactsDir(): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}
