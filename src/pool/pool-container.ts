import type Docker from 'dockerode';
import type { Resources } from '../domain/schemas.js';
import { RUNTIME_MOUNT, runtimeDir } from '../providers/docker/app-supervisor.js';
import { SANDBOX_CA_PATH } from '../providers/docker/host-trust.js';
import { LABEL_INSTANCE, LABEL_MANAGED, LABEL_POOL, POOL_NAME_PREFIX } from '../providers/docker/labels.js';
import { type SlotPaths, slotBinds } from './pool-slots.js';

/** What the provider lends the pool to make containers like its own. */
export interface PoolContainerContext {
  docker: Docker;
  /** This previewd's instance label (src/providers/docker/labels.ts). */
  instance: string;
  /** The sandbox network's id. */
  networkId(): Promise<string>;
  caBundle?: string;
  /** Environment every sandbox gets whoever it is (HOME, proxy, CA): nothing of one sandbox. */
  baseEnv: Record<string, string>;
}

export const WAITER_PATH = `${RUNTIME_MOUNT}/pool-waiter.sh`;

export function poolContainerName(instance: string, slot: string): string {
  return `${POOL_NAME_PREFIX}${instance}-${slot}`;
}

/** The /tmp a sandbox of these resources gets (src/workspaces/sandbox-storage.ts containerMounts). */
function tmpfsFor(memoryMb: number): Record<string, string> {
  const tmpMb = Math.max(16, Math.min(1024, Math.floor(memoryMb / 4)));
  return { '/tmp': `rw,nosuid,nodev,size=${tmpMb}m,mode=1777` };
}

/**
 * Creates and starts a warm container for a slot: the sandbox network, an init, a read-only
 * rootfs, no-new-privileges, every capability dropped but CAP_SETUID/CAP_SETGID (the waiter's one
 * change of user, runtime/pool-waiter.sh), the resources of `resources.default`. Returns its id.
 */
export async function createPoolContainer(
  ctx: PoolContainerContext,
  opts: { image: string; slot: string; paths: SlotPaths; resources: Resources },
): Promise<string> {
  const binds = [...slotBinds(opts.paths), `${runtimeDir()}:${RUNTIME_MOUNT}:ro`];
  if (ctx.caBundle) binds.push(`${ctx.caBundle}:${SANDBOX_CA_PATH}:ro`);
  const memory = opts.resources.memoryMb * 1024 * 1024;
  const container = await ctx.docker.createContainer({
    name: poolContainerName(ctx.instance, opts.slot),
    Image: opts.image,
    Cmd: ['sh', WAITER_PATH],
    Env: Object.entries(ctx.baseEnv).map(([k, v]) => `${k}=${v}`),
    User: '0:0',
    WorkingDir: '/workspace',
    Hostname: 'sandbox',
    Labels: { [LABEL_MANAGED]: 'true', [LABEL_INSTANCE]: ctx.instance, [LABEL_POOL]: opts.slot },
    StopSignal: 'SIGTERM',
    HostConfig: {
      Init: true,
      Binds: binds,
      ReadonlyRootfs: true,
      Tmpfs: tmpfsFor(opts.resources.memoryMb),
      NetworkMode: await ctx.networkId(),
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(opts.resources.cpus * 1e9),
      PidsLimit: opts.resources.pids,
      SecurityOpt: ['no-new-privileges:true'],
      CapDrop: ['ALL'],
      CapAdd: ['SETUID', 'SETGID'],
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
    },
  });
  await container.start();
  return container.id;
}
