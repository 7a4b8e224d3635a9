import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManagedInstance, SandboxProvider } from '../../src/providers/provider.js';
import { Reconciler } from '../../src/sandboxes/reconciler.js';
import { startTestServer, type TestServer, waitState } from '../helpers/server.js';

/**
 * The reconciler lists the engine's containers once per pass, then settles the rows one by one.
 * An operation that ends in between (a create, a start) must not look like drift to it.
 */
describe('reconciler: a container list older than the rows (real engine)', () => {
  let server: TestServer;
  beforeAll(async () => {
    // A long interval: only the passes this test runs. The crash watcher would settle a container
    // stopped from outside on its own (it asks for a pass), racing the test's pass: off here.
    server = await startTestServer({ reconcileIntervalSec: 3600 });
    server.app.watchers.stop();
  });
  afterAll(async () => {
    await server?.close();
  });

  /** A reconciler whose engine snapshot is the one given, as if taken just before the operation. */
  function reconcilerWithSnapshot(snapshot: ManagedInstance[]): Reconciler {
    const provider = server.app.provider;
    const stale = Object.create(provider) as SandboxProvider;
    stale.list = async () => snapshot;
    return new Reconciler({
      store: server.app.store,
      provider: stale,
      service: server.app.service,
      bus: server.app.bus,
      config: server.app.config,
      log: pino({ level: 'silent' }),
    });
  }

  it('leaves a sandbox started after the snapshot running', async () => {
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const id = created.body.id as string;
    await waitState(server, id, 'running');
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    await waitState(server, id, 'stopped');
    const snapshot = await server.app.provider.list(); // the container: exited
    expect(snapshot.find((i) => i.sandboxId === id)?.status).toBe('exited');

    await server.call('POST', `/v1/sandboxes/${id}/start`);
    await waitState(server, id, 'running');
    const report = await reconcilerWithSnapshot(snapshot).runOnce();
    expect(report.stopped).not.toContain(id);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
  });

  it('does not call a sandbox created after the snapshot lost', async () => {
    const snapshot = await server.app.provider.list(); // before the container exists
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const id = created.body.id as string;
    await waitState(server, id, 'running');
    const report = await reconcilerWithSnapshot(snapshot).runOnce();
    expect(report.lost).not.toContain(id);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
  });

  it('still settles real drift: a container stopped from outside', async () => {
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const id = created.body.id as string;
    await waitState(server, id, 'running');
    await server.app.provider.stop(id);
    const report = await reconcilerWithSnapshot(await server.app.provider.list()).runOnce();
    expect(report.stopped).toContain(id);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('stopped');
  });

  it('removes the workspace a delete left behind when it was killed after the container went', async () => {
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const id = created.body.id as string;
    await waitState(server, id, 'running');
    // What a kill -9 between the container's removal and the workspace's leaves: the row
    // deleted, no container, the workspace still on disk.
    await server.app.provider.destroy(id, { keepWorkspace: true });
    await server.app.store.updateSandbox(id, { state: 'deleted', deletedAt: new Date().toISOString() });
    const workspace = join(server.app.config.dataDir, 'sandboxes', id);
    expect(existsSync(workspace)).toBe(true);
    const graceMs = server.app.config.orphanGraceSec * 1000;
    const report = await new Reconciler({
      store: server.app.store,
      provider: server.app.provider,
      service: server.app.service,
      bus: server.app.bus,
      config: server.app.config,
      log: pino({ level: 'silent' }),
      clock: { now: () => Date.now() + graceMs + 1000 },
    }).runOnce();
    expect(report.orphansRemoved).toContain(id);
    expect(existsSync(workspace)).toBe(false);
  });
});
