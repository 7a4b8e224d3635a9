import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { startTestServer, type TestServer, waitFor, waitState } from '../helpers/server.js';

const docker = createDockerClient({ docker: { network: 'previewd' } as never });

describe('sandbox lifecycle over the HTTP API (real engine)', () => {
  let server: TestServer;
  beforeAll(async () => {
    // previewd/nope:* lets the missing-image case through the allow-list to the engine.
    server = await startTestServer({ 'images.allowed': ['previewd/nope:*'] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('create → running → stop → start (files kept) → delete leaves no container', async () => {
    const created = await server.call('POST', '/v1/sandboxes', {
      files: { 'index.html': '<h1>hi</h1>', 'src/app.js': 'console.log(1)' },
      runtime: { start: 'date +%s%N >> boots.log; exec sleep infinity', port: 3000 },
      labels: { suite: 'lifecycle' },
      metadata: { pr: 42 },
    });
    expect(created.status).toBe(201);
    const sb = created.body;
    expect(sb.id).toMatch(/^[0-9a-z]{26}$/);
    expect(['creating', 'starting', 'running']).toContain(sb.state);
    expect(sb.ports).toEqual([3000]);
    const edgePort = new URL(server.edgeUrl).port;
    expect(sb.previews).toEqual([{ port: 3000, url: `http://3000-${sb.id}.preview.localhost:${edgePort}` }]);
    expect(sb.runtime).toMatchObject({
      start: expect.stringContaining('boots.log'),
      port: 3000,
      source: 'overrides',
    });
    expect(sb.resources).toEqual({ cpus: 1, memoryMb: 1024, pids: 512, diskMb: 1024 });
    expect(sb.labels).toEqual({ suite: 'lifecycle' });
    expect(sb.metadata).toEqual({ pr: 42 });
    expect(sb).not.toHaveProperty('env');

    await waitState(server, sb.id, 'running');
    const files = server.app.provider.files(sb.id);
    await waitFor(async () => ((await files.exists('boots.log')) ? true : undefined));

    const stopped = await server.call('POST', `/v1/sandboxes/${sb.id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe('stopped');
    expect((await docker.getContainer(`previewd-${sb.id}`).inspect()).State.Running).toBe(false);

    const started = await server.call('POST', `/v1/sandboxes/${sb.id}/start`);
    expect(started.status).toBe(200);
    expect(started.body.state).toBe('running');
    // The files written at create, and what the app wrote before the stop, are still there.
    expect((await files.read('index.html')).toString()).toBe('<h1>hi</h1>');
    expect((await files.read('src/app.js')).toString()).toBe('console.log(1)');
    const boots = await waitFor(async () => {
      const lines = (await files.read('boots.log')).toString().trim().split('\n');
      return lines.length === 2 ? lines : undefined;
    });
    expect(boots).toHaveLength(2);

    const listed = await server.call('GET', '/v1/sandboxes?label=suite=lifecycle');
    expect(listed.body.sandboxes.map((s: { id: string }) => s.id)).toEqual([sb.id]);

    const events = await server.app.bus.history({ sandboxId: sb.id });
    const moves = events
      .filter((e) => e.type === 'sandbox.state')
      .map((e) => `${(e.data as any).from}>${(e.data as any).to}`);
    expect(moves).toEqual([
      'creating>starting',
      'starting>running',
      'running>stopping',
      'stopping>stopped',
      'stopped>starting',
      'starting>running',
    ]);

    const deleted = await server.call('DELETE', `/v1/sandboxes/${sb.id}`);
    expect(deleted.status).toBe(204);
    expect((await server.call('GET', `/v1/sandboxes/${sb.id}`)).body.error.code).toBe('sandbox_not_found');
    expect((await server.call('GET', `/v1/sandboxes/${sb.id}`)).status).toBe(404);
    await expect(docker.getContainer(`previewd-${sb.id}`).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`previewd.sandbox=${sb.id}`] },
    });
    expect(left).toEqual([]);
    expect((await server.call('DELETE', `/v1/sandboxes/${sb.id}`)).status).toBe(404);
  });

  it('answers 409 invalid_state for an illegal transition', async () => {
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const id = created.body.id;
    await waitState(server, id, 'running');
    const paused = await server.call('POST', `/v1/sandboxes/${id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body.state).toBe('paused');
    const resumed = await server.call('POST', `/v1/sandboxes/${id}/start`);
    expect(resumed.body.state).toBe('running');
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const illegal = await server.call('POST', `/v1/sandboxes/${id}/pause`);
    expect(illegal.status).toBe(409);
    expect(illegal.body.error).toMatchObject({
      code: 'invalid_state',
      message: expect.stringContaining('stopped'),
    });
    expect(illegal.body.error.hint).toBeTruthy();
    await server.call('DELETE', `/v1/sandboxes/${id}`);
  });

  it('puts a sandbox whose image is missing into error with image_not_found', async () => {
    const created = await server.call('POST', '/v1/sandboxes', { image: 'previewd/nope:0' });
    expect(created.status).toBe(201);
    const sb = await waitState(server, created.body.id, 'error');
    expect(sb.error.code).toBe('image_not_found');
    const retry = await server.call('POST', `/v1/sandboxes/${sb.id}/start`);
    expect(retry.status).toBe(422);
    expect(retry.body.error.code).toBe('image_not_found');
    expect(retry.body.error.hint).toMatch(/images build/);
  });
});
