import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_WIDE } from '../../src/domain/webhook.js';
import type { Store } from '../../src/store/store.js';
import { newDeliveryId, newWebhookId } from '../../src/webhooks/webhook-service.js';
import { type StoreHarness, sandboxRecord } from './store-fixtures.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const DAY = 86_400_000;

function hook(scope: string, events: string[] = [], url = 'https://hooks.example.com/in') {
  return { id: newWebhookId(), scope, url, events, secret: 'whsec_c2VjcmV0', createdAt: at(0) };
}

/** The webhooks half of the Store contract: hooks per scope, the dispatcher's cursor, leases, order. */
export function storeWebhooksContract(engine: string, make: () => Promise<StoreHarness>): void {
  describe(`Store contract (webhooks): ${engine}`, () => {
    let store: Store;
    let harness: StoreHarness;
    let others: Store[];
    const another = async () => {
      const s = await harness.openAnother();
      others.push(s);
      return s;
    };
    const dispatch = (s: Store = store, now = at(0)) =>
      s.dispatchWebhookEvents({ limit: 500, now, giveUpAt: at(DAY), newId: newDeliveryId });
    const claim = (s: Store, now: string, holder = 'n-1/a', limit = 10, leaseMs = 10_000) =>
      s.claimWebhookDeliveries({ now, leaseMs, limit, holder });
    /** A sandbox of `owner` and `n` events of it. */
    const sandboxWithEvents = async (owner: string | undefined, n: number, s: Store = store) => {
      const rec = sandboxRecord(owner ? { owner } : {});
      await s.insertSandbox(rec);
      const events = [];
      for (let i = 0; i < n; i++) {
        events.push(await s.appendEvent({ type: 'sandbox.ports', sandboxId: rec.id, data: { ports: [i] } }));
      }
      return { id: rec.id, events };
    };
    beforeEach(async () => {
      harness = await make();
      store = harness.store;
      others = [];
      await store.migrate();
    });
    afterEach(async () => {
      for (const s of others) await s.close();
      await store.close();
    });

    it('keeps hooks per scope, bounded per scope, starting after the events already stored', async () => {
      await sandboxWithEvents('acme', 2);
      const a = await store.insertWebhook({ ...hook('acme', ['sandbox.state']), description: 'ci' }, 2);
      expect(a.afterEventId).toBe(2);
      expect(await store.getWebhook(a.id)).toEqual(a);
      await store.insertWebhook(hook('acme'), 2);
      await expect(store.insertWebhook(hook('acme'), 2)).rejects.toMatchObject({
        code: 'webhook_limit_reached',
      });
      const wide = await store.insertWebhook(hook(ADMIN_WIDE), 2);
      expect((await store.listWebhooks('acme')).map((h) => h.id)).toHaveLength(2);
      expect((await store.listWebhooks(ADMIN_WIDE)).map((h) => h.id)).toEqual([wide.id]);
      expect(await store.listWebhooks('other')).toEqual([]);
      expect(await store.deleteWebhook(a.id)).toBe(true);
      expect(await store.deleteWebhook(a.id)).toBe(false);
      expect(await store.getWebhook(a.id)).toBeUndefined();
    });

    it('turns each matching event into one delivery per hook, once, and keeps the cursor', async () => {
      const acme = await store.insertWebhook(hook('acme'), 10);
      const onlyState = await store.insertWebhook(hook('acme', ['sandbox.state']), 10);
      const wide = await store.insertWebhook(hook(ADMIN_WIDE), 10);
      const other = await store.insertWebhook(hook('other'), 10);
      const mine = await sandboxWithEvents('acme', 3);
      const unowned = await sandboxWithEvents(undefined, 1);
      expect(await dispatch()).toEqual({ events: 4, deliveries: 3 + 3 + 1 });
      expect(await store.webhookCursor()).toBe(unowned.events[0]!.id);
      expect(await dispatch()).toEqual({ events: 0, deliveries: 0 });
      const list = await store.listWebhookDeliveries(acme.id, { limit: 10 });
      expect(list.map((d) => d.eventId)).toEqual(mine.events.map((e) => e.id).reverse());
      const first = list[list.length - 1]!;
      expect(first).toMatchObject({
        status: 'pending',
        attempts: 0,
        sandboxId: mine.id,
        type: 'sandbox.ports',
        nextAttemptAt: at(0),
        giveUpAt: at(DAY),
      });
      expect(JSON.parse(first.payload)).toEqual({
        type: 'sandbox.ports',
        timestamp: mine.events[0]!.at,
        data: {
          id: mine.events[0]!.id,
          sandboxId: mine.id,
          owner: 'acme',
          at: mine.events[0]!.at,
          data: { ports: [0] },
        },
      });
      expect(await store.listWebhookDeliveries(onlyState.id, { limit: 10 })).toEqual([]);
      expect(await store.listWebhookDeliveries(other.id, { limit: 10 })).toEqual([]);
      expect((await store.listWebhookDeliveries(wide.id, { limit: 10 })).map((d) => d.sandboxId)).toContain(
        unowned.id,
      );
      // Paging, newest first.
      const page = await store.listWebhookDeliveries(acme.id, { limit: 2 });
      expect(await store.listWebhookDeliveries(acme.id, { limit: 2, cursor: page[1]!.id })).toEqual([first]);
    });

    it('two stores dispatching at once write each delivery once', async () => {
      const b = await another();
      const h = await store.insertWebhook(hook('acme'), 10);
      const { events } = await sandboxWithEvents('acme', 40);
      const steps = await Promise.all([dispatch(store), dispatch(b), dispatch(store), dispatch(b)]);
      expect(steps.reduce((n, s) => n + s.deliveries, 0)).toBe(40);
      const rows = await store.listWebhookDeliveries(h.id, { limit: 100 });
      expect(new Set(rows.map((r) => r.eventId))).toEqual(new Set(events.map((e) => e.id)));
      expect(rows).toHaveLength(40);
    });

    it('hands out one delivery of a hook and sandbox at a time, in event order, under a lease', async () => {
      const h = await store.insertWebhook(hook('acme'), 10);
      const one = await sandboxWithEvents('acme', 2);
      const two = await sandboxWithEvents('acme', 1);
      await dispatch();
      const first = await claim(store, at(0));
      // The heads of both sandboxes' queues, not the second event of the first sandbox.
      expect(first.map((d) => d.eventId).sort()).toEqual([one.events[0]!.id, two.events[0]!.id].sort());
      expect(first[0]).toMatchObject({ attempts: 1, url: h.url, secret: h.secret, leaseHolder: 'n-1/a' });
      expect(await claim(store, at(1_000), 'n-2/b')).toEqual([]);
      const head = first.find((d) => d.sandboxId === one.id)!;
      // Only the holder records the outcome.
      expect(
        await store.completeWebhookAttempt({
          id: head.id,
          leaseHolder: 'n-2/b',
          now: at(1_000),
          durationMs: 5,
          result: 'delivered',
          statusCode: 200,
        }),
      ).toBe(false);
      expect(
        await store.completeWebhookAttempt({
          id: head.id,
          leaseHolder: 'n-1/a',
          now: at(1_000),
          statusCode: 204,
          durationMs: 12.4,
          result: 'delivered',
        }),
      ).toBe(true);
      expect(await store.getWebhookDelivery(h.id, head.id)).toMatchObject({
        status: 'delivered',
        attempts: 1,
        lastStatusCode: 204,
        lastDurationMs: 12,
        deliveredAt: at(1_000),
        lastAttemptAt: at(0),
      });
      const next = await claim(store, at(1_000), 'n-2/b');
      expect(next.map((d) => d.eventId)).toEqual([one.events[1]!.id]);
    });

    it('retries at the time given, lets another claimer take a lapsed lease, and fails for good', async () => {
      const h = await store.insertWebhook(hook('acme'), 10);
      const { events } = await sandboxWithEvents('acme', 2);
      await dispatch();
      const [d] = await claim(store, at(0), 'n-1/a', 1);
      expect(d?.eventId).toBe(events[0]!.id);
      await store.completeWebhookAttempt({
        id: d!.id,
        leaseHolder: 'n-1/a',
        now: at(100),
        statusCode: 500,
        durationMs: 3,
        result: 'retry',
        nextAttemptAt: at(5_000),
      });
      expect(await store.getWebhookDelivery(h.id, d!.id)).toMatchObject({
        status: 'pending',
        lastStatusCode: 500,
        nextAttemptAt: at(5_000),
      });
      // Not due yet, and its successor waits behind it.
      expect(await claim(store, at(4_999))).toEqual([]);
      const b = await another();
      const [again] = await claim(b, at(5_000), 'n-2/b', 5, 1_000);
      expect(again).toMatchObject({ id: d!.id, attempts: 2 });
      // The holder died: after its lease another node claims it again.
      expect(await claim(store, at(5_999))).toEqual([]);
      const [third] = await claim(store, at(6_000), 'n-1/c');
      expect(third).toMatchObject({ id: d!.id, attempts: 3 });
      expect(
        await b.completeWebhookAttempt({
          id: d!.id,
          leaseHolder: 'n-2/b',
          now: at(6_100),
          durationMs: 1,
          result: 'delivered',
          statusCode: 200,
        }),
      ).toBe(false);
      await store.completeWebhookAttempt({
        id: d!.id,
        leaseHolder: 'n-1/c',
        now: at(6_100),
        error: 'ECONNREFUSED',
        durationMs: 1,
        result: 'failed',
      });
      const failed = await store.getWebhookDelivery(h.id, d!.id);
      expect(failed).toMatchObject({ status: 'failed', attempts: 3, lastError: 'ECONNREFUSED' });
      expect(failed?.lastStatusCode).toBeUndefined();
      // A failed one no longer holds up its sandbox's queue.
      expect((await claim(store, at(6_100))).map((x) => x.eventId)).toEqual([events[1]!.id]);
      // Redelivered: pending and due now, with a new window.
      const redone = await store.redeliverWebhookDelivery(h.id, d!.id, at(7_000), at(7_000 + DAY));
      expect(redone).toMatchObject({
        status: 'pending',
        nextAttemptAt: at(7_000),
        giveUpAt: at(7_000 + DAY),
      });
      expect(await store.redeliverWebhookDelivery(h.id, newDeliveryId(), at(7_000), at(DAY))).toBeUndefined();
    });

    it('pings go out beside the queues, and two claimers never share a delivery', async () => {
      const h = await store.insertWebhook(hook('acme'), 10);
      const ping = await store.insertWebhookDelivery({
        id: newDeliveryId(),
        webhookId: h.id,
        type: 'webhook.ping',
        payload: '{"type":"webhook.ping"}',
        now: at(0),
        giveUpAt: at(DAY),
      });
      expect(ping).toMatchObject({ status: 'pending', type: 'webhook.ping', attempts: 0 });
      expect(ping.sandboxId).toBeUndefined();
      for (let i = 0; i < 10; i++) await sandboxWithEvents('acme', 2);
      await dispatch();
      const b = await another();
      const claims = await Promise.all([
        claim(store, at(0), 'a', 4),
        claim(b, at(0), 'b', 4),
        claim(store, at(0), 'c', 4),
        claim(b, at(0), 'd', 4),
      ]);
      const ids = claims.flat().map((d) => d.id);
      expect(new Set(ids).size).toBe(ids.length);
      // Ten sandbox heads and the ping: the second event of each sandbox waits.
      expect(ids).toHaveLength(11);
      expect(ids).toContain(ping.id);
      // A hook deleted takes its deliveries along.
      await store.deleteWebhook(h.id);
      expect(await store.getWebhookDelivery(h.id, ping.id)).toBeUndefined();
    });
  });
}
