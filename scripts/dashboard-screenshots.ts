/**
 * Takes the dashboard screenshots of the docs: `npx tsx scripts/dashboard-screenshots.ts`.
 * Starts a real previewd (test server: real engine, random loopback ports), creates three
 * sandboxes (vite-react running, static running private, static stopped), and writes
 * docs/screenshots/dashboard-list.png and dashboard-sandbox.png at 1280×800 in the light scheme, and
 * dashboard-usage.png (the sandbox page's usage charts, after a few preview requests), then takes
 * two snapshots from the sandbox page and writes dashboard-snapshots.png (the snapshots page).
 */
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { ensureDashboardBuilt, launchChromium } from '../test/helpers/dashboard.js';
import { startTestServer, TEST_KEY, waitFor, waitState } from '../test/helpers/server.js';

const t0 = Date.now();
const step = (what: string) => console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s  ${what}`);
const out = (name: string) => fileURLToPath(new URL(`../docs/screenshots/${name}`, import.meta.url));

ensureDashboardBuilt();
const server = await startTestServer();
const browser = await launchChromium();
let exitCode = 0;
try {
  const create = async (body: Record<string, unknown>) => {
    const res = await server.call('POST', '/v1/sandboxes', body);
    if (res.status !== 201) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  };
  const stopped = await create({ template: 'static', labels: { team: 'docs' } });
  await waitState(server, stopped, 'running', 120_000);
  await server.call('POST', `/v1/sandboxes/${stopped}/stop`);
  await waitState(server, stopped, 'stopped', 60_000);
  step('static sandbox stopped');
  const privateSite = await create({ template: 'static', visibility: 'private' });
  const app = await create({ template: 'vite-react', labels: { team: 'web' } });
  await waitState(server, privateSite, 'running', 120_000);
  await waitState(server, app, 'running', 180_000);
  step('sandboxes running');

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  const page = await context.newPage();
  await page.goto(server.url);
  await page.fill('#api-key', TEST_KEY);
  await page.click('form.sign-in button[type=submit]');
  await page.waitForSelector(`tr[data-sandbox-id="${app}"] [data-state="running"]`);
  await page.waitForSelector('.live-open');
  await page.waitForSelector('figure.memory-budget');
  await page.screenshot({ path: out('dashboard-list.png') });
  step('list taken');

  await page.click(`a[href="/sandboxes/${app}"]`);
  await page.waitForSelector('iframe.preview-frame');
  const frame = await waitFor(
    async () => page.frames().find((f) => f.url().includes(`-${app}.preview.localhost`)),
    60_000,
    'the preview frame',
  );
  await frame.waitForSelector('#title:has-text("Hello from Vite + React")', { timeout: 180_000 });
  step('app shown in the preview');
  await page.click('button.tree-item.dir:has-text("src/")');
  await page.click('[data-path="src/App.jsx"]');
  await page.waitForSelector('.cm-content:has-text("Hello from Vite + React")');
  await page.waitForSelector('[data-terminal-status="open"]', { timeout: 30_000 });
  await page.click('.term-host');
  await page.keyboard.type('ls -la');
  await page.keyboard.press('Enter');
  await waitFor(
    async () =>
      (await page.textContent('.term-host .xterm-rows'))?.includes('package.json') ? true : undefined,
    15_000,
    'ls output',
  );
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: out('dashboard-sandbox.png') });
  step('sandbox taken');

  // The usage card: a few preview requests, and CPU and memory samples.
  const info = await server.call('GET', `/v1/sandboxes/${app}`);
  const host = new URL(info.body.previews[0].url).host;
  for (const path of ['/', '/', '/src/App.jsx', '/src/main.jsx', '/', '/@vite/client', '/']) {
    const res = await request(`${server.edgeUrl}${path}`, { headers: { host } });
    await res.body.dump();
  }
  // A few samples (one every intervalSec), so the lines have some length.
  await page.waitForFunction(
    () => Number(document.querySelector('.usage [data-chart="cpu"]')?.getAttribute('data-samples')) >= 5,
    undefined,
    { timeout: 120_000 },
  );
  // The access log is read again every intervalSec: wait for the requests just made.
  await page.waitForFunction(
    () => Number(document.querySelector('.usage [data-chart="requests"]')?.getAttribute('data-total')) >= 7,
    undefined,
    { timeout: 30_000 },
  );

  const usage = await page.$('.usage');
  await usage?.scrollIntoViewIfNeeded();
  await usage?.screenshot({ path: out('dashboard-usage.png') });
  step('usage taken');

  // Two snapshots through the sandbox page's Snapshot… form, then the snapshots page.
  for (const [name, labels] of [
    ['hello-vite', 'team=web'],
    ['after-edit', 'team=web, step=2'],
  ] as const) {
    await page.evaluate('window.scrollTo(0, 0)');
    await page.click('button:has-text("Snapshot…")');
    await page.fill('#snapshot-name', name);
    await page.fill('#snapshot-labels', labels);
    await page.click('form.snapshot-form button[type=submit]');
    await page.waitForSelector(`.snapshot-fork [data-snapshot-id]:has-text("${name}")`, { timeout: 120_000 });
  }
  await page.click('nav a:has-text("Snapshots")');
  await page.waitForSelector('tr[data-snapshot-id]');
  await page.screenshot({ path: out('dashboard-snapshots.png') });
  await context.close();
  console.log(
    'wrote docs/screenshots/dashboard-list.png, dashboard-sandbox.png, dashboard-usage.png and dashboard-snapshots.png',
  );
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await browser.close();
  step('browser closed');
  await server.close();
  step('server closed');
}
// Engine event streams and pools of the in-process server can keep the loop alive: done is done.
process.exit(exitCode);
