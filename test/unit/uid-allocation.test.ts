import { describe, expect, it } from 'vitest';
import { PreviewdError } from '../../src/domain/errors.js';
import { allocateIdentity } from '../../src/sandboxes/identity.js';
import { SqliteStore } from '../../src/store/sqlite.js';

async function store(): Promise<SqliteStore> {
  const s = new SqliteStore(':memory:');
  await s.migrate();
  return s;
}

describe('sandbox uids (real SQLite store)', () => {
  it('hands each sandbox its own uid, the same one again when asked twice', async () => {
    const s = await store();
    const range = { start: 200_000, size: 4 };
    const a = await s.allocateUid('a', range);
    const b = await s.allocateUid('b', range);
    expect(a).toBe(200_000);
    expect(b).toBe(200_001);
    expect(await s.allocateUid('a', range)).toBe(a);
  });

  it('goes round the range: a freed uid comes back only after the others', async () => {
    const s = await store();
    const range = { start: 300_000, size: 3 };
    const a = await s.allocateUid('a', range);
    await s.allocateUid('b', range);
    await s.releaseUid('a');
    // Not a's uid, although it is free: the cursor is past it.
    expect(await s.allocateUid('c', range)).toBe(300_002);
    // Now only a's old uid is left.
    expect(await s.allocateUid('d', range)).toBe(a);
  });

  it('refuses with uid_range_exhausted when every uid is held, deleted rows included until released or purged', async () => {
    const s = await store();
    const range = { start: 400_000, size: 2 };
    await s.allocateUid('a', range);
    await s.allocateUid('b', range);
    const err = await s.allocateUid('c', range).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreviewdError);
    expect((err as PreviewdError).code).toBe('uid_range_exhausted');
    await s.purgeSandbox('b');
    expect(await s.allocateUid('c', range)).toBe(400_001);
  });

  it('docker.sandboxUser is one uid for every sandbox; unset, the range is used', async () => {
    const s = await store();
    const fixed = { docker: { sandboxUser: '1234:5678', uidRange: { start: 500_000, size: 10 } } };
    expect(await allocateIdentity(fixed as never, s, 'a')).toEqual({ uid: 1234, gid: 5678 });
    const ranged = { docker: { uidRange: { start: 500_000, size: 10 } } };
    expect(await allocateIdentity(ranged as never, s, 'b')).toEqual({ uid: 500_000, gid: 500_000 });
    expect(await allocateIdentity(ranged as never, s, 'c')).toEqual({ uid: 500_001, gid: 500_001 });
  });
});
