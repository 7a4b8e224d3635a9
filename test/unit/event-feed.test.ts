import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventFeed } from '../../src/api/routes/events.js';
import type { NewEvent } from '../../src/domain/events.js';
import { newSandboxId } from '../../src/domain/ids.js';
import { EventBus } from '../../src/events/bus.js';
import { SqliteStore } from '../../src/store/sqlite.js';

/** The SSE feed (`/v1/events`): history from the store after the resume id, then live, every node's events. */
describe('event feed across nodes', () => {
  let store: SqliteStore;
  let otherNode: SqliteStore;
  let bus: EventBus;
  beforeEach(async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'previewd-feed-')), 'previewd.db');
    store = new SqliteStore(file);
    await store.migrate();
    otherNode = new SqliteStore(file);
  });
  afterEach(async () => {
    bus.stop();
    await otherNode.close();
    await store.close();
  });

  const ports = (sandboxId: string, port: number): NewEvent<'sandbox.ports'> => ({
    type: 'sandbox.ports',
    sandboxId,
    data: { ports: [port] },
  });

  it('resumes after an id and shows every later event once, in id order, while two nodes write', async () => {
    const id = newSandboxId();
    bus = new EventBus(store, { pollMs: 5 });
    bus.start();
    const before = [];
    for (let i = 0; i < 10; i++) before.push(await otherNode.appendEvent(ports(id, i)));
    const resumeAt = before[2]!.id;

    const writing = (async () => {
      for (let i = 0; i < 20; i++) {
        await Promise.all([otherNode.appendEvent(ports(id, 100 + i)), bus.publish(ports(id, 200 + i))]);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();

    const controller = new AbortController();
    const seen: number[] = [];
    const expected = 7 + 40;
    for await (const e of eventFeed({ store, bus }, { afterId: resumeAt, signal: controller.signal })) {
      seen.push(e.id);
      if (seen.length === expected) break;
    }
    controller.abort();
    await writing;
    const stored = (await store.listEvents({ afterId: resumeAt })).map((e) => e.id);
    expect(stored).toHaveLength(expected);
    expect(seen).toEqual(stored);
  });

  it('filters by sandbox and owner without losing its place', async () => {
    bus = new EventBus(store);
    const a = newSandboxId();
    const b = newSandboxId();
    const first = await bus.publish(ports(a, 1));
    await bus.publish(ports(b, 2));
    await bus.publish(ports(a, 3));
    const controller = new AbortController();
    const feed = eventFeed(
      { store, bus },
      { afterId: first.id - 1, sandboxId: a, signal: controller.signal },
    );
    const got: number[] = [];
    for await (const e of feed) {
      got.push((e.data as { ports: number[] }).ports[0]!);
      if (got.length === 2) void bus.publish(ports(b, 4)).then(() => bus.publish(ports(a, 5)));
      if (got.length === 3) break;
    }
    controller.abort();
    expect(got).toEqual([1, 3, 5]);
  });
});
