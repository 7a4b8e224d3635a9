import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewEvent, PreviewdEvent } from '../../src/domain/events.js';
import { newSandboxId } from '../../src/domain/ids.js';
import { EventBus } from '../../src/events/bus.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { sandboxRecord } from '../contract/store-fixtures.js';

/** The store-driven bus against a real SQLite file; a second store on the file plays another node. */
describe('EventBus (store-driven)', () => {
  let file: string;
  let store: SqliteStore;
  let otherNode: SqliteStore;
  let bus: EventBus;
  beforeEach(async () => {
    file = join(mkdtempSync(join(tmpdir(), 'previewd-bus-')), 'previewd.db');
    store = new SqliteStore(file);
    await store.migrate();
    otherNode = new SqliteStore(file);
  });
  afterEach(async () => {
    bus?.stop();
    await otherNode.close();
    await store.close();
  });

  const collect = (b: EventBus) => {
    const got: PreviewdEvent[] = [];
    b.subscribe((e) => got.push(e));
    return got;
  };
  const ports = (sandboxId: string, port: number): NewEvent<'sandbox.ports'> => ({
    type: 'sandbox.ports',
    sandboxId,
    data: { ports: [port] },
  });

  it('starts at the store head, then delivers each event once in id order, whoever wrote it', async () => {
    const id = newSandboxId();
    await store.appendEvent(ports(id, 1));
    bus = new EventBus(store);
    const got = collect(bus);
    const faulty = bus.subscribe(() => {
      throw new Error('faulty subscriber');
    });
    const mine = await bus.publish(ports(id, 2));
    expect(got.map((e) => e.id)).toEqual([mine.id]);
    faulty();

    // Another node's writes and local outbox writes, interleaved, then pumps racing each other.
    const rec = sandboxRecord();
    await store.insertSandbox(rec, {
      event: { type: 'sandbox.created', sandboxId: rec.id, data: { image: 'img' } },
    });
    await otherNode.appendEvent(ports(id, 3));
    const published = Promise.all([bus.publish(ports(id, 4)), bus.publish(ports(id, 5))]);
    await otherNode.appendEvent(ports(id, 6));
    await Promise.all([bus.pump(), bus.pump(), published, bus.pump()]);
    const all = (await store.listEvents({ afterId: mine.id - 1 })).map((e) => e.id);
    expect(got.map((e) => e.id)).toEqual(all);
    // publish reads the head first, so 4 and 5 may land after 6: the order is the ids'.
    expect(
      got.map((e) => (e.type === 'sandbox.created' ? 0 : (e.data as { ports: number[] }).ports[0])).sort(),
    ).toEqual([0, 2, 3, 4, 5, 6]);
    await bus.pump();
    expect(got).toHaveLength(6);
  });

  it('many concurrent publishes from two buses on one database: each bus delivers every event once, in order', async () => {
    bus = new EventBus(store);
    const other = new EventBus(otherNode);
    const got = collect(bus);
    const gotOther = collect(other);
    const id = newSandboxId();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? bus : other).publish(ports(id, i))),
    );
    await Promise.all([bus.pump(), other.pump()]);
    const ids = (await store.listEvents({})).map((e) => e.id);
    expect(ids).toHaveLength(40);
    expect(got.map((e) => e.id)).toEqual(ids);
    expect(gotOther.map((e) => e.id)).toEqual(ids);
  });

  it('with pollMs, finds other nodes’ events on its timer', async () => {
    bus = new EventBus(store, { pollMs: 20 });
    bus.start();
    const seen = new Promise<PreviewdEvent>((resolve) => bus.subscribe(resolve));
    const written = await otherNode.appendEvent(ports(newSandboxId(), 7));
    expect((await seen).id).toBe(written.id);
  });

  it('a fenced publish from a stale node is refused and delivers nothing', async () => {
    bus = new EventBus(store);
    const got = collect(bus);
    const now = new Date().toISOString();
    const node = await store.acquireNode({
      id: 'n-1',
      apiUrl: 'http://198.51.100.11:7070',
      edgeUrl: 'http://198.51.100.11:8081',
      labels: {},
      capacity: { memoryMb: 1024, maxRunning: 4 },
      usage: { memoryMb: 0, running: 0 },
      leaseMs: 10_000,
      now,
    });
    const ok = await bus.publish(ports(newSandboxId(), 1), { fence: { node: 'n-1', epoch: node.epoch } });
    expect(ok.node).toBe('n-1');
    await expect(
      bus.publish(ports(newSandboxId(), 2), { fence: { node: 'n-1', epoch: node.epoch - 1 } }),
    ).rejects.toMatchObject({ code: 'node_fenced' });
    await bus.pump();
    expect(got.map((e) => e.id)).toEqual([ok.id]);
  });

  it('refuses a bad poll interval', () => {
    expect(() => new EventBus(store, { pollMs: -1 })).toThrow(RangeError);
    expect(() => new EventBus(store, { pollMs: 1.5 })).toThrow(RangeError);
  });
});
