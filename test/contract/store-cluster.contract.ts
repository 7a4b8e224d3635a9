import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../../src/domain/events.js';
import { newSandboxId } from '../../src/domain/ids.js';
import type { Fence } from '../../src/domain/node.js';
import type { AcquireNodeInput, Store } from '../../src/store/store.js';
import { type StoreHarness, sandboxRecord } from './store-fixtures.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
/** A time `ms` after a fixed start (the store takes the caller's clock; no waiting). */
const at = (ms: number) => new Date(T0 + ms).toISOString();

function nodeInput(id: string, now: string, leaseMs = 10_000): AcquireNodeInput {
  return {
    id,
    apiUrl: `http://198.51.100.11:7070`,
    edgeUrl: `http://198.51.100.11:8081`,
    labels: { zone: 'a' },
    capacity: { memoryMb: 8192, maxRunning: 20 },
    usage: { memoryMb: 0, running: 0 },
    leaseMs,
    now,
  };
}

const stateEvent = (
  sandboxId: string,
  from: 'creating' | 'starting',
  to: 'starting' | 'running',
): NewEvent => ({
  type: 'sandbox.state',
  sandboxId,
  data: { from, to },
});

/** The cluster half of the Store contract: outbox, node rows, leases, fencing, concurrency. */
export function storeClusterContract(engine: string, make: () => Promise<StoreHarness>): void {
  describe(`Store contract (cluster): ${engine}`, () => {
    let store: Store;
    let harness: StoreHarness;
    let others: Store[];
    const another = async () => {
      const s = await harness.openAnother();
      others.push(s);
      return s;
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

    it('rows name their node (local by default) and list by node', async () => {
      const a = sandboxRecord();
      const b = sandboxRecord({ node: 'n-1' });
      await store.insertSandbox(a);
      await store.insertSandbox(b);
      expect((await store.listSandboxes({ node: 'local' })).map((r) => r.id)).toEqual([a.id]);
      expect((await store.listSandboxes({ node: 'n-1' })).map((r) => r.id)).toEqual([b.id]);
      expect(await store.listSandboxes({ node: 'n-2' })).toEqual([]);
      expect((await store.updateSandbox(a.id, { state: 'starting' }))?.node).toBe('local');
      expect((await store.updateSandbox(b.id, { node: 'n-2' }))?.node).toBe('n-2');
      expect((await store.listSandboxes({ node: 'n-2' })).map((r) => r.id)).toEqual([b.id]);
    });

    it('outbox: a write with an event writes both; the event takes owner and node from the row', async () => {
      const rec = sandboxRecord({ owner: 'acme', node: 'n-1' });
      await store.insertSandbox(rec, {
        event: { type: 'sandbox.created', sandboxId: rec.id, data: { image: 'img' } },
      });
      const next = await store.updateSandbox(rec.id, { state: 'starting' }, ['creating'], {
        event: stateEvent(rec.id, 'creating', 'starting'),
      });
      expect(next?.state).toBe('starting');
      const events = await store.listEvents({ sandboxId: rec.id });
      expect(events.map((e) => [e.type, e.owner, e.node])).toEqual([
        ['sandbox.created', 'acme', 'n-1'],
        ['sandbox.state', 'acme', 'n-1'],
      ]);
      expect(events[1]!.data).toEqual({ from: 'creating', to: 'starting' });
      expect(events[1]!.id).toBeGreaterThan(events[0]!.id);
      expect(await store.lastEventId()).toBe(events[1]!.id);

      await store.purgeSandbox(rec.id, { event: { type: 'sandbox.deleted', sandboxId: rec.id, data: {} } });
      expect(await store.getSandbox(rec.id, { includeDeleted: true })).toBeUndefined();
      const last = (await store.listEvents({ afterId: events[1]!.id }))[0];
      expect(last).toMatchObject({ type: 'sandbox.deleted', owner: 'acme', node: 'n-1' });
    });

    it('outbox: a compare-and-set that misses writes neither the row nor the event', async () => {
      const rec = sandboxRecord();
      await store.insertSandbox(rec);
      const before = await store.lastEventId();
      expect(
        await store.updateSandbox(rec.id, { state: 'running' }, ['starting'], {
          event: stateEvent(rec.id, 'starting', 'running'),
        }),
      ).toBeUndefined();
      expect(
        await store.updateSandbox(newSandboxId(), { state: 'running' }, undefined, {
          event: stateEvent(rec.id, 'starting', 'running'),
        }),
      ).toBeUndefined();
      expect((await store.getSandbox(rec.id))?.state).toBe('creating');
      expect(await store.lastEventId()).toBe(before);
      expect(await store.listEvents({})).toEqual([]);
    });

    it('fencing: a stale epoch, a down node and an unknown node write nothing (row and event)', async () => {
      const n1 = await store.acquireNode(nodeInput('n-1', at(0)));
      const good: Fence = { node: 'n-1', epoch: n1.epoch };
      const rec = sandboxRecord({ node: 'n-1', owner: 'acme' });
      await store.insertSandbox(rec, {
        fence: good,
        event: { type: 'sandbox.created', sandboxId: rec.id, data: { image: 'img' } },
      });
      const appended = await store.appendEvent(stateEvent(rec.id, 'creating', 'starting'), { fence: good });
      expect(appended).toMatchObject({ node: 'n-1', owner: 'acme' });
      const head = await store.lastEventId();

      const n1again = await store.acquireNode(nodeInput('n-1', at(1)));
      expect(n1again.epoch).toBe(n1.epoch + 1);
      const refusals: Fence[] = [good, { node: 'n-9', epoch: 1 }];
      // and a node that is down: n-2 fenced off after its lease ended, its new epoch held by nobody
      const n2 = await store.acquireNode(nodeInput('n-2', at(0), 1_000));
      expect(await store.fenceNode('n-2', n2.epoch, at(5_000))).toBe(true);
      refusals.push({ node: 'n-2', epoch: n2.epoch }, { node: 'n-2', epoch: n2.epoch + 1 });

      for (const fence of refusals) {
        const fresh = sandboxRecord({ node: fence.node });
        const event = stateEvent(rec.id, 'creating', 'starting');
        await expect(store.insertSandbox(fresh, { fence, event })).rejects.toMatchObject({
          code: 'node_fenced',
        });
        await expect(
          store.updateSandbox(rec.id, { state: 'starting' }, ['creating'], { fence, event }),
        ).rejects.toMatchObject({ code: 'node_fenced' });
        await expect(
          store.updateSandbox(rec.id, { state: 'starting' }, undefined, { fence }),
        ).rejects.toMatchObject({
          code: 'node_fenced',
        });
        await expect(store.purgeSandbox(rec.id, { fence, event })).rejects.toMatchObject({
          code: 'node_fenced',
        });
        await expect(store.appendEvent(event, { fence })).rejects.toMatchObject({ code: 'node_fenced' });
        expect(await store.getSandbox(fresh.id, { includeDeleted: true })).toBeUndefined();
      }
      expect(await store.getSandbox(rec.id)).toMatchObject({ state: 'creating', node: 'n-1' });
      expect(await store.lastEventId()).toBe(head);
      const ok = await store.updateSandbox(rec.id, { state: 'starting' }, ['creating'], {
        fence: { node: 'n-1', epoch: n1again.epoch },
      });
      expect(ok?.state).toBe('starting');
    });

    it('acquire, renew and fence: epochs, leases, one winner, no renew after a fence', async () => {
      const first = await store.acquireNode(nodeInput('n-1', at(0), 10_000));
      expect(first).toMatchObject({
        id: 'n-1',
        epoch: 1,
        status: 'up',
        startedAt: at(0),
        heartbeatAt: at(0),
        leaseUntil: at(10_000),
        labels: { zone: 'a' },
        capacity: { memoryMb: 8192, maxRunning: 20 },
        usage: { memoryMb: 0, running: 0 },
        apiUrl: 'http://198.51.100.11:7070',
        edgeUrl: 'http://198.51.100.11:8081',
      });
      const second = await store.acquireNode(nodeInput('n-1', at(1_000), 10_000));
      expect(second.epoch).toBe(2);
      expect(
        await store.renewNode(
          { node: 'n-1', epoch: 1 },
          { usage: { memoryMb: 1, running: 1 }, leaseMs: 10_000, now: at(2_000) },
        ),
      ).toBeUndefined();
      expect(
        await store.renewNode(
          { node: 'n-9', epoch: 1 },
          { usage: { memoryMb: 1, running: 1 }, leaseMs: 10_000, now: at(2_000) },
        ),
      ).toBeUndefined();
      const renewed = await store.renewNode(
        { node: 'n-1', epoch: 2 },
        { usage: { memoryMb: 512, running: 1 }, leaseMs: 5_000, now: at(3_000), labels: { zone: 'b' } },
      );
      expect(renewed).toMatchObject({
        epoch: 2,
        status: 'up',
        heartbeatAt: at(3_000),
        leaseUntil: at(8_000),
        startedAt: at(1_000),
        usage: { memoryMb: 512, running: 1 },
        labels: { zone: 'b' },
      });
      const kept = await store.renewNode(
        { node: 'n-1', epoch: 2 },
        { usage: { memoryMb: 0, running: 0 }, leaseMs: 5_000, now: at(3_500) },
      );
      expect(kept?.labels).toEqual({ zone: 'b' });

      // The lease has not ended: nobody may fence it; a wrong epoch never may.
      expect(await store.fenceNode('n-1', 2, at(8_000))).toBe(false);
      expect(await store.fenceNode('n-1', 1, at(60_000))).toBe(false);
      expect(await store.fenceNode('n-9', 1, at(60_000))).toBe(false);

      const other = await another();
      const results = await Promise.all([
        store.fenceNode('n-1', 2, at(9_000)),
        other.fenceNode('n-1', 2, at(9_000)),
        store.fenceNode('n-1', 2, at(9_000)),
        other.fenceNode('n-1', 2, at(9_000)),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await other.getNode('n-1')).toMatchObject({ status: 'down', epoch: 3 });
      expect(await store.fenceNode('n-1', 3, at(60_000))).toBe(false);
      for (const epoch of [2, 3]) {
        expect(
          await store.renewNode(
            { node: 'n-1', epoch },
            { usage: { memoryMb: 0, running: 0 }, leaseMs: 5_000, now: at(9_500) },
          ),
        ).toBeUndefined();
      }
      expect(await store.getNode('n-1')).toMatchObject({ status: 'down', epoch: 3, heartbeatAt: at(3_500) });

      const back = await store.acquireNode(nodeInput('n-1', at(20_000)));
      expect(back).toMatchObject({ epoch: 4, status: 'up' });
      await store.acquireNode(nodeInput('n-0', at(20_000)));
      await store.setNodeLabels('n-0', { zone: 'c', gpu: 'no' });
      expect((await store.listNodes()).map((n) => [n.id, n.labels])).toEqual([
        ['n-0', { zone: 'c', gpu: 'no' }],
        ['n-1', { zone: 'a' }],
      ]);
      expect(await store.getNode('n-9')).toBeUndefined();
    });

    it('fenced writes racing a fence from another connection: each is whole or refused, none after', async () => {
      const other = await another();
      const node = await store.acquireNode(nodeInput('n-1', at(0), 1_000));
      const fence: Fence = { node: 'n-1', epoch: node.epoch };
      const rec = sandboxRecord({ node: 'n-1' });
      await store.insertSandbox(rec, { fence });
      const writes = Array.from({ length: 20 }, (_, i) =>
        store.updateSandbox(rec.id, { metadata: { i } }, undefined, {
          fence,
          event: { type: 'sandbox.ports', sandboxId: rec.id, data: { ports: [i] } },
        }),
      );
      const fenced = other.fenceNode('n-1', node.epoch, at(2_000));
      const outcomes = await Promise.allSettled(writes);
      expect(await fenced).toBe(true);
      const done = outcomes.filter((o) => o.status === 'fulfilled');
      for (const o of outcomes) {
        if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'node_fenced' });
      }
      const events = await other.listEvents({ sandboxId: rec.id });
      // By payload: writes in flight at once on a pool need not commit in the order they were issued.
      const port = (d: unknown) => (d as { ports: number[] }).ports[0]!;
      expect(events.map((e) => e.data).sort((a, b) => port(a) - port(b))).toEqual(
        done.map((o) => ({ ports: [(o.value!.metadata as { i: number }).i] })),
      );
      await expect(store.updateSandbox(rec.id, { metadata: {} }, undefined, { fence })).rejects.toMatchObject(
        {
          code: 'node_fenced',
        },
      );
    });

    it('refuses bad node input with invalid_request', async () => {
      await expect(store.acquireNode(nodeInput('Bad_Id', at(0)))).rejects.toMatchObject({
        code: 'invalid_request',
      });
      await expect(store.acquireNode(nodeInput('n-1', 'yesterday'))).rejects.toMatchObject({
        code: 'invalid_request',
      });
      await expect(store.acquireNode(nodeInput('n-1', at(0), 0))).rejects.toMatchObject({
        code: 'invalid_request',
      });
      await expect(
        store.acquireNode({ ...nodeInput('n-1', at(0)), apiUrl: 'not a url' }),
      ).rejects.toMatchObject({
        code: 'invalid_request',
      });
      expect(await store.listNodes()).toEqual([]);
    });

    it('compare-and-set under contention from two connections: exactly one wins each step', async () => {
      const other = await another();
      const rec = sandboxRecord({ state: 'running' });
      await store.insertSandbox(rec);
      const steps = 25;
      for (let step = 0; step < steps; step++) {
        const from = step % 2 === 0 ? 'running' : 'paused';
        const to = step % 2 === 0 ? 'paused' : 'running';
        const attempts = Array.from({ length: 8 }, (_, writer) =>
          (writer % 2 === 0 ? store : other).updateSandbox(
            rec.id,
            { state: to, metadata: { step, writer } },
            [from],
            {
              event: { type: 'sandbox.state', sandboxId: rec.id, data: { from, to } },
            },
          ),
        );
        const won = (await Promise.all(attempts)).filter((r) => r !== undefined);
        expect(won).toHaveLength(1);
        expect((await other.getSandbox(rec.id))?.metadata).toEqual(won[0]!.metadata);
      }
      expect((await store.getSandbox(rec.id))?.state).toBe('paused');
      expect(await other.listEvents({ sandboxId: rec.id })).toHaveLength(steps);
    });

    it('event order under concurrent appends from two connections: a resuming reader sees each once, in order', async () => {
      const other = await another();
      const sandboxId = newSandboxId();
      const perWriter = 60;
      const written: number[] = [];
      const writer = async (s: Store) => {
        for (let i = 0; i < perWriter; i += 5) {
          const batch = await Promise.all(
            Array.from({ length: 5 }, () =>
              s.appendEvent({ type: 'sandbox.ports', sandboxId, data: { ports: [i] } }),
            ),
          );
          written.push(...batch.map((e) => e.id));
        }
      };
      let done = false;
      const writers = Promise.all([writer(store), writer(other)]).finally(() => {
        done = true;
      });
      const seen: number[] = [];
      let last = 0;
      for (;;) {
        const finished = done;
        const page = await store.listEvents({ afterId: last, limit: 7 });
        for (const e of page) {
          seen.push(e.id);
          last = e.id;
        }
        if (finished && page.length === 0) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writers;
      expect(seen).toHaveLength(perWriter * 2);
      expect(new Set(seen).size).toBe(seen.length);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
      expect([...seen].sort((a, b) => a - b)).toEqual([...written].sort((a, b) => a - b));
    });
  });
}
