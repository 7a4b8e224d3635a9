import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { edgeJson, previewHostOf, waitState } from '../helpers/edge.js';
import { sleep, stateEvents, waitStateEvent } from '../helpers/lifecycle.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../helpers/server.js';

const BOB_KEY = 'bob-key-0123456789abcdef';
const sleeper = { runtime: { start: 'exec sleep infinity' }, ports: [3000] };

async function createRunning(server: TestServer, extra: Record<string, unknown> = {}, headers = {}) {
  const res = await server.call('POST', '/v1/sandboxes', { ...sleeper, ...extra }, headers);
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  await waitState(server, res.body.id, 'running');
  return res.body.id as string;
}

describe('capacity admission, quotas and expiry (real engine)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      apiKeys: [TEST_KEY, `${BOB_KEY}:bob`],
      'lifecycle.idleReapIntervalSec': 0.5,
      'lifecycle.maxTtlSec': 120,
      'admission.maxRunning': 2,
      'admission.minActiveSec': 1,
      'admission.retryAfterSec': 7,
      'quotas.maxSandboxesPerOwner': 2,
      'quotas.maxRunningPerOwner': 1,
    });
  }, 60_000);
  afterEach(async () => {
    // Each case starts from an empty host, whatever the previous one left.
    const rows = await server.app.store.listSandboxes();
    await Promise.all(rows.map((r) => server.app.service.delete(r.id).catch(() => undefined)));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('stops the least-recently-active idle sandbox to admit a create; 503 with Retry-After when none can give way', async () => {
    const older = await createRunning(server);
    const newer = await createRunning(server);
    await sleep(1200);
    await server.call('POST', `/v1/sandboxes/${newer}/keepalive`); // activity, no hold
    await sleep(1200);
    // Both idle for minActiveSec; `older` was active longest ago: it gives way.
    const third = await createRunning(server);
    await waitStateEvent(server, older, 'stopped', 'capacity');
    expect((await server.call('GET', `/v1/sandboxes/${newer}`)).body.state).toBe('running');

    // Nothing can give way: both are held awake.
    await server.call('POST', `/v1/sandboxes/${newer}/keepalive`, { untilSec: 60 });
    await server.call('POST', `/v1/sandboxes/${third}/keepalive`, { untilSec: 60 });
    const refused = await server.call('POST', '/v1/sandboxes', sleeper);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('capacity_exhausted');
    expect(refused.headers.get('retry-after')).toBe('7');

    // A wake through the edge meets the same admission: the answer is capacity_exhausted, not a crash.
    const wake = await edgeJson(server, previewHostOf(older), '/', {
      headers: { accept: 'application/json' },
    });
    expect(wake.status).toBe(503);
    expect(wake.body.error.code).toBe('capacity_exhausted');
    expect(wake.headers['retry-after']).toBe('7');
    expect((await server.call('GET', `/v1/sandboxes/${older}`)).body.state).toBe('stopped');

    await Promise.all([older, newer, third].map((id) => server.call('DELETE', `/v1/sandboxes/${id}`)));
  });

  it('counts creates admitted but not yet recorded: concurrent creates do not overshoot maxRunning', async () => {
    const results = await Promise.all([1, 2, 3].map(() => server.call('POST', '/v1/sandboxes', sleeper)));
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 503]);
  });

  it('answers 429 quota_exceeded per owner: running sandboxes, then sandboxes', async () => {
    const alice = { 'x-previewd-owner': 'alice' };
    const first = await createRunning(server, {}, alice);
    expect((await server.call('GET', `/v1/sandboxes/${first}`)).body.owner).toBe('alice');
    const overRunning = await server.call('POST', '/v1/sandboxes', sleeper, alice);
    expect(overRunning.status).toBe(429);
    expect(overRunning.body.error.code).toBe('quota_exceeded');

    await server.call('POST', `/v1/sandboxes/${first}/stop`);
    const second = await createRunning(server, {}, alice);
    const overCount = await server.call('POST', '/v1/sandboxes', sleeper, alice);
    expect(overCount.status).toBe(429);
    expect(overCount.body.error.details).toMatchObject({ quota: 'maxSandboxesPerOwner', limit: 2 });
    // Starting the stopped one would make two running.
    const start = await server.call('POST', `/v1/sandboxes/${first}/start`);
    expect(start.status).toBe(429);

    // A key that names its owner decides: it may not act for anyone else (security.md, tenants).
    const asAlice = await server.call('POST', '/v1/sandboxes', sleeper, {
      authorization: `Bearer ${BOB_KEY}`,
      ...alice,
    });
    expect(asAlice.status).toBe(403);
    expect(asAlice.body.error.code).toBe('forbidden');
    const bobs = await createRunning(server, {}, { authorization: `Bearer ${BOB_KEY}` });
    expect((await server.call('GET', `/v1/sandboxes/${bobs}`)).body.owner).toBe('bob');
    await Promise.all([first, second, bobs].map((id) => server.call('DELETE', `/v1/sandboxes/${id}`)));
  });

  it('deletes at ttl with sandbox.expired; extend moves the expiry, up to the configured maximum', async () => {
    const res = await server.call('POST', '/v1/sandboxes', { ...sleeper, ttlSec: 3 });
    const doomed = res.body.id as string;
    const kept = (await server.call('POST', '/v1/sandboxes', { ...sleeper, ttlSec: 30 })).body.id as string;
    const extended = await server.call('POST', `/v1/sandboxes/${kept}/extend`, { ttlSec: 60 });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.body.expiresAt)).toBeGreaterThan(Date.now() + 50_000);
    const tooFar = await server.call('POST', `/v1/sandboxes/${kept}/extend`, { ttlSec: 600 });
    expect(tooFar.status).toBe(400);
    expect(tooFar.body.error.code).toBe('resource_limit');
    const createTooFar = await server.call('POST', '/v1/sandboxes', { ...sleeper, ttlSec: 600 });
    expect(createTooFar.status).toBe(400);

    const events = await waitFor(
      async () => {
        const all = await server.app.bus.history({ sandboxId: doomed });
        return all.some((e) => e.type === 'sandbox.deleted') ? all : undefined;
      },
      15_000,
      'expired sandbox deleted',
    );
    expect((await server.call('GET', `/v1/sandboxes/${doomed}`)).status).toBe(404);
    const types = events.map((e) => e.type);
    expect(types).toContain('sandbox.expired');
    expect(types.indexOf('sandbox.expired')).toBeLessThan(types.indexOf('sandbox.deleted'));
    expect((await stateEvents(server, doomed)).at(-1)).toMatchObject({ to: 'deleted', reason: 'expired' });
    expect((await server.call('GET', `/v1/sandboxes/${kept}`)).status).toBe(200);
    await server.call('DELETE', `/v1/sandboxes/${kept}`);
  });
});
