import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartDockerd } from '../helpers/dockerd.js';
import { createAppSandbox, edgeJson, previewHostOf, waitState } from '../helpers/edge.js';
import { stateEvents } from '../helpers/lifecycle.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

/**
 * Runs alone (see vitest.config.ts and the Makefile's test target): restarting the engine stops
 * every container on the machine.
 *
 * What "returns to the state it should be in" means here: a sandbox that was running or paused
 * when the engine went away is `stopped` once it is back (memory given back, no start storm of
 * every sandbox of the host at once, admission applies to each wake) and wakes on its next
 * preview request like any stopped sandbox; a stopped one stays stopped. Files are untouched.
 */
describe('dockerd restart under running sandboxes (real engine)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ 'lifecycle.idleReapIntervalSec': 1 });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('marks running and paused sandboxes stopped; the next request wakes each, files intact', async () => {
    const [running, paused, stopped] = await Promise.all([
      createAppSandbox(server),
      createAppSandbox(server),
      createAppSandbox(server),
    ]);
    for (const sb of [running, paused, stopped]) {
      const put = await server.call(
        'PUT',
        `/v1/sandboxes/${sb.id}/files?path=notes/kept.txt`,
        `kept by ${sb.id}`,
        {
          'content-type': 'text/plain',
        },
      );
      expect(put.status).toBeLessThan(300);
    }
    await server.call('POST', `/v1/sandboxes/${paused.id}/pause`);
    await server.call('POST', `/v1/sandboxes/${stopped.id}/stop`);

    await restartDockerd();

    // The reconciler notices within seconds; nothing is lost, nothing in error.
    for (const sb of [running, paused, stopped]) await waitState(server, sb.id, 'stopped', 30_000);
    for (const sb of [running, paused]) {
      const events = await stateEvents(server, sb.id);
      expect(events.at(-1)).toMatchObject({ to: 'stopped', reason: 'engine' });
    }
    for (const sb of [running, paused, stopped]) {
      const file = join(server.dataDir, 'sandboxes', sb.id, 'workspace', 'notes', 'kept.txt');
      expect(readFileSync(file, 'utf8')).toBe(`kept by ${sb.id}`);
    }

    // Each wakes on its next request and serves.
    for (const sb of [running, paused, stopped]) {
      const res = await edgeJson(server, previewHostOf(sb.id), '/', {
        headers: { accept: 'application/json' },
      });
      expect(res.status).toBe(200);
      expect(res.text).toContain('hello from the app');
      expect((await server.call('GET', `/v1/sandboxes/${sb.id}`)).body.state).toBe('running');
    }
    await waitFor(async () => ((await server.app.provider.list()).length === 3 ? true : undefined));
  }, 180_000);
});
