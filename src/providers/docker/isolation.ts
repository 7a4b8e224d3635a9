import type Docker from 'dockerode';
import { PreviewdError } from '../../domain/errors.js';
import type { IsolationLevel } from '../../domain/isolation.js';

/** The runtime name previewd asks the engine for when `isolation.gvisorRuntime` is not set. */
export const DEFAULT_GVISOR_RUNTIME = 'runsc';
/** How long the engine's list of runtimes is trusted before it is asked again. */
const RUNTIMES_TTL_MS = 5_000;

export const GVISOR_HINT =
  'Install gVisor and register it with the engine: as root run scripts/ensure-runsc.sh (apt-get install runsc; a runtime "runsc" with "runtimeArgs": ["--network=host"] in /etc/docker/daemon.json; then kill -HUP the dockerd process), or set isolation.gvisorRuntime (PREVIEWD_ISOLATION_GVISOR_RUNTIME) to the name `docker info` lists under Runtimes.';

export function isolationUnavailable(runtime: string, why: string): PreviewdError {
  return new PreviewdError(
    'isolation_unavailable',
    `isolation "gvisor" is not available on this host: ${why} (runtime "${runtime}")`,
    { details: { isolation: 'gvisor', runtime } },
  );
}

/** The engine refused a container because it does not know the runtime it names. */
export function isUnknownRuntime(err: unknown): boolean {
  const e = err as { json?: { message?: string }; message?: string } | undefined;
  return /unknown runtime|invalid runtime name/i.test(e?.json?.message ?? e?.message ?? '');
}

/**
 * The isolation levels this engine offers: `container` always, `gvisor` when `docker info` lists the
 * configured runtime. Kept for a few seconds, so a create does not cost an extra `docker info`, and
 * a runtime registered later (dockerd reloads its runtimes on SIGHUP) is seen soon after.
 */
export class EngineRuntimes {
  private cached?: { at: number; levels: Promise<IsolationLevel[]> };

  constructor(
    private readonly docker: Docker,
    readonly gvisorRuntime: string = DEFAULT_GVISOR_RUNTIME,
  ) {}

  levels(): Promise<IsolationLevel[]> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > RUNTIMES_TTL_MS) {
      const levels = this.docker.info().then((info: { Runtimes?: Record<string, unknown> }) => {
        const names = Object.keys(info.Runtimes ?? {});
        return names.includes(this.gvisorRuntime)
          ? (['container', 'gvisor'] as IsolationLevel[])
          : (['container'] as IsolationLevel[]);
      });
      this.cached = { at: now, levels };
      levels.catch(() => {
        if (this.cached?.levels === levels) this.cached = undefined;
      });
    }
    return this.cached.levels;
  }

  /** Forget the list (the engine refused a runtime it listed a moment ago). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** Throws isolation_unavailable when the engine cannot run `level`. */
  async require(level: IsolationLevel): Promise<void> {
    if (level === 'container') return;
    if (!(await this.levels()).includes(level)) {
      throw isolationUnavailable(this.gvisorRuntime, '`docker info` does not list the runtime');
    }
  }

  /** The engine's `HostConfig.Runtime` for a level (undefined: the engine's default, runc). */
  runtimeFor(level: IsolationLevel | undefined): string | undefined {
    return level === 'gvisor' ? this.gvisorRuntime : undefined;
  }
}
