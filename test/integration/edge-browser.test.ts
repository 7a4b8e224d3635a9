import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { createAppSandbox, edgeJson, previewHostOf, waitState } from '../helpers/edge.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

const DOMAIN = 'preview.previewd.test';

const launch = () => launchChromium(['preview.localhost', 'previewd.test']);

describe('starting page in a real browser (real engine)', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer();
    browser = await launch();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows the starting page for a stopped sandbox, then the app, with no refresh loop', async () => {
    const { id } = await createAppSandbox(server);
    const host = previewHostOf(id);
    await waitFor(async () => ((await edgeJson(server, host, '/echo')).status === 200 ? true : undefined));
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const url = (await server.call('GET', `/v1/sandboxes/${id}`)).body.previews[0].url as string;

    const page = await browser.newPage();
    const documents: number[] = [];
    page.on('response', (res) => {
      if (res.request().resourceType() === 'document') documents.push(res.status());
    });
    const first = await page.goto(url);
    expect(first?.status()).toBe(503);
    expect(await page.title()).toBe('Starting…');
    await page.waitForSelector('#app', { timeout: 30_000 });
    expect(await page.textContent('#app')).toBe('hello from the app on 3000');
    // Settled: one starting page, one app document, nothing reloading afterwards.
    await page.waitForTimeout(1500);
    expect(documents).toEqual([503, 200]);
    await page.close();
  });
});

describe('a real Vite dev server behind the edge (real engine, real browser)', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    // A preview domain that is not *.localhost: Vite's allowed-hosts check must be passed by
    // the environment previewd gives every sandbox, not by its localhost exception.
    server = await startTestServer({ previewDomain: DOMAIN });
    browser = await launch();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('serves the app and hot-reloads a module over the proxied HMR WebSocket', async () => {
    const created = await server.call('POST', '/v1/sandboxes', {
      files: {
        'package.json': JSON.stringify({ name: 'hmr-app', private: true, type: 'module' }),
        'index.html':
          '<!doctype html><title>vite</title><h1 id="msg">loading</h1><script type="module" src="/main.js"></script>',
        'main.js': [
          "import { msg } from './msg.js';",
          "document.getElementById('msg').textContent = msg;",
          'if (import.meta.hot) {',
          "  import.meta.hot.accept('./msg.js', (mod) => { document.getElementById('msg').textContent = mod.msg; });",
          '}',
        ].join('\n'),
        'msg.js': "export const msg = 'first version';\n",
      },
      runtime: {
        install: 'npm install --no-audit --no-fund --loglevel=error vite@7',
        start: 'npx vite --host 0.0.0.0 --port 5173 --strictPort',
        port: 5173,
      },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body.previews[0].url).toContain(`5173-${id}.${DOMAIN}`);
    await waitState(server, id, 'running');
    const host = previewHostOf(id, 5173, DOMAIN);
    await waitFor(
      async () => ((await edgeJson(server, host, '/msg.js')).status === 200 ? true : undefined),
      180_000,
      'vite to answer',
    );

    const page = await browser.newPage();
    const res = await page.goto(created.body.previews[0].url);
    expect(res?.status()).toBe(200);
    await page.waitForFunction(`document.getElementById('msg')?.textContent === 'first version'`);
    await page.evaluate('window.marker = 42');
    await server.app.provider.files(id).write('msg.js', "export const msg = 'second version';\n");
    await page.waitForFunction(
      `document.getElementById('msg')?.textContent === 'second version'`,
      undefined,
      {
        timeout: 30_000,
      },
    );
    // Hot update, not a reload: the page's state survived.
    expect(await page.evaluate('window.marker')).toBe(42);
    // The HMR socket is open through the edge and counts as activity for the idle reaper.
    expect(server.app.edge.activity.openSockets(id)).toBeGreaterThanOrEqual(1);
    await page.close();
    const log = await waitFor(async () => {
      const res = await server.call('GET', `/v1/sandboxes/${id}/access-log?limit=200`);
      return res.body.entries.some((e: { websocket: boolean }) => e.websocket) ? res.body.entries : undefined;
    });
    expect(log.find((e: { websocket: boolean }) => e.websocket)).toMatchObject({ status: 101, port: 5173 });
  }, 240_000);
});
