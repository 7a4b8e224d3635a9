import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { ADMIN_WIDE } from '../../src/domain/webhook.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { WebhookSender } from '../../src/webhooks/sender.js';
import type { Resolve } from '../../src/webhooks/target-policy.js';
import { WebhookService } from '../../src/webhooks/webhook-service.js';
import { sandboxRecord } from '../contract/store-fixtures.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const log = pino({ level: 'silent' });
const DAY = 86_400_000;

describe('webhook sender (real SQLite store, real receiver on loopback, manual clock)', () => {
  let store: SqliteStore;
  let receiver: WebhookReceiver;
  let clock: ManualClock;

  const parts = (
    opts: { allowPrivate?: boolean; timeoutMs?: number; resolve?: Resolve; windowMs?: number } = {},
  ) => {
    const windowMs = opts.windowMs ?? DAY;
    const service = new WebhookService({
      store,
      clock,
      config: { allowPrivateTargets: true, maxPerOwner: 10, retryWindowSec: windowMs / 1000 },
      resolve: opts.resolve,
    });
    const dispatcher = new WebhookDispatcher({
      store,
      bus: { subscribe: () => () => undefined },
      clock,
      retryWindowMs: windowMs,
      pollMs: 60_000,
      log,
    });
    const sender = new WebhookSender({
      store,
      clock,
      node: 'n-1',
      timeoutMs: opts.timeoutMs ?? 5_000,
      allowPrivateTargets: opts.allowPrivate ?? true,
      retry: { baseMs: 1_000, maxMs: 60_000 },
      pollMs: 60_000,
      concurrency: 8,
      log,
      random: () => 1,
      resolve: opts.resolve,
    });
    /** One sender pass, waited for until its attempts are recorded. */
    const pass = async () => {
      const n = await sender.claimAndSend();
      await sender.settled();
      return n;
    };
    return { service, dispatcher, sender, pass };
  };
  const hookFor = async (service: WebhookService, path: string, scope = 'acme', url = receiver.url(path)) => {
    const { webhook, secret } = await service.create(scope, { url });
    receiver.secrets.set(path, secret);
    return webhook;
  };
  const events = async (owner: string, n: number) => {
    const rec = sandboxRecord({ owner });
    await store.insertSandbox(rec);
    const out = [];
    for (let i = 0; i < n; i++) {
      out.push(await store.appendEvent({ type: 'sandbox.ports', sandboxId: rec.id, data: { ports: [i] } }));
    }
    return { id: rec.id, events: out };
  };

  beforeEach(async () => {
    store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'previewd-wh-')), 'previewd.db'));
    await store.migrate();
    receiver = await new WebhookReceiver().start();
    clock = new ManualClock(Date.now());
  });
  afterEach(async () => {
    await receiver.close();
    await store.close();
  });

  it('signs each delivery so standardwebhooks verifies it, with the event in the body', async () => {
    const { service, dispatcher, pass } = parts();
    const hook = await hookFor(service, '/a');
    const {
      id,
      events: [event],
    } = await events('acme', 1);
    expect(await dispatcher.drain()).toBe(1);
    expect(await pass()).toBe(1);
    const [got] = receiver.received;
    expect(got).toMatchObject({
      path: '/a',
      verified: true,
      timestamp: String(Math.floor(clock.now() / 1000)),
    });
    expect(got!.id).toMatch(/^msg_/);
    expect(got!.body).toEqual({
      type: 'sandbox.ports',
      timestamp: event!.at,
      data: { id: event!.id, sandboxId: id, owner: 'acme', at: event!.at, data: { ports: [0] } },
    });
    const page = await service.deliveries('acme', hook.id, { limit: 10 });
    expect(page.deliveries[0]).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 204 });
    // A wrong secret does not verify.
    receiver.secrets.set('/a', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
    await service.ping('acme', hook.id);
    await pass();
    expect(receiver.received[1]).toMatchObject({ verified: false, body: { type: 'webhook.ping' } });
  });

  it('retries a 500 after the backoff (not before), then records the delivery', async () => {
    const { service, dispatcher, pass } = parts();
    const hook = await hookFor(service, '/retry');
    receiver.answer = (_r, attempt) => (attempt === 1 ? 500 : 200);
    await events('acme', 1);
    await dispatcher.drain();
    await pass();
    let [d] = (await service.deliveries('acme', hook.id, { limit: 1 })).deliveries;
    expect(d).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: 500 });
    expect(Date.parse(d!.nextAttemptAt!) - clock.now()).toBe(1_000);
    clock.advance(999);
    expect(await pass()).toBe(0);
    clock.advance(1);
    expect(await pass()).toBe(1);
    [d] = (await service.deliveries('acme', hook.id, { limit: 1 })).deliveries;
    expect(d).toMatchObject({ status: 'delivered', attempts: 2, lastStatusCode: 200, nextAttemptAt: null });
    expect(receiver.received.map((r) => r.id)).toEqual([d!.id, d!.id]);
  });

  it('sends one sandbox’s deliveries one at a time, in event order', async () => {
    const { service, dispatcher, pass } = parts();
    await hookFor(service, '/order');
    const one = await events('acme', 3);
    const two = await events('acme', 1);
    await dispatcher.drain();
    expect(await pass()).toBe(2); // the head of each sandbox's queue
    expect(await pass()).toBe(1);
    expect(await pass()).toBe(1);
    expect(await pass()).toBe(0);
    const forOne = receiver.received
      .filter((r) => r.body.data.sandboxId === one.id)
      .map((r) => r.body.data.id);
    expect(forOne).toEqual(one.events.map((e) => e.id));
    expect(receiver.received.filter((r) => r.body.data.sandboxId === two.id)).toHaveLength(1);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
  });

  it('a failing head holds its sandbox’s queue, and is failed once the window is over', async () => {
    const { service, dispatcher, pass } = parts({ windowMs: 10 * 60_000 });
    const hook = await hookFor(service, '/down');
    receiver.answer = () => 503;
    await events('acme', 2);
    await dispatcher.drain();
    let attempts = 0;
    for (let i = 0; i < 100; i++) {
      attempts += await pass();
      const [head] = (await service.deliveries('acme', hook.id, { limit: 10 })).deliveries.slice(-1);
      if (head?.status === 'failed') break;
      clock.advance(60_000);
    }
    const list = (await service.deliveries('acme', hook.id, { limit: 10 })).deliveries;
    const head = list[list.length - 1]!;
    expect(head.status).toBe('failed');
    expect(head.attempts).toBeGreaterThan(10);
    // Every attempt so far was the head's: the second event waited behind it.
    expect(new Set(receiver.received.map((r) => r.id))).toEqual(new Set([head.id]));
    expect(attempts).toBe(head.attempts);
    receiver.answer = () => 200;
    expect(await pass()).toBe(1);
    expect(receiver.received.at(-1)!.id).toBe(list[0]!.id);
  });

  it('refuses a private target at send time too, without connecting', async () => {
    const { service, dispatcher, pass } = parts({ allowPrivate: false });
    const hook = await hookFor(service, '/private');
    await events('acme', 1);
    await dispatcher.drain();
    await pass();
    const [d] = (await service.deliveries('acme', hook.id, { limit: 1 })).deliveries;
    expect(d).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: null });
    expect(d!.lastError).toContain('not an internet address');
    expect(receiver.received).toEqual([]);
  });

  it('connects to the address it resolved and checked (the name is not looked up again)', async () => {
    const resolve: Resolve = async (host) =>
      host === 'hooks.invalid' ? [{ address: '127.0.0.1', family: 4 }] : [];
    const { service, pass } = parts({ resolve });
    const hook = await hookFor(
      service,
      '/pinned',
      ADMIN_WIDE,
      `http://hooks.invalid:${receiver.port}/pinned`,
    );
    await service.ping(ADMIN_WIDE, hook.id);
    await pass();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]).toMatchObject({ verified: true, body: { type: 'webhook.ping' } });
  });

  it('follows no redirect and bounds the attempt by its timeout', async () => {
    const { service, pass } = parts({ timeoutMs: 300 });
    const hook = await hookFor(service, '/slow');
    receiver.answer = (_r, attempt) => (attempt === 1 ? 302 : 'hang');
    await service.ping('acme', hook.id);
    await pass();
    let [d] = (await service.deliveries('acme', hook.id, { limit: 1 })).deliveries;
    expect(d).toMatchObject({ status: 'pending', lastStatusCode: 302 });
    expect(receiver.received).toHaveLength(1);
    clock.advance(60_000);
    const t0 = performance.now();
    await pass();
    expect(performance.now() - t0).toBeLessThan(3_000);
    [d] = (await service.deliveries('acme', hook.id, { limit: 1 })).deliveries;
    expect(d).toMatchObject({ status: 'pending', attempts: 2, lastStatusCode: null });
    expect(d!.lastError).toMatch(/no answer within 300 ms|Timeout/i);
  });
});
