import type { Browser, BrowserContext, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboardBuilt, launchChromium } from '../helpers/dashboard.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

const SLOW = 120_000;
const TENANT = 'tenant-key-carol-0123456789';

async function signIn(page: Page, server: TestServer, key: string): Promise<void> {
  await page.goto(server.url);
  await page.fill('#api-key', key);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${server.url}/v1/session` && r.request().method() === 'POST'),
    page.click('form.sign-in button[type=submit]'),
  ]);
  expect(res.status()).toBe(200);
}

/** Every Content-Security-Policy refusal the page reports (the dashboard must cause none). */
function cspViolations(page: Page): string[] {
  const seen: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) seen.push(m.text());
  });
  return seen;
}

const count = (page: Page, label: string) =>
  page.textContent(`.overview [data-count-of="${label}"] strong`).then((t) => Number(t));

describe('dashboard charts: usage on the sandbox page, host overview on the list (real server, engine, Chromium)', () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext | undefined;
  let running: string;
  let paused: string;
  let stopped: string;
  let carols: string;

  const create = async (body: Record<string, unknown>, key = TEST_KEY) => {
    const res = await server.call('POST', '/v1/sandboxes', body, { authorization: `Bearer ${key}` });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  beforeAll(async () => {
    ensureDashboardBuilt();
    server = await startTestServer({ apiKeys: [TEST_KEY, `${TENANT}:carol`] });
    browser = await launchChromium();
    [running, paused, stopped, carols] = await Promise.all([
      create({ template: 'static' }),
      create({ template: 'static' }),
      create({ template: 'static' }),
      create({ template: 'static' }, TENANT),
    ]);
    await Promise.all([running, paused, stopped, carols].map((id) => waitState(server, id, 'running', SLOW)));
    const pause = await server.call('POST', `/v1/sandboxes/${paused}/pause`);
    expect(pause.status, JSON.stringify(pause.body)).toBe(200);
    expect((await server.call('POST', `/v1/sandboxes/${stopped}/stop`)).status).toBe(200);
    await waitState(server, paused, 'paused', 30_000);
    await waitState(server, stopped, 'stopped', 30_000);
  }, 2 * SLOW);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
  });

  it(
    'the list shows an admin the counts by state and the memory budget used',
    async () => {
      context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const violations = cspViolations(page);
      await signIn(page, server, TEST_KEY);
      await page.waitForSelector(`tr[data-sandbox-id="${carols}"]`);
      expect(await count(page, 'running')).toBe(2);
      expect(await count(page, 'paused')).toBe(1);
      expect(await count(page, 'stopped')).toBe(1);
      expect(await count(page, 'error')).toBe(0);

      // The budget is the one the API reports (admin), written out beside its bar.
      const capacity = await server.call('GET', '/v1/capacity');
      expect(capacity.status).toBe(200);
      expect(capacity.body).toMatchObject({ cluster: false, nodes: 1, running: { count: 3 } });
      expect(capacity.body.memoryMb.budget).toBeGreaterThan(0);
      await page.waitForSelector('.memory-budget');
      expect(Number(await page.getAttribute('.memory-budget', 'data-memory-budget'))).toBe(
        capacity.body.memoryMb.budget,
      );
      expect(await page.textContent('.memory-budget figcaption')).toMatch(
        /Memory budget \(this host\): .+ of .+ used/,
      );
      expect(await page.getAttribute('.memory-budget svg', 'aria-label')).toMatch(
        /% of the memory budget used/,
      );

      // A stop moves the counts live (event stream), no reload.
      expect((await server.call('POST', `/v1/sandboxes/${running}/stop`)).status).toBe(200);
      await page.waitForSelector('.overview [data-count-of="running"] strong:text-is("1")', {
        timeout: 30_000,
      });
      await page.waitForSelector('.overview [data-count-of="stopped"] strong:text-is("2")', {
        timeout: 30_000,
      });
      expect((await server.call('POST', `/v1/sandboxes/${running}/start`)).status).toBe(200);
      await waitState(server, running, 'running', SLOW);
      await page.waitForSelector('.overview [data-count-of="running"] strong:text-is("2")', {
        timeout: 30_000,
      });
      expect(violations).toEqual([]);
      await context.close();
      context = undefined;
    },
    SLOW,
  );

  it(
    "a tenant's overview counts its own sandboxes and shows no memory budget",
    async () => {
      const tenantCapacity = await server.call('GET', '/v1/capacity', undefined, {
        authorization: `Bearer ${TENANT}`,
      });
      expect(tenantCapacity.status).toBe(403);
      context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const capacityCalls: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/v1/capacity')) capacityCalls.push(r.url());
      });
      await signIn(page, server, TENANT);
      await page.waitForSelector(`tr[data-sandbox-id="${carols}"]`);
      expect(await count(page, 'running')).toBe(1);
      expect(await count(page, 'paused')).toBe(0);
      expect(await count(page, 'stopped')).toBe(0);
      expect(await page.$('.memory-budget')).toBeNull();
      expect(capacityCalls).toEqual([]);
      await context.close();
      context = undefined;
    },
    SLOW,
  );

  it(
    'the sandbox page charts requests per minute and status classes from the access log',
    async () => {
      const sandbox = await server.call('GET', `/v1/sandboxes/${running}`);
      const host = new URL(sandbox.body.previews[0].url).host;
      const hit = async (path: string) => {
        const res = await request(`${server.edgeUrl}${path}`, { headers: { host } });
        await res.body.dump();
        return res.statusCode;
      };
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push(await hit('/'));
      for (let i = 0; i < 3; i++) statuses.push(await hit(`/missing-${i}.html`));
      expect(statuses).toEqual([200, 200, 200, 200, 200, 404, 404, 404]);

      context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const violations = cspViolations(page);
      await signIn(page, server, TEST_KEY);
      await page.goto(`${server.url}/sandboxes/${running}`);
      await page.waitForSelector('[data-chart="requests"]', { timeout: 30_000 });
      // The page's own preview frame adds requests (its page and style sheet), and the edge logs a
      // request when its answer ends: the chart must come to show what the log holds.
      const logged = await waitFor(
        async () => {
          const log = await server.call('GET', `/v1/sandboxes/${running}/access-log?limit=10000`);
          const entries = log.body.entries as { status: number; path: string }[];
          const shown = Number(await page.getAttribute('[data-chart="requests"]', 'data-total'));
          return entries.some((e) => e.path === '/missing-2.html') && shown === entries.length
            ? entries
            : undefined;
        },
        30_000,
        'the requests chart to count what the access log holds',
      );
      const of = (lo: number, hi: number) => logged.filter((e) => e.status >= lo && e.status < hi).length;
      expect(of(200, 300)).toBeGreaterThanOrEqual(5);
      expect(of(400, 500)).toBe(3);
      expect(await page.textContent('[data-chart="requests"] [data-chart-total]')).toBe(
        String(logged.length),
      );
      // One minute (or two, across a minute boundary) holds the bars; each has a readable title.
      const bars = await page.$$eval('[data-chart="requests"] g.bar', (gs) =>
        gs.map((g) => ({
          count: Number(g.getAttribute('data-count')),
          title: g.querySelector('title')?.textContent,
        })),
      );
      expect(bars.reduce((t, b) => t + b.count, 0)).toBe(logged.length);
      for (const bar of bars) expect(bar.title).toMatch(/\d+ requests?/);
      expect(await page.getAttribute('[data-chart="requests"] svg', 'aria-labelledby')).toBe(
        'requests-title requests-desc',
      );
      // Status classes: the count written beside each bar.
      const classCount = (c: string) =>
        page.getAttribute(`[data-chart="status-classes"] li[data-class="${c}"]`, 'data-count').then(Number);
      expect(await classCount('2xx')).toBe(of(100, 300));
      expect(await classCount('4xx')).toBe(3);
      expect(await classCount('5xx')).toBe(0);
      expect(
        await page.textContent('[data-chart="status-classes"] li[data-class="4xx"] .class-count'),
      ).toMatch(/^3 \(\d+ %\)$/);

      // More requests show up on the next refresh (every intervalSec), without a reload.
      for (let i = 0; i < 2; i++) await hit('/');
      await page.waitForSelector(`[data-chart="requests"][data-total="${logged.length + 2}"]`, {
        timeout: 30_000,
      });
      expect(violations).toEqual([]);
    },
    SLOW,
  );

  it(
    'the sandbox page shows CPU and memory over the hour from the metrics route',
    async () => {
      const page = context!.pages()[0]!;
      const metrics = await server.call('GET', `/v1/sandboxes/${running}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.body.intervalSec).toBeGreaterThan(0);
      // Samples come every intervalSec while the sandbox runs: the page shows them at its next refresh.
      await page.waitForSelector('.usage[data-metrics="ok"] [data-chart="cpu"]', {
        timeout: (metrics.body.intervalSec * 3 + 10) * 1000,
      });
      const after = await server.call('GET', `/v1/sandboxes/${running}/metrics`);
      const shown = Number(await page.getAttribute('[data-chart="memory"]', 'data-samples'));
      expect(shown).toBeGreaterThan(0);
      expect(shown).toBeLessThanOrEqual(after.body.samples.length);
      expect(await page.textContent('[data-chart="memory"] [data-chart-now]')).toMatch(
        /^\d+(\.\d+)? (MB|GB)$/,
      );
      expect(await page.textContent('[data-chart="cpu"] [data-chart-now]')).toMatch(/^\d+(\.\d+)? %$/);
      expect(await page.textContent('[data-chart="memory"] desc')).toMatch(
        /now .+, peak .+ over \d+ samples/,
      );
      // The memory limit is drawn and written out.
      const limitMb = (await server.call('GET', `/v1/sandboxes/${running}`)).body.resources
        .memoryMb as number;
      expect(await page.textContent('[data-chart="memory"] .chart-limit-label')).toMatch(
        limitMb >= 1024 ? /^limit \d+\.\d+ GB$/ : new RegExp(`^limit ${limitMb} MB$`),
      );
      expect(await page.$$('[data-chart="cpu"] path.chart-line')).not.toHaveLength(0);
      expect(await page.getAttribute('[data-chart="cpu"] svg', 'aria-labelledby')).toBe('cpu-title cpu-desc');
      // After its first load the page asks only for newer samples.
      await page.waitForRequest((r) => r.url().includes(`/v1/sandboxes/${running}/metrics?since=`), {
        timeout: (metrics.body.intervalSec + 10) * 1000,
      });
    },
    SLOW,
  );

  it(
    'with usage sampling off, the page says why there is no CPU and memory chart',
    async () => {
      const off = await startTestServer({ 'usage.enabled': false });
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const res = await off.call('POST', '/v1/sandboxes', { template: 'static' });
        expect(res.status).toBe(201);
        const id = res.body.id as string;
        const metrics = await off.call('GET', `/v1/sandboxes/${id}/metrics`);
        expect(metrics.status).toBe(409);
        expect(metrics.body.error.code).toBe('usage_sampling_off');
        const page = await ctx.newPage();
        await signIn(page, off, TEST_KEY);
        await page.goto(`${off.url}/sandboxes/${id}`);
        await page.waitForSelector('.usage[data-metrics="off"] [data-chart-empty="metrics"]', {
          timeout: 30_000,
        });
        expect(await page.textContent('[data-chart-empty="metrics"]')).toContain('usage sampling is off');
        expect(await page.$('[data-chart="cpu"]')).toBeNull();
      } finally {
        await ctx.close();
        await off.close();
      }
    },
    SLOW,
  );

  it(
    'a sandbox nobody previewed gets the empty state, not a blank chart',
    async () => {
      const page = context!.pages()[0]!;
      await page.goto(`${server.url}/sandboxes/${stopped}`);
      await page.waitForSelector('[data-chart-empty="requests"]', { timeout: 30_000 });
      expect(await page.textContent('[data-chart-empty="requests"]')).toContain('No preview requests');
      expect(await page.$('[data-chart="requests"]')).toBeNull();
    },
    SLOW,
  );
});
