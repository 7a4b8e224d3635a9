import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeJson, previewHostOf } from '../helpers/edge.js';
import { startTestServer, type TestServer, waitFor, waitState } from '../helpers/server.js';

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

describe('templates (real engine, npm registry)', () => {
  let server: TestServer;
  const created = new Map<string, string>();

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
  });

  afterAll(async () => {
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
    const body = await createFrom('static', { files: { 'index.html': '<h1>Hello from a static site, mine</h1>' } });
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
});
