import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Previewd } from '../../packages/sdk/src/index.js';
import { systemClock } from '../../src/domain/clock.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { WebhookSender } from '../../src/webhooks/sender.js';
import { WebhookService } from '../../src/webhooks/webhook-service.js';
import { sandboxRecord } from '../contract/store-fixtures.js';
import { releaseMounts } from '../helpers/mounts.js';
import { startPostgres } from '../helpers/postgres.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';
import { freePort, ServerProcess } from '../helpers/server-process.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdefgh';
const MISSING = 'wh_01jz5r6v7w8x9y0z1a2b3c4d5e';

describe('webhooks: a real server and engine, a real receiver on loopback', () => {
  let server: TestServer;
  let receiver: WebhookReceiver;
  const as = (
    key: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => server.call(method, path, body, { authorization: `Bearer ${key}`, ...headers });
  /** Makes a hook to the receiver's `path` as `key` and registers its secret there. */
  const hook = async (key: string, path: string, extra: Record<string, unknown> = {}, headers = {}) => {
    const res = await as(key, 'POST', '/v1/webhooks', { url: receiver.url(path), ...extra }, headers);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    receiver.secrets.set(path, res.body.secret);
    return res.body as { id: string; secret: string; owner: string | null };
  };

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    server = await startTestServer({
      apiKeys: [TEST_KEY, `${ALICE}:alice`, `${BOB}:bob`],
      // Tests allow loopback explicitly; the receiver is on 127.0.0.1.
      'webhooks.allowPrivateTargets': true,
      'webhooks.retryBaseMs': 200,
      'webhooks.retryMaxMs': 400,
      'webhooks.pollMs': 50,
      'webhooks.maxPerOwner': 3,
    });
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('makes a hook with a Standard Webhooks secret shown once; tenants see only their own', async () => {
    const res = await as(ALICE, 'POST', '/v1/webhooks', {
      url: receiver.url('/crud'),
      events: ['sandbox.state', 'sandbox.created'],
      description: 'ci',
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({
      owner: 'alice',
      events: ['sandbox.state', 'sandbox.created'],
      description: 'ci',
    });
    expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(res.body.secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
    const id = res.body.id as string;

    const listed = await as(ALICE, 'GET', '/v1/webhooks');
    expect(listed.body.webhooks.map((h: any) => h.id)).toEqual([id]);
    expect(JSON.stringify(listed.body)).not.toContain(res.body.secret);
    expect((await as(ALICE, 'GET', `/v1/webhooks/${id}`)).body.secret).toBeUndefined();
    expect(
      (await as(TEST_KEY, 'GET', `/v1/webhooks/${id}`, undefined, { 'x-previewd-owner': 'alice' })).status,
    ).toBe(200);

    // Another tenant: exactly what a hook that does not exist answers, on every route.
    expect((await as(BOB, 'GET', '/v1/webhooks')).body.webhooks).toEqual([]);
    for (const [method, path] of [
      ['GET', '/v1/webhooks/{id}'],
      ['DELETE', '/v1/webhooks/{id}'],
      ['GET', '/v1/webhooks/{id}/deliveries'],
      ['POST', '/v1/webhooks/{id}/test'],
      ['POST', '/v1/webhooks/{id}/deliveries/msg_01jz5r6v7w8x9y0z1a2b3c4d5e/redeliver'],
    ] as const) {
      for (const [key, headers] of [
        [BOB, {}],
        [TEST_KEY, { 'x-previewd-owner': 'bob' }],
        [TEST_KEY, {}],
      ] as const) {
        const theirs = await as(key, method, path.replace('{id}', id), undefined, headers);
        const missing = await as(key, method, path.replace('{id}', MISSING), undefined, headers);
        expect([theirs.status, theirs.body.error?.code], `${method} ${path}`).toEqual([
          404,
          'webhook_not_found',
        ]);
        expect(JSON.stringify(missing.body).replace(MISSING, id)).toBe(JSON.stringify(theirs.body));
      }
    }
    expect((await as(ALICE, 'GET', `/v1/webhooks/${id}`)).status).toBe(200);
    // The admin-wide scope is the admin's own: it does not list tenants' hooks.
    expect((await as(TEST_KEY, 'GET', '/v1/webhooks')).body.webhooks).toEqual([]);
    expect((await as(ALICE, 'DELETE', `/v1/webhooks/${id}`)).body.id).toBe(id);
    expect((await as(ALICE, 'GET', `/v1/webhooks/${id}`)).status).toBe(404);
  });

  it('bounds the input: URL form and length, known event types, hooks per owner', async () => {
    const create = (body: unknown) => as(BOB, 'POST', '/v1/webhooks', body);
    expect((await create({ url: `http://127.0.0.1/${'a'.repeat(2100)}` })).body.error.code).toBe(
      'invalid_request',
    );
    expect((await create({ url: receiver.url('/x'), events: ['no.such'] })).body.error.code).toBe(
      'invalid_request',
    );
    expect((await create({ url: receiver.url('/x'), extra: 1 })).body.error.code).toBe('invalid_request');
    expect((await create({ url: 'http://127.0.0.1/a\u0000b' })).body.error.code).toBe('invalid_request');
    expect((await create({ url: 'http://127.0.0.1/a b' })).body.error.code).toBe('invalid_request');
    expect((await create({ url: receiver.url('/x'), description: 'a\u0000' })).body.error.code).toBe(
      'invalid_request',
    );
    const tooMany = { url: receiver.url('/x'), events: Array.from({ length: 40 }, () => 'sandbox.state') };
    expect((await create(tooMany)).body.error.code).toBe('invalid_request');
    expect((await create({ url: 'ftp://127.0.0.1/x' })).body.error.code).toBe('webhook_target_not_allowed');
    expect((await create({ url: 'http://u:p@127.0.0.1/x' })).body.error.code).toBe(
      'webhook_target_not_allowed',
    );
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await create({ url: receiver.url(`/bob-${i}`) })).body.id);
    const over = await create({ url: receiver.url('/bob-4') });
    expect([over.status, over.body.error.code]).toEqual([409, 'webhook_limit_reached']);
    for (const id of made) await as(BOB, 'DELETE', `/v1/webhooks/${id}`);
  });

  it('refuses loopback and other non-internet targets unless webhooks.allowPrivateTargets', async () => {
    const settings = server.app.config.webhooks;
    settings.allowPrivateTargets = false;
    try {
      // Only loopback and documentation ranges here, so even a faulty check connects nowhere real;
      // private, CGNAT and metadata addresses are in the table of test/unit/webhook-target-policy.test.ts.
      for (const url of [
        receiver.url('/p'),
        'http://localhost:9/',
        'http://[::1]:9/',
        'http://198.51.100.9/',
        'http://203.0.113.9/latest/meta-data',
        'http://[2001:db8::254]/',
      ]) {
        const res = await as(BOB, 'POST', '/v1/webhooks', { url });
        expect([res.status, res.body.error?.code], url).toEqual([400, 'webhook_target_not_allowed']);
        expect(res.body.error.hint).toContain('PREVIEWD_WEBHOOKS_ALLOW_PRIVATE');
      }
    } finally {
      settings.allowPrivateTargets = true;
    }
  });

  it('delivers a sandbox’s events signed, in order, one at a time, retrying after a 500; tenant and admin-wide hooks', async () => {
    const alice = await hook(ALICE, '/alice');
    const bob = await hook(BOB, '/bob');
    const wide = await hook(TEST_KEY, '/wide');
    expect(wide.owner).toBeNull();
    let first = true;
    receiver.answer = async (r) => {
      await new Promise((resolve) => setTimeout(resolve, 30)); // a slow receiver: sends must not overlap
      if (r.path === '/alice' && first) {
        first = false;
        return 500;
      }
      return 200;
    };
    const created = await as(ALICE, 'POST', '/v1/sandboxes', { files: { 'index.html': '<p>hooks</p>' } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await waitState(server, id, 'running');
    await as(ALICE, 'DELETE', `/v1/sandboxes/${id}`);
    const forAlice = await receiver.until((all) => {
      const mine = all.filter((r) => r.path === '/alice' && r.body.type === 'sandbox.deleted');
      return mine.length > 0 ? all.filter((r) => r.path === '/alice') : undefined;
    });
    expect(forAlice.every((r) => r.verified)).toBe(true);
    expect(forAlice.every((r) => r.body.data.sandboxId === id && r.body.data.owner === 'alice')).toBe(true);
    expect(forAlice.every((r) => r.concurrentForSandbox === 1)).toBe(true);
    // The first one twice (500, then 200); then each event once, in id order.
    expect(forAlice[0]!.id).toBe(forAlice[1]!.id);
    const eventIds = forAlice.slice(1).map((r) => r.body.data.id as number);
    expect(eventIds).toEqual([...eventIds].sort((a, b) => a - b));
    expect(new Set(eventIds).size).toBe(eventIds.length);
    expect(forAlice.map((r) => r.body.type)).toContain('sandbox.created');
    const storedIds = (await server.app.store.listEvents({ sandboxId: id }))
      .map((e) => e.id)
      .filter((n) => n <= eventIds[eventIds.length - 1]!);
    expect(eventIds).toEqual(storedIds);

    // Each outcome is recorded once the receiver's answer came back.
    const log = await waitFor(async () => {
      const page = await as(ALICE, 'GET', `/v1/webhooks/${alice.id}/deliveries?limit=200`);
      return page.body.deliveries.every((d: any) => d.status === 'delivered') ? page : undefined;
    });
    const retried = log.body.deliveries.find((d: any) => d.id === forAlice[0]!.id);
    expect(retried).toMatchObject({
      status: 'delivered',
      attempts: 2,
      lastStatusCode: 200,
      nextAttemptAt: null,
    });
    expect(log.body.deliveries.every((d: any) => d.status === 'delivered')).toBe(true);
    expect(log.body.deliveries.every((d: any) => typeof d.lastDurationMs === 'number')).toBe(true);

    // The admin-wide hook got them too; bob's got nothing of alice's.
    await receiver.until((all) => all.some((r) => r.path === '/wide' && r.body.type === 'sandbox.deleted'));
    expect(receiver.received.filter((r) => r.path === '/bob')).toEqual([]);
    expect((await as(BOB, 'GET', `/v1/webhooks/${bob.id}/deliveries`)).body.deliveries).toEqual([]);
    for (const [key, h] of [
      [ALICE, alice],
      [BOB, bob],
      [TEST_KEY, wide],
    ] as const) {
      await as(key, 'DELETE', `/v1/webhooks/${h.id}`);
    }
  });

  it('sends a ping on test, and redelivers with the same webhook-id', async () => {
    receiver.answer = () => 200;
    const h = await hook(ALICE, '/ping');
    const sent = await as(ALICE, 'POST', `/v1/webhooks/${h.id}/test`);
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({
      type: 'webhook.ping',
      status: 'pending',
      eventId: null,
      sandboxId: null,
    });
    const ping = await receiver.until((all) => all.find((r) => r.path === '/ping'));
    expect(ping).toMatchObject({ id: sent.body.id, verified: true, body: { type: 'webhook.ping' } });
    expect(ping.body.data).toMatchObject({ webhookId: h.id });
    await waitFor(async () => {
      const page = await as(ALICE, 'GET', `/v1/webhooks/${h.id}/deliveries?status=delivered`);
      return page.body.deliveries.length === 1 ? true : undefined;
    });
    const again = await as(ALICE, 'POST', `/v1/webhooks/${h.id}/deliveries/${sent.body.id}/redeliver`);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ id: sent.body.id, status: 'pending' });
    await receiver.until((all) => all.filter((r) => r.path === '/ping').length === 2);
    expect(receiver.received.filter((r) => r.path === '/ping').map((r) => [r.id, r.verified])).toEqual([
      [sent.body.id, true],
      [sent.body.id, true],
    ]);
    const unknown = await as(
      ALICE,
      'POST',
      `/v1/webhooks/${h.id}/deliveries/msg_01jz5r6v7w8x9y0z1a2b3c4d5e/redeliver`,
    );
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'webhook_delivery_not_found']);
    await as(ALICE, 'DELETE', `/v1/webhooks/${h.id}`);
  });

  it('the TypeScript SDK: webhooks.create/list/get/test/deliveries/redeliver/delete', async () => {
    receiver.answer = () => 200;
    const sdk = new Previewd({ url: server.url, apiKey: TEST_KEY, owner: 'sdk-gina' });
    const made = await sdk.webhooks.create({ url: receiver.url('/sdk'), events: ['sandbox.deleted'] });
    receiver.secrets.set('/sdk', made.secret);
    expect(made).toMatchObject({ owner: 'sdk-gina', events: ['sandbox.deleted'] });
    expect((await sdk.webhooks.list()).map((h) => h.id)).toEqual([made.id]);
    expect(await sdk.webhooks.get(made.id)).not.toHaveProperty('secret');
    const ping = await sdk.webhooks.test(made.id);
    await receiver.until((all) => all.find((r) => r.path === '/sdk' && r.verified));
    const page = await waitFor(async () => {
      const p = await sdk.webhooks.deliveries(made.id, { status: 'delivered' });
      return p.deliveries.length === 1 ? p : undefined;
    });
    expect(page.deliveries[0]).toMatchObject({ id: ping.id, attempts: 1 });
    expect((await sdk.webhooks.redeliver(made.id, ping.id)).status).toBe('pending');
    await receiver.until((all) => all.filter((r) => r.path === '/sdk').length === 2);
    const other = new Previewd({ url: server.url, apiKey: TEST_KEY, owner: 'sdk-hank' });
    await expect(other.webhooks.get(made.id)).rejects.toMatchObject({ code: 'webhook_not_found' });
    expect((await sdk.webhooks.delete(made.id)).id).toBe(made.id);
    expect(await sdk.webhooks.list()).toEqual([]);
  });
});

describe('webhooks: at-least-once across a kill -9 of previewd', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-webhooks-kill-'));
  let receiver: WebhookReceiver;
  let server: ServerProcess;

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
  });
  afterAll(async () => {
    server?.kill9();
    await receiver?.close();
    await releaseMounts(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a delivery whose sender was killed mid-retry and mid-attempt arrives after the restart', async () => {
    server = new ServerProcess(dataDir, await freePort(), undefined, {
      PREVIEWD_WEBHOOKS_ALLOW_PRIVATE: 'true',
      PREVIEWD_WEBHOOKS_RETRY_BASE_MS: '300',
      PREVIEWD_WEBHOOKS_RETRY_MAX_MS: '600',
      PREVIEWD_WEBHOOKS_POLL_MS: '50',
      // The lease of an attempt is its timeout plus 5 s: what a killed sender leaves behind.
      PREVIEWD_WEBHOOKS_TIMEOUT_SEC: '1',
    });
    await server.start();
    let killed: () => void = () => undefined;
    const killedNow = new Promise<void>((resolve) => {
      killed = resolve;
    });
    // 1st attempt: 500 (a retry is scheduled); 2nd: previewd is killed while it waits for the answer.
    receiver.answer = (_r, attempt) => {
      if (attempt === 1) return 500;
      if (attempt === 2) {
        server.kill9();
        killed();
        return 'hang';
      }
      return 200;
    };
    const created = await server.call('POST', '/v1/webhooks', { url: receiver.url('/kill') });
    receiver.secrets.set('/kill', created.secret);
    const ping = await server.call('POST', `/v1/webhooks/${created.id}/test`);
    await killedNow;
    server = server.restarted();
    await server.start();
    const third = await receiver.until(
      (all) => (all.filter((r) => r.path === '/kill').length >= 3 ? all : undefined),
      30_000,
    );
    const attempts = third.filter((r) => r.path === '/kill');
    // Not before the lease of the killed attempt ended (1 s timeout + 5 s margin, from its claim).
    expect(Number(attempts[2]!.timestamp) - Number(attempts[1]!.timestamp)).toBeGreaterThanOrEqual(5);
    expect(attempts.map((r) => [r.id, r.verified])).toEqual([
      [ping.id, true],
      [ping.id, true],
      [ping.id, true],
    ]);
    const log = await waitFor(async () => {
      const page = await server.call('GET', `/v1/webhooks/${created.id}/deliveries`);
      return page.deliveries[0]?.status === 'delivered' ? page : undefined;
    });
    expect(log.deliveries).toHaveLength(1);
    expect(log.deliveries[0]).toMatchObject({
      id: ping.id,
      status: 'delivered',
      attempts: 3,
      lastStatusCode: 200,
    });
  });
});

describe('webhooks: two nodes on one PostgreSQL', () => {
  it('each delivery is written once and sent once, one sandbox’s in order, whichever node claims it', async () => {
    const pgServer = await startPostgres();
    const receiver = await new WebhookReceiver().start();
    const url = await pgServer.createDatabase('webhooks_two_nodes');
    const stores = [new PostgresStore({ url }), new PostgresStore({ url })];
    const log = pino({ level: 'silent' });
    const nodes = stores.map((store, i) => ({
      dispatcher: new WebhookDispatcher({
        store,
        bus: { subscribe: () => () => undefined },
        clock: systemClock,
        retryWindowMs: 60_000,
        pollMs: 1_000,
        log,
      }),
      sender: new WebhookSender({
        store,
        clock: systemClock,
        node: `n-${i}`,
        timeoutMs: 5_000,
        allowPrivateTargets: true,
        retry: { baseMs: 50, maxMs: 100 },
        pollMs: 20,
        concurrency: 4,
        log,
      }),
    }));
    try {
      await stores[0]!.migrate();
      const service = new WebhookService({
        store: stores[0]!,
        clock: systemClock,
        config: { allowPrivateTargets: true, maxPerOwner: 5, retryWindowSec: 60 },
      });
      const { webhook, secret } = await service.create('acme', { url: receiver.url('/two') });
      receiver.secrets.set('/two', secret);
      // Every tenth delivery fails once: retries interleave with first attempts on both nodes.
      receiver.answer = async (r, attempt) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return attempt === 1 && r.body.data.id % 10 === 0 ? 500 : 200;
      };
      const sandboxes = [
        sandboxRecord({ owner: 'acme' }),
        sandboxRecord({ owner: 'acme' }),
        sandboxRecord({ owner: 'acme' }),
      ];
      for (const sb of sandboxes) await stores[0]!.insertSandbox(sb);
      const written: Record<string, number[]> = {};
      for (let i = 0; i < 60; i++) {
        const sb = sandboxes[i % 3]!;
        const e = await stores[i % 2]!.appendEvent({
          type: 'sandbox.ports',
          sandboxId: sb.id,
          data: { ports: [i] },
        });
        written[sb.id] = [...(written[sb.id] ?? []), e.id];
      }
      const drained = await Promise.all(nodes.map((n) => n.dispatcher.drain()));
      expect(drained[0]! + drained[1]!).toBe(60);
      for (const n of nodes) n.sender.start();
      await waitFor(
        async () => {
          const page = await service.deliveries('acme', webhook.id, { limit: 200, status: 'delivered' });
          return page.deliveries.length === 60 ? true : undefined;
        },
        60_000,
        'every delivery delivered',
      );
      const ok = receiver.received.filter((r) => r.verified);
      expect(ok).toHaveLength(receiver.received.length);
      expect(receiver.received.every((r) => r.concurrentForSandbox === 1)).toBe(true);
      // Each event's delivery carried one webhook-id; a retried one was sent again, nothing more.
      const byEvent = new Map<number, Set<string>>();
      for (const r of receiver.received) {
        const ids = byEvent.get(r.body.data.id) ?? new Set<string>();
        ids.add(r.id);
        byEvent.set(r.body.data.id, ids);
      }
      expect(byEvent.size).toBe(60);
      expect([...byEvent.values()].every((ids) => ids.size === 1)).toBe(true);
      const log60 = (await service.deliveries('acme', webhook.id, { limit: 200 })).deliveries;
      expect(log60.filter((d) => d.attempts === 2)).toHaveLength(6);
      const received = receiver.received.length;
      expect(received).toBe(log60.reduce((n, d) => n + d.attempts, 0));
      // Per sandbox, the first arrival of each event is in event order.
      for (const sb of sandboxes) {
        const firsts: number[] = [];
        for (const r of receiver.received) {
          if (r.body.data.sandboxId === sb.id && !firsts.includes(r.body.data.id))
            firsts.push(r.body.data.id);
        }
        expect(firsts).toEqual(written[sb.id]);
      }
    } finally {
      for (const n of nodes) await n.sender.stop();
      for (const s of stores) await s.close();
      await receiver.close();
      await pgServer.stop();
    }
  });
});
