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

  /**
   * What a gVisor container needs on top of the usual HostConfig. The runtime, and the process
   * bound moved: under runsc the container's pids cgroup holds the sentry's and gofer's own
   * threads and, on the ptrace platform, a host stub task for each task of the sandbox — about
   * 200 for an idle app with a few execs where runc counts 11, about 1 600 for 200 sleeping
   * processes — and the sentry dies when it cannot make a thread (the whole sandbox exits with
   * status 2). So the sandbox's own processes are bounded inside gVisor by RLIMIT_NPROC (its kernel
   * enforces it: fork fails with EAGAIN, the sandbox keeps running; the uid is the sandbox's alone
   * there), and the cgroup keeps a host-side bound with room for the sentry: pids × 10 + 512.
   */
  gvisorHostConfig(pids: number): {
    Runtime: string;
    PidsLimit: number;
    Ulimits: { Name: string; Soft: number; Hard: number }[];
  } {
    return {
      Runtime: this.gvisorRuntime,
      PidsLimit: gvisorHostPids(pids),
      Ulimits: [{ Name: 'nproc', Soft: pids, Hard: pids }],
    };
  }
}

/** The host tasks a gVisor sandbox of `pids` processes may hold (sentry, gofer, stubs). */
export function gvisorHostPids(pids: number): number {
  return pids * 10 + 512;
}
