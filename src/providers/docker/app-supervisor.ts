import { existsSync } from 'node:fs';
import { chown, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPreviewdError } from '../../domain/errors.js';
import type { AppStatus, SpawnSpec } from '../provider.js';
import { readRegularFileIfExists } from '../safe-read.js';

/** Where the supervisor script is mounted (read-only) inside every supervised container. */
export const SUPERVISOR_PATH = '/opt/previewd/supervisor.sh';
/** Where the supervisor writes its status: a host directory beside the workspace, not in it. */
export const SUPERVISOR_RUN_DIR = '/run/previewd';

/** Where the repository's runtime/ folder is mounted (read-only): the supervisor, the static server. */
export const RUNTIME_MOUNT = '/opt/previewd';

/**
 * The repository's runtime/ folder: supervisor.sh (POSIX sh: the node and python images both run
 * it) and static-server.mjs.
 */
export function runtimeDir(): string {
  const candidates = [fileURLToPath(new URL('../../../runtime', import.meta.url)), resolve('runtime')];
  return candidates.find((p) => existsSync(p)) ?? (candidates[0] as string);
}

/**
 * The host directory mounted at SUPERVISOR_RUN_DIR: `<dataDir>/sandboxes/<id>/disk/run`, on the
 * sandbox's disk (src/workspaces/sandbox-storage.ts), so what it writes there counts against diskMb.
 */
export function runDir(dataDir: string, sandboxId: string): string {
  return resolve(dataDir, 'sandboxes', sandboxId, 'disk', 'run');
}

/** Binds, command and environment that run a spec's app under the supervisor. */
export async function supervisedContainer(
  spec: SpawnSpec & { supervise: NonNullable<SpawnSpec['supervise']> },
  dataDir: string,
  owner: { uid: number; gid: number },
): Promise<{ binds: string[]; cmd: string[]; env: Record<string, string> }> {
  const run = runDir(dataDir, spec.sandboxId);
  await mkdir(run, { recursive: true, mode: 0o755 });
  await chown(run, owner.uid, owner.gid);
  const env: Record<string, string> = {
    PREVIEWD_START: spec.supervise.start,
    PREVIEWD_APP_RESTARTS: String(spec.supervise.maxRestarts),
    PREVIEWD_RUN_DIR: SUPERVISOR_RUN_DIR,
  };
  if (spec.supervise.install) env.PREVIEWD_INSTALL = spec.supervise.install;
  return {
    binds: [`${runtimeDir()}:${RUNTIME_MOUNT}:ro`, `${run}:${SUPERVISOR_RUN_DIR}`],
    cmd: ['sh', SUPERVISOR_PATH],
    env,
  };
}

const STATES = new Set<AppStatus['state']>(['installing', 'running', 'crashed', 'failed', 'stopped']);

/** Parses the supervisor's status file (key=value lines); undefined when absent or unreadable. */
export function parseAppStatus(text: string): AppStatus | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const state = fields.get('state') as AppStatus['state'] | undefined;
  if (!state || !STATES.has(state)) return undefined;
  const int = (key: string) => {
    const v = fields.get(key);
    return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined;
  };
  const status: AppStatus = {
    state,
    restarts: int('restarts') ?? 0,
    crashes: int('crashes') ?? 0,
    maxRestarts: int('maxRestarts') ?? 0,
    updatedAt: new Date((int('updatedAt') ?? 0) * 1000).toISOString(),
  };
  const exitCode = int('exitCode');
  if (exitCode !== undefined) status.exitCode = exitCode;
  return status;
}

/** The status file holds a few short lines; more is not the supervisor's doing. */
const STATUS_MAX_BYTES = 64 * 1024;

/**
 * The supervisor's status. The run directory is writable from inside the sandbox, so the file is
 * read with safe-read.ts: a FIFO, link or oversized file there fails this sandbox's status with
 * `not_a_regular_file` / `file_too_large` instead of blocking previewd. Absent: undefined.
 */
export async function readAppStatus(dataDir: string, sandboxId: string): Promise<AppStatus | undefined> {
  const raw = await readRegularFileIfExists(join(runDir(dataDir, sandboxId), 'status'), {
    maxBytes: STATUS_MAX_BYTES,
    label: `${SUPERVISOR_RUN_DIR}/status`,
  }).catch((err: unknown) => {
    if (isPreviewdError(err)) throw err;
    return undefined; // unreadable for another reason (the directory went away): as before, no status
  });
  return raw === undefined ? undefined : parseAppStatus(raw.toString('utf8'));
}
