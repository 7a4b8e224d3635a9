import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const dashboard = join(repo, 'dashboard');
const distIndex = join(dashboard, 'dist', 'index.html');

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/**
 * Builds `dashboard/dist` when it is missing or older than its sources (what `make setup` does),
 * so the browser tests run the dashboard as it is in the tree. Call before starting the server:
 * it decides at start whether the dashboard is built.
 */
export function ensureDashboardBuilt(): void {
  const sources = ['src', 'index.html', 'vite.config.ts'].map((p) => join(dashboard, p));
  if (existsSync(distIndex) && statSync(distIndex).mtimeMs >= Math.max(...sources.map(newestMtime))) return;
  try {
    execFileSync(
      join(repo, 'node_modules', '.bin', 'vite'),
      ['build', '--config', 'dashboard/vite.config.ts', '--logLevel', 'warn'],
      {
        cwd: repo,
        stdio: 'pipe',
      },
    );
  } catch (err) {
    const out = (err as { stderr?: Buffer }).stderr?.toString() ?? String(err);
    throw new Error(`the dashboard could not be built (run \`make setup\`):\n${out}`);
  }
  if (!existsSync(distIndex))
    throw new Error('dashboard/dist/index.html is missing after the build: run `make setup`');
}

/** Debian's Chromium, driven by playwright-core, resolving every preview host to loopback. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync('/usr/bin/chromium')) {
    throw new Error(
      '/usr/bin/chromium is missing: run ./scripts/ensure-test-tools.sh (apt-get install chromium)',
    );
  }
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--host-resolver-rules=MAP *.preview.localhost 127.0.0.1',
    ],
  });
}
