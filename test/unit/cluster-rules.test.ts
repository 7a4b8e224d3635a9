import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeDirectory } from '../../src/cluster/node-directory.js';
import { NodeLease } from '../../src/cluster/node-lease.js';
import { NodeWatch } from '../../src/cluster/node-watch.js';
import { place } from '../../src/cluster/placement.js';
import type { NodeRecord } from '../../src/domain/node.js';
import type { SandboxRecord } from '../../src/domain/sandbox.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { sandboxRecord } from '../contract/store-fixtures.js';

const log = pino({ level: 'silent' });
const T0 = Date.parse('2026-12-01T12:00:00.000Z');

function node(id: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    epoch: 1,
    apiUrl: `http://198.51.100.1${id.length}:7070`,
    edgeUrl: `http://198.51.100.1${id.length}:8080`,
    labels: {},
    capacity: { memoryMb: 4096, maxRunning: 10 },
    usage: { memoryMb: 0, running: 0 },
    status: 'up',
    startedAt: new Date(T0).toISOString(),
    heartbeatAt: new Date(T0).toISOString(),
    leaseUntil: new Date(T0 + 10_000).toISOString(),
    ...over,
  };
}

describe('placement', () => {
  it('orders live nodes with room by free memory, then running count, then id', () => {
    const nodes = [
      node('a', { usage: { memoryMb: 1000, running: 3 } }),
      node('b', { usage: { memoryMb: 200, running: 1 } }),
      node('c', { usage: { memoryMb: 200, running: 0 } }),
    ];
    expect(place(nodes, { memoryMb: 128 }, T0).candidates.map((n) => n.id)).toEqual(['c', 'b', 'a']);
  });

  it('puts full nodes last (their figures may be a heartbeat old) and skips dead, down and drained ones', () => {
    const nodes = [
      node('full', { usage: { memoryMb: 100, running: 10 } }),
      node('big', { usage: { memoryMb: 4000, running: 1 } }),
      node('ok'),
      node('expired', { leaseUntil: new Date(T0 - 1).toISOString() }),
      node('down', { status: 'down' }),
      node('drained', { labels: { 'swarm.availability': 'drain' } }),
      node('swarmdown', { labels: { 'swarm.state': 'down' } }),
    ];
    const p = place(nodes, { memoryMb: 128 }, T0);
    expect(p.candidates.map((n) => n.id)).toEqual(['ok']);
    expect(p.full.map((n) => n.id)).toEqual(['full', 'big']);
    expect(p.unsatisfiable).toBe(false);
  });

  it('honours node and labels; unsatisfiable when no live node matches', () => {
    const nodes = [node('a', { labels: { zone: 'x' } }), node('b', { labels: { zone: 'y', gpu: 'no' } })];
    expect(place(nodes, { memoryMb: 1, labels: { zone: 'y' } }, T0).candidates.map((n) => n.id)).toEqual([
      'b',
    ]);
    expect(place(nodes, { memoryMb: 1, node: 'a' }, T0).candidates.map((n) => n.id)).toEqual(['a']);
    expect(place(nodes, { memoryMb: 1, node: 'a', labels: { zone: 'y' } }, T0).unsatisfiable).toBe(true);
    expect(place(nodes, { memoryMb: 1, labels: { zone: 'z' } }, T0).unsatisfiable).toBe(true);
  });
});

describe('node lease and node watch (real SQLite, injected clocks)', () => {
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  const openPair = () => {
    const file = join(mkdtempSync(join(tmpdir(), 'previewd-cluster-')), 'previewd.db');
    const a = new SqliteStore(file);
    const b = new SqliteStore(file);
    stores.push(a, b);
    return { a, b };
  };

  function clocks() {
    const c = { wall: T0, mono: 1000 };
    return {
      c,
      now: () => new Date(c.wall).toISOString(),
      monotonic: () => c.mono,
      advance(ms: number) {
        c.wall += ms;
        c.mono += ms;
      },
    };
  }

  function lease(store: Store, id: string, clock: ReturnType<typeof clocks>, onReacquired?: () => void) {
    return new NodeLease({
      onReacquired,
      store,
      leaseMs: 10_000,
      heartbeatMs: 2_000,
      log,
      now: clock.now,
      monotonic: clock.monotonic,
      describe: async () => ({
        id,
        apiUrl: 'http://198.51.100.11:7070',
        edgeUrl: 'http://198.51.100.11:8080',
        labels: {},
        capacity: { memoryMb: 4096, maxRunning: 10 },
        usage: { memoryMb: 0, running: 0 },
      }),
      usage: async () => ({ memoryMb: 0, running: 0 }),
    });
  }

  it('a lapsed lease fences the node itself; a refused renewal registers again under a new epoch', async () => {
    const { a, b } = openPair();
    await a.migrate();
    const clock = clocks();
    let reacquired = 0;
    const la = lease(a, 'node-a', clock, () => {
      reacquired += 1;
    });
    await la.acquire();
    expect(la.fence()).toEqual({ node: 'node-a', epoch: 1 });
    clock.advance(9_000);
    await la.heartbeat();
    clock.advance(9_000);
    expect(la.fence().epoch).toBe(1); // renewed 9 s ago: still live
    clock.advance(1_000);
    expect(() => la.fence()).toThrow(/no live lease/);
    clock.advance(1);
    // Meanwhile another node fenced it off (its lease ended 10 s after the last renewal).
    expect(await b.fenceNode('node-a', 1, new Date(clock.c.wall).toISOString())).toBe(true);
    // Its next heartbeat is refused (stale epoch): it registers again under a new epoch and reconciles.
    await la.heartbeat();
    expect(la.stats.refused).toBe(1);
    expect(la.epoch).toBe(3); // 1, fenced to 2, acquired again: 3
    expect(la.fence()).toEqual({ node: 'node-a', epoch: 3 });
    expect(reacquired).toBe(1);
  });

  it('fences a dead node once and marks each of its live sandboxes lost exactly once, whoever sweeps', async () => {
    const { a, b } = openPair();
    await a.migrate();
    const clock = clocks();
    await lease(a, 'node-a', clock).acquire();
    await lease(b, 'node-b', clock).acquire();
    const dead = lease(a, 'node-c', clock);
    await dead.acquire();
    const rows = [
      sandboxRecord({ state: 'running', node: 'node-c' } as Partial<SandboxRecord>),
      sandboxRecord({ state: 'paused', node: 'node-c' } as Partial<SandboxRecord>),
      sandboxRecord({ state: 'stopped', node: 'node-c' } as Partial<SandboxRecord>),
      sandboxRecord({ state: 'running', node: 'node-a' } as Partial<SandboxRecord>),
    ];
    for (const r of rows) await a.insertSandbox(r);
    const marked: string[] = [];
    const watch = (self: string, store: Store) =>
      new NodeWatch({
        self,
        store,
        nodes: new NodeDirectory(store),
        log,
        nowMs: () => clock.c.wall,
        markLost: async (record) => {
          const next = await store.updateSandbox(record.id, { state: 'error' }, [record.state], {
            event: {
              type: 'sandbox.state',
              sandboxId: record.id,
              data: { from: record.state, to: 'error' },
            },
          });
          if (next) marked.push(record.id);
          return next !== undefined;
        },
      });
    const wa = watch('node-a', a);
    const wb = watch('node-b', b);
    // Within the lease nothing happens.
    expect((await wa.runOnce()).fenced).toEqual([]);
    // node-a and node-b keep renewing; node-c does not.
    clock.advance(10_001);
    await a.renewNode(
      { node: 'node-a', epoch: 1 },
      { usage: { memoryMb: 0, running: 0 }, leaseMs: 10_000, now: clock.now() },
    );
    await b.renewNode(
      { node: 'node-b', epoch: 1 },
      { usage: { memoryMb: 0, running: 0 }, leaseMs: 10_000, now: clock.now() },
    );
    const [ra, rb] = await Promise.all([wa.runOnce(), wb.runOnce()]);
    expect([...ra.fenced, ...rb.fenced]).toEqual(['node-c']);
    expect(marked.sort()).toEqual([rows[0]?.id, rows[1]?.id].sort());
    // Another sweep finds nothing left to do.
    await Promise.all([wa.runOnce(), wb.runOnce()]);
    expect(marked).toHaveLength(2);
    expect((await a.getNode('node-c'))?.status).toBe('down');
    expect((await a.getSandbox(rows[3]?.id ?? ''))?.state).toBe('running');
    // The dead node's own writes are refused from now on.
    await expect(
      a.updateSandbox(rows[2]?.id ?? '', { state: 'starting' }, ['stopped'], {
        fence: { node: 'node-c', epoch: 1 },
      }),
    ).rejects.toMatchObject({ code: 'node_fenced' });
  });
});
