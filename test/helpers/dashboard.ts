import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const dashboard = join(repo, 'dashboard');
const distIndex = join(dashboard, 'dist', 'index.html');

/** Files outside dashboard/ the dashboard imports (scripts/setup.sh hashes the same ones). */
const DASHBOARD_SHARED_SOURCES = ['src/domain', 'packages/sdk/src'];

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
  const sources = [
    ...['src', 'index.html', 'vite.config.ts'].map((p) => join(dashboard, p)),
    // What the dashboard imports from outside its folder.
    ...DASHBOARD_SHARED_SOURCES.map((p) => join(repo, p)),
  ];
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

export { launchChromium } from './browser.js';
