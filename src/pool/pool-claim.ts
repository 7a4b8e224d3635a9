import { readFile } from 'node:fs/promises';
import { RUNTIME_MOUNT, SUPERVISOR_RUN_DIR } from '../providers/docker/app-supervisor.js';
import { SANDBOX_CA_PATH } from '../providers/docker/host-trust.js';
import { SANDBOX_HOME } from '../providers/docker/sandbox-home.js';
import type { SpawnSpec } from '../providers/provider.js';
import type { ClaimRequest, WarmPool } from './warm-pool.js';

/** Binds every pool container has already (the same for every sandbox, or rewritten in place). */
const SHARED_BY_POOL = new Set(['/etc/passwd', '/etc/group', SANDBOX_CA_PATH, RUNTIME_MOUNT]);
/** The container paths a slot can bind a sandbox's folders onto (and below). */
const SLOT_ROOTS = ['/workspace', SANDBOX_HOME, SUPERVISOR_RUN_DIR];

/**
 * Whether a warm pool container can serve the spec (docs/pool.md): its image is pooled, it runs
 * supervised in a plain container with the pool's resources, published on no loopback port and
 * labelled for no router (Traefik mode). (docker.capAdd gives a non-root sandbox nothing it can
 * use either way: no ambient capabilities; its app runs without any, as the waiter's does.)
 */
export function fitsPool(pool: WarmPool, spec: SpawnSpec, opts: { loopbackPorts: boolean }): boolean {
  const r = pool.resources;
  return (
    pool.hasImage(spec.image) &&
    (spec.isolation ?? 'container') === 'container' &&
    spec.supervise !== undefined &&
    spec.resources.cpus === r.cpus &&
    spec.resources.memoryMb === r.memoryMb &&
    spec.resources.pids === r.pids &&
    !opts.loopbackPorts &&
    Object.keys(spec.labels).length === 0
  );
}

/**
 * What a claim needs, from the binds (`source:target[:opts]`) and env (`NAME=value`) a normal
 * create would give the container; undefined when a bind has no place in a slot.
 */
export async function claimRequest(
  spec: SpawnSpec,
  binds: string[],
  env: string[],
): Promise<ClaimRequest | undefined> {
  const mounts: { source: string; target: string }[] = [];
  let passwd = '';
  let group = '';
  for (const bind of binds) {
    const [source, target] = bind.split(':') as [string, string];
    if (target === '/etc/passwd') passwd = await readFile(source, 'utf8');
    if (target === '/etc/group') group = await readFile(source, 'utf8');
    if (SHARED_BY_POOL.has(target)) continue;
    if (!SLOT_ROOTS.some((r) => target === r || target.startsWith(`${r}/`))) return undefined;
    mounts.push({ source, target });
  }
  if (!passwd || !group) return undefined;
  return {
    sandboxId: spec.sandboxId,
    image: spec.image,
    identity: spec.identity,
    env: Object.fromEntries(
      env.map((kv) => {
        const eq = kv.indexOf('=');
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    ),
    mounts,
    passwd,
    group,
  };
}
