import type { Logger } from 'pino';
import { isPreviewdError, PreviewdError } from '../domain/errors.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { EdgeMetrics } from './edge-metrics.js';
import { probePort } from './port-probe.js';
import type { Route, RouteTable } from './route-table.js';
import type { SandboxDirectory, SandboxInstance } from './sandbox-directory.js';

export interface WakerDeps {
  service: SandboxService;
  routes: RouteTable;
  directory: SandboxDirectory;
  metrics: EdgeMetrics;
  log: Logger;
  /** How long a held request waits for the port (ms). */
  timeoutMs: number;
  /** Probe with an HTTP request instead of a TCP connect (published loopback ports). */
  httpProbe?: boolean;
}

const SLEEPING = new Set(['stopped', 'paused', 'stopping']);
const RETRY_AFTER = { 'Retry-After': '5' };
/** How many of the app's last log lines the starting and crashed pages show. */
export const PAGE_LOG_LINES = 20;
const PASS_THROUGH = new Set(['sandbox_not_found', 'capacity_exhausted', 'quota_exceeded']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The app_crashed error for a sandbox whose app exited, with its exit code and last log lines. */
export async function crashedError(
  directory: SandboxDirectory,
  sandboxId: string,
  exitCode: number | undefined,
): Promise<PreviewdError> {
  const logs = await directory.lastLogLines(sandboxId, PAGE_LOG_LINES);
  return new PreviewdError(
    'app_crashed',
    `the app of sandbox ${sandboxId} exited${exitCode === undefined ? '' : ` with code ${exitCode}`}`,
    { details: { exitCode, logs } },
  );
}

/**
 * Whether the app is down while the sandbox should serve: its container exited, or (the container
 * staying up) its supervisor reports a crash (a restart pending or given up). Returns the exit code.
 */
export function appDown(
  directory: SandboxDirectory,
  info: Pick<SandboxInstance, 'sandboxId' | 'status' | 'exitCode'>,
): Promise<{ exitCode?: number } | undefined> | { exitCode?: number } | undefined {
  if (info.status === 'exited' || info.status === 'dead') return { exitCode: info.exitCode };
  if (info.status !== 'running') return undefined;
  return directory
    .appStatus(info.sandboxId)
    .catch(() => undefined)
    .then((app) =>
      app && (app.state === 'crashed' || app.state === 'failed') ? { exitCode: app.exitCode } : undefined,
    );
}

/**
 * Wakes sleeping sandboxes for the edge: one start per sandbox however many requests ask (single
 * flight), then waits until the requested port accepts connections, bounded by the timeout.
 */
export class Waker {
  private readonly wakes = new Map<string, Promise<void>>();
  private readonly readiness = new Map<string, Promise<{ host: string; port: number }>>();
  private closed = false;

  constructor(private readonly deps: WakerDeps) {}

  /** Ends every wait (shutdown): held requests get app_not_ready. */
  close(): void {
    this.closed = true;
  }

  /** Starts the sandbox (stopped or paused); concurrent callers share one start. */
  wake(sandboxId: string): Promise<void> {
    const pending = this.wakes.get(sandboxId);
    if (pending) return pending;
    const started = performance.now();
    const work = this.deps.service
      .start(sandboxId)
      .then(() => {
        this.deps.metrics.wakes.inc({ result: 'ok' });
        this.deps.metrics.wakeDuration.observe((performance.now() - started) / 1000);
      })
      .catch((err: unknown) => {
        this.deps.metrics.wakes.inc({ result: 'failed' });
        this.deps.log.warn({ err, sandboxId }, 'wake failed');
        // Not found, no room, over quota: the client gets that answer, not a generic wake failure.
        if (isPreviewdError(err) && PASS_THROUGH.has(err.code)) throw err;
        throw new PreviewdError(
          'wake_failed',
          `sandbox ${sandboxId} could not be started: ${(err as Error).message}`,
          { cause: err, headers: RETRY_AFTER },
        );
      })
      .finally(() => this.wakes.delete(sandboxId));
    this.wakes.set(sandboxId, work);
    return work;
  }

  /**
   * Wakes the sandbox if needed and resolves with the address of `port` once it accepts
   * connections. Throws app_crashed when the app exits meanwhile, app_not_ready on timeout.
   */
  ready(sandboxId: string, port: number): Promise<{ host: string; port: number }> {
    const key = `${sandboxId}:${port}`;
    const pending = this.readiness.get(key);
    if (pending) return pending;
    const work = this.waitReady(sandboxId, port).finally(() => this.readiness.delete(key));
    this.readiness.set(key, work);
    return work;
  }

  private async waitReady(sandboxId: string, port: number): Promise<{ host: string; port: number }> {
    const { routes, directory } = this.deps;
    const deadline = Date.now() + this.deps.timeoutMs;
    let woke = false;
    let lastInspect = 0;
    while (Date.now() < deadline && !this.closed) {
      const route: Route | undefined = await routes.get(sandboxId);
      if (!route) throw new PreviewdError('sandbox_not_found', `sandbox ${sandboxId} does not exist`);
      if (route.state === 'error') throw sandboxError(route);
      if (SLEEPING.has(route.state)) {
        if (woke && route.error?.code === 'app_exited') {
          const info = await directory.instance(sandboxId);
          throw await crashedError(directory, sandboxId, info.exitCode);
        }
        woke = true;
        await this.wake(sandboxId);
        continue;
      }
      if (route.state === 'running') {
        const addr = await routes.address(route, port).catch((err: unknown) => {
          // Only "no address yet" is worth waiting for; a port that can never answer is not.
          if (isPreviewdError(err) && err.code === 'port_not_exposed') throw err;
          return undefined;
        });
        if (addr && (await probePort(addr.host, addr.port, 250, { http: this.deps.httpProbe ?? false }))) {
          route.ready.add(port);
          return addr;
        }
        if (Date.now() - lastInspect > 300) {
          lastInspect = Date.now();
          const info = await directory.instance(sandboxId);
          const down = await appDown(directory, info);
          if (down) throw await crashedError(directory, sandboxId, down.exitCode);
          if (!addr && info.ip) route.addresses.clear();
        }
      }
      await sleep(route.state === 'running' ? 15 : 50);
    }
    throw new PreviewdError(
      'app_not_ready',
      `port ${port} of sandbox ${sandboxId} did not answer within ${Math.round(this.deps.timeoutMs / 1000)} s`,
      { headers: RETRY_AFTER },
    );
  }
}

export function sandboxError(route: Route): PreviewdError {
  return new PreviewdError(
    'sandbox_error',
    `sandbox ${route.id} is in state error${route.error ? `: ${route.error.message}` : ''}`,
    { details: { error: route.error }, headers: RETRY_AFTER },
  );
}
