import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newSandboxId } from '../../src/domain/ids.js';
import type { Store } from '../../src/store/store.js';
import { storeClusterContract } from './store-cluster.contract.js';
import { type StoreHarness, sandboxRecord } from './store-fixtures.js';
import { storeSnapshotsContract } from './store-snapshots.contract.js';
import { storeWebhooksContract } from './store-webhooks.contract.js';

export { type StoreHarness, sandboxRecord } from './store-fixtures.js';

/** The Store contract, written once against the interface; every engine runs it. */
export function storeContract(engine: string, make: () => Promise<StoreHarness>): void {
  describe(`Store contract: ${engine}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = (await make()).store;
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    it('migrations are idempotent', async () => {
      await store.migrate();
      await store.ping();
    });

    it('round-trips a sandbox record exactly', async () => {
      const rec = sandboxRecord();
      await store.insertSandbox(rec);
      expect(await store.getSandbox(rec.id)).toEqual({ ...rec, node: 'local' });
      const placed = sandboxRecord({ node: 'n-2' });
      await store.insertSandbox(placed);
      expect(await store.getSandbox(placed.id)).toEqual(placed);
      expect(await store.getSandbox(newSandboxId())).toBeUndefined();
    });

    it('refuses a second row with the same id', async () => {
      const rec = sandboxRecord();
      await store.insertSandbox(rec);
      await expect(store.insertSandbox(rec)).rejects.toThrow();
    });

    it('updates with compare-and-set on the state', async () => {
      const rec = sandboxRecord();
      await store.insertSandbox(rec);
      expect(await store.updateSandbox(rec.id, { state: 'running' }, ['stopped'])).toBeUndefined();
      expect((await store.getSandbox(rec.id))?.state).toBe('creating');
      const next = await store.updateSandbox(
        rec.id,
        { state: 'starting', error: { code: 'x', message: 'y' } },
        ['creating'],
      );
      expect(next?.state).toBe('starting');
      expect(next?.error).toEqual({ code: 'x', message: 'y' });
      const cleared = await store.updateSandbox(rec.id, { error: undefined });
      expect(cleared?.error).toBeUndefined();
      expect((await store.getSandbox(rec.id))?.error).toBeUndefined();
      expect(await store.updateSandbox(newSandboxId(), { state: 'running' })).toBeUndefined();
    });

    it('hides deleted rows unless asked, and purges', async () => {
      const rec = sandboxRecord({ state: 'deleted' });
      await store.insertSandbox(rec);
      expect(await store.getSandbox(rec.id)).toBeUndefined();
      expect((await store.getSandbox(rec.id, { includeDeleted: true }))?.id).toBe(rec.id);
      expect(await store.listSandboxes()).toEqual([]);
      expect((await store.listSandboxes({ includeDeleted: true })).map((r) => r.id)).toEqual([rec.id]);
      await store.purgeSandbox(rec.id);
      expect(await store.getSandbox(rec.id, { includeDeleted: true })).toBeUndefined();
    });

    it('lists newest first, filters by state and labels, and pages by cursor', async () => {
      const a = sandboxRecord({ state: 'running', labels: { team: 'web', env: 'pr-1' } });
      const b = sandboxRecord({ state: 'stopped', labels: { team: 'web' } });
      const c = sandboxRecord({ state: 'running', labels: { team: 'api' } });
      for (const r of [a, b, c]) await store.insertSandbox(r);
      expect((await store.listSandboxes()).map((r) => r.id)).toEqual([c.id, b.id, a.id]);
      expect((await store.listSandboxes({ state: 'running' })).map((r) => r.id)).toEqual([c.id, a.id]);
      expect((await store.listSandboxes({ states: ['stopped'] })).map((r) => r.id)).toEqual([b.id]);
      expect((await store.listSandboxes({ labels: { team: 'web' } })).map((r) => r.id)).toEqual([b.id, a.id]);
      expect((await store.listSandboxes({ labels: { team: 'web', env: 'pr-1' } })).map((r) => r.id)).toEqual([
        a.id,
      ]);
      expect(await store.listSandboxes({ labels: { 'x"; DROP TABLE sandboxes; --': 'y' } })).toEqual([]);
      const page1 = await store.listSandboxes({ limit: 2 });
      expect(page1.map((r) => r.id)).toEqual([c.id, b.id]);
      const page2 = await store.listSandboxes({ limit: 2, cursor: page1[1]!.id });
      expect(page2.map((r) => r.id)).toEqual([a.id]);
    });

    it('appends events with increasing ids and lists them after an id', async () => {
      const id = newSandboxId();
      const e1 = await store.appendEvent({ type: 'sandbox.created', sandboxId: id, data: { image: 'i' } });
      const e2 = await store.appendEvent({
        type: 'sandbox.state',
        sandboxId: id,
        data: { from: 'creating', to: 'starting' },
      });
      const other = await store.appendEvent({ type: 'sandbox.deleted', sandboxId: newSandboxId(), data: {} });
      expect(e2.id).toBeGreaterThan(e1.id);
      expect((await store.listEvents({})).map((e) => e.id)).toEqual([e1.id, e2.id, other.id]);
      expect((await store.listEvents({ afterId: e1.id })).map((e) => e.id)).toEqual([e2.id, other.id]);
      const mine = await store.listEvents({ sandboxId: id });
      expect(mine).toHaveLength(2);
      expect(mine[1]).toMatchObject({
        type: 'sandbox.state',
        sandboxId: id,
        data: { from: 'creating', to: 'starting' },
      });
      expect(typeof mine[1]!.at).toBe('string');
    });

    it("keeps API keys and sessions; a revoke ends the key's sessions in one go", async () => {
      const key = {
        id: 'key_1',
        hash: 'h1',
        prefix: 'pd_1',
        role: 'tenant' as const,
        owner: 'acme',
        name: 'ci',
        createdAt: '2030-01-01T00:00:00.000Z',
      };
      await store.insertApiKey(key);
      await store.insertApiKey({
        id: 'key_0',
        hash: 'h0',
        prefix: 'pd_0',
        role: 'admin',
        createdAt: key.createdAt,
      });
      expect(await store.getApiKey('key_1')).toEqual(key);
      expect(await store.getApiKeyByHash('h1')).toEqual(key);
      expect((await store.listApiKeys()).map((k) => k.id)).toEqual(['key_0', 'key_1']);
      const session = {
        hash: 's1',
        keyId: 'key_1',
        createdAt: key.createdAt,
        expiresAt: '2030-01-02T00:00:00.000Z',
      };
      await store.insertSession(session);
      await store.insertSession({ ...session, hash: 's2', expiresAt: '2030-01-01T01:00:00.000Z' });
      expect(await store.getSession('s1')).toEqual(session);
      expect(await store.deleteExpiredSessions('2030-01-01T02:00:00.000Z')).toBe(1);
      expect(await store.getSession('s2')).toBeUndefined();
      const revoked = await store.revokeApiKey('key_1', '2030-01-01T03:00:00.000Z');
      expect(revoked).toEqual({ ...key, revokedAt: '2030-01-01T03:00:00.000Z' });
      expect(await store.getSession('s1')).toBeUndefined();
      expect((await store.revokeApiKey('key_1', '2030-01-09T00:00:00.000Z'))?.revokedAt).toBe(
        revoked?.revokedAt,
      );
      await store.insertSession({ ...session, hash: 's3', keyId: 'key_0' });
      await store.deleteSession('s3');
      expect(await store.getSession('s3')).toBeUndefined();
      expect(await store.getApiKey('key_9')).toBeUndefined();
    });
  });
  storeClusterContract(engine, make);
  storeWebhooksContract(engine, make);
  storeSnapshotsContract(engine, make);
}
