import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { edgeJson, previewHostOf } from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

/** What each template serves at its preview URL (through the edge), and where. */
const expected: Record<string, { port: number; path: string; text: string }> = {
  'vite-react': { port: 5173, path: '/src/App.jsx', text: 'Hello from Vite + React' },
  'vite-vue': { port: 5173, path: '/src/App.vue', text: 'Hello from Vite + Vue' },
  next: { port: 3000, path: '/', text: 'Hello from Next.js' },
  express: { port: 3000, path: '/', text: 'Hello from Express' },
  fastapi: { port: 8000, path: '/', text: 'Hello from FastAPI' },
  flask: { port: 5000, path: '/', text: 'Hello from Flask' },
  static: { port: 8080, path: '/', text: 'Hello from a static site' },
};

describe('templates (real engine, npm registry, real browser)', () => {
  let server: TestServer;
  let browser: Browser;
  const created = new Map<string, string>();

  const write = async (id: string, path: string, content: string) => {
    const res = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/octet-stream' },
      body: content,
    });
    expect(res.status).toBeLessThan(300);
  };
  const read = async (id: string, path: string) =>
    (await server.call('GET', `/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`)).body as string;
  const previewUrl = async (id: string) =>
    (await server.call('GET', `/v1/sandboxes/${id}`)).body.previews[0].url as string;

  const serves = (id: string, template: string, timeoutMs = 240_000) => {
    const want = expected[template] as { port: number; path: string; text: string };
    return waitFor(
      async () => {
        const res = await edgeJson(server, previewHostOf(id, want.port), want.path);
        return res.status === 200 && res.text.includes(want.text) ? res : undefined;
      },
      timeoutMs,
      `${template} to serve "${want.text}"`,
    );
  };

  const createFrom = async (template: string, extra: Record<string, unknown> = {}) => {
    const res = await server.call('POST', '/v1/sandboxes', { template, ...extra });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };

  beforeAll(async () => {
    server = await startTestServer();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('refuses an unknown template', async () => {
    const res = await server.call('POST', '/v1/sandboxes', { template: 'rails' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
  });

  it('creates each template and serves it through the edge (two at a time)', async () => {
    const names = Object.keys(expected);
    for (let i = 0; i < names.length; i += 2) {
      await Promise.all(
        names.slice(i, i + 2).map(async (template) => {
          const body = await createFrom(template);
          expect(body.template).toBe(template);
          expect(body.runtime.source).toBe('template');
          expect(body.ports).toEqual([expected[template]?.port]);
          created.set(template, body.id);
          await waitState(server, body.id, 'running', 60_000);
          await serves(body.id, template);
        }),
      );
    }
  }, 900_000);

  it('user files go on top of the template', async () => {
    const body = await createFrom('static', {
      files: { 'index.html': '<h1>Hello from a static site, mine</h1>' },
    });
    const res = await serves(body.id, 'static', 30_000);
    expect(res.text).toContain('mine');
    await server.call('DELETE', `/v1/sandboxes/${body.id}`);
  });

  it('a template whose dependencies were installed once creates without installing', async () => {
    // The first vite-react sandbox filled the cache when its install finished.
    await waitFor(
      async () => ((await server.app.service.templates.fresh('vite-react')) ? true : undefined),
      60_000,
      'the vite-react cache',
    );
    const body = await createFrom('vite-react');
    await waitState(server, body.id, 'running', 60_000);
    await serves(body.id, 'vite-react', 60_000);
    const logs = await server.call('GET', `/v1/sandboxes/${body.id}/logs?tail=100`);
    const text = JSON.stringify(logs.body);
    expect(text).toContain('[previewd] dependencies unchanged: install skipped');
    expect(text).not.toContain('[previewd] install:');
  }, 120_000);

  it('vite-react: a click, then App.jsx changed through the files API: new text, no reload, the count kept', async () => {
    const id = created.get('vite-react') as string;
    const page = await browser.newPage();
    // An edit made before Vite's HMR client has connected reaches no page: wait for it to say so.
    const hmr = page.waitForEvent('console', {
      predicate: (m) => m.text().includes('[vite] connected'),
      timeout: 60_000,
    });
    await page.goto(await previewUrl(id));
    await page.waitForSelector('#counter', { timeout: 60_000 });
    await hmr;
    for (let i = 0; i < 3; i++) await page.click('#counter');
    expect(await page.textContent('#counter')).toBe('count is 3');
    await page.evaluate('window.__sameDocument = true');
    const app = await read(id, 'src/App.jsx');
    await write(id, 'src/App.jsx', app.replace('Hello from Vite + React', 'Edited through the API'));
    await page.waitForFunction(
      `document.getElementById('title')?.textContent === 'Edited through the API'`,
      null,
      {
        timeout: 30_000,
      },
    );
    expect(await page.textContent('#counter')).toBe('count is 3');
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    await page.close();
  }, 120_000);

  it('static: the live-reloading server reloads the page when a file changes', async () => {
    const id = created.get('static') as string;
    const page = await browser.newPage();
    await page.goto(await previewUrl(id));
    expect(await page.textContent('#title')).toBe('Hello from a static site');
    const html = await read(id, 'index.html');
    await write(id, 'index.html', html.replace('Hello from a static site', 'Static, edited'));
    await page.waitForFunction(`document.getElementById('title')?.textContent === 'Static, edited'`, null, {
      timeout: 30_000,
    });
    await page.close();
  }, 60_000);

  it('express, fastapi and flask restart or reload when their code changes', async () => {
    const edits: [string, string, string, string][] = [
      ['express', 'server.js', 'Hello from Express', 'Express, edited'],
      ['fastapi', 'main.py', 'Hello from FastAPI', 'FastAPI, edited'],
      ['flask', 'app.py', 'Hello from Flask', 'Flask, edited'],
    ];
    await Promise.all(
      edits.map(async ([template, path, from, to]) => {
        const id = created.get(template) as string;
        await write(id, path, (await read(id, path)).replace(from, to));
        const port = expected[template]?.port as number;
        await waitFor(
          async () => {
            const res = await edgeJson(server, previewHostOf(id, port), '/');
            return res.status === 200 && res.text.includes(to) ? true : undefined;
          },
          30_000,
          `${template} to serve "${to}"`,
        );
      }),
    );
  }, 60_000);

  it('next: Fast Refresh over the edge keeps the count', async () => {
    const id = created.get('next') as string;
    const page = await browser.newPage();
    await page.goto(await previewUrl(id));
    await page.waitForSelector('#counter', { timeout: 60_000 });
    // The client bundle hydrates after the HTML: click until React handles it.
    await waitFor(async () => {
      await page.click('#counter');
      return (await page.textContent('#counter')) !== 'count is 0' ? true : undefined;
    }, 60_000);
    const count = await page.textContent('#counter');
    await page.evaluate('window.__sameDocument = true');
    const source = await read(id, 'app/page.jsx');
    await write(id, 'app/page.jsx', source.replace('Hello from Next.js', 'Next, edited'));
    await page.waitForFunction(`document.getElementById('title')?.textContent === 'Next, edited'`, null, {
      timeout: 60_000,
    });
    expect(await page.textContent('#counter')).toBe(count);
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    await page.close();
  }, 180_000);
});
