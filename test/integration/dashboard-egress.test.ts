import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { removeContainment } from '../../src/providers/docker/containment.js';
import { Iptables } from '../../src/providers/docker/iptables.js';
import { ensureDashboardBuilt, launchChromium } from '../helpers/dashboard.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

const SLOW = 120_000;
const docker = createDockerClient({ docker: { network: 'previewd' } } as never);

describe("the dashboard's egress control (real browser, real server)", () => {
  let server: TestServer;
  let browser: Browser;
  let networkId = '';
  const network = `pvdeg-dash-${Date.now().toString(36)}`;

  beforeAll(async () => {
    ensureDashboardBuilt();
    // its own sandbox network: the egress rules of a network are its control plane's (docs/network.md)
    server = await startTestServer({ 'docker.network': network });
    browser = await launchChromium();
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    networkId =
      (
        await docker
          .getNetwork(network)
          .inspect()
          .catch(() => undefined)
      )?.Id ?? '';
    await server?.close();
    if (networkId) await removeContainment(new Iptables(), networkId);
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
  }, 60_000);

  it(
    'shows the policy on the sandbox page and saves a list, then deny',
    async () => {
      const created = await server.call('POST', '/v1/sandboxes', {
        runtime: { start: 'exec sleep infinity' },
      });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      await waitState(server, id, 'running');
      const ctx = await browser.newContext();
      try {
        const page = await ctx.newPage();
        await page.goto(`${server.url}/sandboxes/${id}`);
        await page.fill('#api-key', TEST_KEY);
        await page.click('form.sign-in button[type=submit]');
        const form = page.locator('form.egress');
        await form.waitFor({ timeout: SLOW });
        expect(await form.locator('select[name=egress]').inputValue()).toBe('allow');

        await form.locator('select[name=egress]').selectOption('list');
        await form.locator('input[name=allow]').fill('*.npmjs.org, 203.0.113.0/24');
        const [saved] = await Promise.all([
          page.waitForResponse((r) => r.url().endsWith(`/v1/sandboxes/${id}/network`)),
          form.locator('button[type=submit]').click(),
        ]);
        expect(saved.status()).toBe(200);
        await form.locator('.notice').waitFor();
        expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.network).toEqual({
          egress: 'list',
          allow: ['*.npmjs.org', '203.0.113.0/24'],
          deny: [],
        });

        await form.locator('select[name=egress]').selectOption('deny');
        expect(await form.locator('input[name=allow]').count()).toBe(0);
        await Promise.all([
          page.waitForResponse((r) => r.url().endsWith(`/v1/sandboxes/${id}/network`) && r.status() === 200),
          form.locator('button[type=submit]').click(),
        ]);
        expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.network.egress).toBe('deny');
        // a bad entry: the API's 400 shown, nothing changed
        await form.locator('select[name=egress]').selectOption('list');
        await form.locator('input[name=allow]').fill('not a host!');
        const [bad] = await Promise.all([
          page.waitForResponse((r) => r.url().endsWith(`/v1/sandboxes/${id}/network`)),
          form.locator('button[type=submit]').click(),
        ]);
        expect(bad.status()).toBe(400);
        expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.network.egress).toBe('deny');
      } finally {
        await ctx.close();
      }
    },
    SLOW,
  );
});
