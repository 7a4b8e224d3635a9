import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPreviewdError } from '../../src/domain/errors.js';
import { newSandboxId } from '../../src/domain/ids.js';
import type { SnapshotRecord } from '../../src/domain/snapshot-schemas.js';
import type { Store } from '../../src/store/store.js';
import type { StoreHarness } from './store-fixtures.js';

function snapshot(overrides: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    id: newSandboxId(),
    sandboxId: newSandboxId(),
    labels: { kind: 'base' },
    node: 'local',
    runtime: { image: 'img', env: { A: '1' }, source: 'detected', start: 'node server.js', port: 3000 },
    image: 'img',
    layers: ['0123456789abcdef0123456789abcdef', 'fedcba9876543210fedcba9876543210'],
    sizeMb: 3,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** The snapshots half of the Store contract: rows per owner, the quota under concurrency, order. */
export function storeSnapshotsContract(engine: string, make: () => Promise<StoreHarness>): void {
  describe(`Store contract (snapshots): ${engine}`, () => {
    let store: Store;
    let harness: StoreHarness;
    let others: Store[];
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

    it('keeps a snapshot whole and removes it once', async () => {
      const rec = snapshot({ owner: 'acme', name: 'before the refactor' });
      await store.insertSnapshot(rec, 50);
      expect(await store.getSnapshot(rec.id)).toEqual(rec);
      expect(await store.deleteSnapshot(rec.id)).toBe(true);
      expect(await store.deleteSnapshot(rec.id)).toBe(false);
      expect(await store.getSnapshot(rec.id)).toBeUndefined();
    });

    it('lists newest first, by owner, node and sandbox, in pages', async () => {
      const sandboxId = newSandboxId();
      const a1 = snapshot({ owner: 'a', sandboxId });
      const b1 = snapshot({ owner: 'b', node: 'n-2' });
      const a2 = snapshot({ owner: 'a' });
      const admin = snapshot();
      for (const r of [a1, b1, a2, admin]) await store.insertSnapshot(r, 50);
      const ids = (rows: SnapshotRecord[]) => rows.map((r) => r.id);
      expect(ids(await store.listSnapshots())).toEqual([admin.id, a2.id, b1.id, a1.id]);
      expect(ids(await store.listSnapshots({ owner: 'a' }))).toEqual([a2.id, a1.id]);
      expect(ids(await store.listSnapshots({ node: 'n-2' }))).toEqual([b1.id]);
      expect(ids(await store.listSnapshots({ sandboxId }))).toEqual([a1.id]);
      expect(ids(await store.listSnapshots({ owner: 'a', limit: 1 }))).toEqual([a2.id]);
      expect(ids(await store.listSnapshots({ owner: 'a', cursor: a2.id }))).toEqual([a1.id]);
    });

    it('refuses a snapshot past the owner quota, and not another owner or an ownerless one', async () => {
      await store.insertSnapshot(snapshot({ owner: 'a' }), 2);
      await store.insertSnapshot(snapshot({ owner: 'a' }), 2);
      const err = await store.insertSnapshot(snapshot({ owner: 'a' }), 2).catch((e: unknown) => e);
      expect(isPreviewdError(err) && err.code).toBe('snapshot_quota_exceeded');
      await store.insertSnapshot(snapshot({ owner: 'b' }), 2);
      await store.insertSnapshot(snapshot(), 2);
      await store.insertSnapshot(snapshot(), 2);
      await store.insertSnapshot(snapshot(), 2);
      expect(await store.listSnapshots({ owner: 'a' })).toHaveLength(2);
    });

    it('holds the quota when several connections insert at once', async () => {
      const stores = [store];
      for (let i = 0; i < 3; i++) {
        const s = await harness.openAnother();
        others.push(s);
        stores.push(s);
      }
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          stores[i % stores.length]!.insertSnapshot(snapshot({ owner: 'race' }), 5),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      for (const r of results) {
        if (r.status === 'rejected')
          expect(isPreviewdError(r.reason) && r.reason.code).toBe('snapshot_quota_exceeded');
      }
      expect(await store.listSnapshots({ owner: 'race' })).toHaveLength(5);
    });
  });
}
