import type { Config } from '../config/schema.js';
import { LEGACY_IDENTITY, type SandboxIdentity, type SandboxRecord } from '../domain/sandbox.js';
import type { Store } from '../store/store.js';

/**
 * Each sandbox's own uid/gid on the host: its processes run as it (the container's `User`), its
 * workspace, home and supervisor folder belong to it, and no other sandbox shares it, so one
 * sandbox's processes cannot read another's files through any path.
 *
 * Allocation: a uid of `docker.uidRange` from the store (`Store.allocateUid`), round-robin from
 * where the last one stopped and never one another sandbox holds; the gid is the same number. The
 * uid is written on the sandbox's row, so restarts, the reconciler and re-creates of the container
 * keep it. It is held until the sandbox's container and files are gone (its delete's destroy
 * succeeded, or the row is purged); the round-robin cursor hands it out again only after the rest
 * of the range, so no freshly freed uid meets a file of its former sandbox that outlived it.
 *
 * `docker.sandboxUser`, when set, is the operator's explicit choice of one uid:gid for every
 * sandbox (the shared user of before). Rows made before identities existed have none and keep
 * running as LEGACY_IDENTITY, the uid their workspace was made with.
 */

/** Parses `uid[:gid]` (the gid defaults to the uid). */
export function parseSandboxUser(user: string): SandboxIdentity {
  const [uid, gid] = user.split(':').map(Number);
  if (!Number.isInteger(uid) || (gid !== undefined && !Number.isInteger(gid))) {
    throw new Error(`docker.sandboxUser must be numeric uid:gid, got "${user}"`);
  }
  return { uid: uid!, gid: gid ?? uid! };
}

/** The identity a sandbox's row says it has (LEGACY_IDENTITY for rows made before). */
export function identityOf(record: Pick<SandboxRecord, 'identity'>): SandboxIdentity {
  return record.identity ?? LEGACY_IDENTITY;
}

/** Gives a new sandbox its identity: the configured sandboxUser, or a uid of its own from the store. */
export async function allocateIdentity(
  config: Pick<Config, 'docker'>,
  store: Pick<Store, 'allocateUid'>,
  sandboxId: string,
): Promise<SandboxIdentity> {
  if (config.docker.sandboxUser) return parseSandboxUser(config.docker.sandboxUser);
  const uid = await store.allocateUid(sandboxId, config.docker.uidRange);
  return { uid, gid: uid };
}
