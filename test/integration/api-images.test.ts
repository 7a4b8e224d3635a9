import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { waitState } from '../helpers/edge.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Which images a client may name, against the real server and engine: the runtime images, the
 * exact entries and patterns of images.allowed; anything else 400 image_not_allowed before any
 * sandbox, workspace or container exists.
 */
describe('images a client may name (images.allowed)', () => {
  let server: TestServer;
  const base = 'previewd/base:bookworm';

  beforeAll(async () => {
    // Two patterns; the base image is on the host but not allowed.
    server = await startTestServer({
      'images.allowed': ['previewd/runtime-python:*', 'example.org/tools/*'],
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const workspaces = () => {
    const dir = join(server.dataDir, 'sandboxes');
    return existsSync(dir) ? readdirSync(dir) : [];
  };
  const containers = async () => (await server.app.provider.list()).map((c) => c.sandboxId);

  it('refuses an image outside the list with 400 image_not_allowed naming the key, and creates nothing', async () => {
    for (const body of [
      { image: base },
      { image: 'alpine:3' },
      { image: 'example.org/tools' },
      { image: 'example.org/tools/sub/deeper:1' },
      { runtime: { image: 'previewd/runtime-node:22-evil', start: 'node server.js', port: 3000 } },
    ]) {
      const res = await server.call('POST', '/v1/sandboxes', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('image_not_allowed');
      expect(res.body.error.hint).toContain('images.allowed');
      expect(res.body.error.message).toContain(body.image ?? body.runtime?.image);
    }
    expect((await server.call('GET', '/v1/sandboxes')).body.sandboxes).toEqual([]);
    expect(workspaces()).toEqual([]);
    expect(await containers()).toEqual([]);
  });

  it('takes the runtime images and what a pattern allows, and runs them', async () => {
    const node = await server.call('POST', '/v1/sandboxes', { image: server.app.config.images.node });
    expect(node.status).toBe(201);
    const python = await server.call('POST', '/v1/sandboxes', {
      runtime: { image: 'previewd/runtime-python:3', start: 'python3 -m http.server 3000', port: 3000 },
    });
    expect(python.status).toBe(201);
    expect(python.body.image).toBe('previewd/runtime-python:3');
    await waitState(server, node.body.id, 'running');
    await waitState(server, python.body.id, 'running');
    // a pattern entry lets the name through; the engine then says whether it has the image
    const unknown = await server.call('POST', '/v1/sandboxes', { image: 'example.org/tools/lint:1' });
    expect(unknown.status).toBe(201);
    await waitState(server, unknown.body.id, 'error');
    expect((await server.call('GET', `/v1/sandboxes/${unknown.body.id}`)).body.error.code).toBe(
      'image_not_found',
    );
    for (const id of [node.body.id, python.body.id, unknown.body.id])
      await server.call('DELETE', `/v1/sandboxes/${id}`);
  });
});

describe('images.allowed with exact entries (PREVIEWD_IMAGES_ALLOWED)', () => {
  it('allows an exact entry, a tag-less one meaning :latest', async () => {
    const { config } = loadConfig({
      env: { PREVIEWD_IMAGES_ALLOWED: 'previewd/base:bookworm, busybox' },
      cwd: tmpdir(),
    });
    expect(config.images.allowed).toEqual(['previewd/base:bookworm', 'busybox']);
    const server = await startTestServer({ 'images.allowed': config.images.allowed });
    try {
      const ok = await server.call('POST', '/v1/sandboxes', { image: 'previewd/base:bookworm' });
      expect(ok.status).toBe(201);
      await waitState(server, ok.body.id, 'running');
      const latest = await server.call('POST', '/v1/sandboxes', { image: 'busybox:latest' });
      expect(latest.status).toBe(201);
      const other = await server.call('POST', '/v1/sandboxes', { image: 'busybox:1.36' });
      expect(other.status).toBe(400);
      expect(other.body.error.code).toBe('image_not_allowed');
    } finally {
      await server.close();
    }
  });
});
