import type { Config } from '../config/schema.js';
import type { EgressPolicy } from '../domain/egress.js';
import type { StateChangeReason } from '../domain/events.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { CreateSandboxInput, SandboxView } from '../domain/schemas.js';
import type { TemplateCache } from '../runtimes/template-cache.js';
import type { TemplateName } from '../runtimes/templates.js';
import type { SandboxBase } from '../snapshots/snapshot-base.js';
import type { CreateSources } from '../sources/write-sources.js';
import type { SandboxFilter } from '../store/store.js';
import * as intents from './intents.js';
import * as runState from './run-state.js';
import { createSandbox } from './sandbox-create.js';
import * as settings from './sandbox-settings.js';
import { sandboxView } from './view.js';
import { type SandboxServiceDeps, SandboxWriter, type StillIdle } from './writer.js';

export type { SandboxServiceDeps, ServiceNode, StartGate, StillIdle } from './writer.js';

/**
 * The only place that changes a sandbox's state. Every transition is checked against the state
 * machine, persisted (compare-and-set on the previous state), then published on the event bus.
 *
 * The operations live in modules by what they hold: sandbox-create.ts (the create path and the
 * provisioning of a container), run-state.ts (start, stop, pause, resume, delete),
 * sandbox-settings.ts (network, expiry, ports, preview tokens, keepalive), intents.ts (what the
 * reconciler, reapers, admission and node watch ask), view.ts (the API's view); they all write
 * through this service's one SandboxWriter (writer.ts: the lock, the fence, `transition`).
 */
export class SandboxService {
  private readonly w: SandboxWriter;
  /** Installed dependencies of the Node templates, per host (src/runtimes/template-cache.ts). */
  readonly templates: TemplateCache;

  constructor(deps: SandboxServiceDeps) {
    this.w = new SandboxWriter(deps);
    this.templates = this.w.templates;
  }

  /** What a create route bounds its archive bodies by (maxBodyMb, sources). */
  get createLimits(): Pick<Config, 'maxBodyMb' | 'sources'> {
    return this.w.config;
  }

  view(record: SandboxRecord): SandboxView {
    return sandboxView(this.w.config, record);
  }

  get(id: string): Promise<SandboxRecord> {
    return this.w.get(id);
  }

  list(filter: SandboxFilter): Promise<SandboxRecord[]> {
    return this.w.store.listSandboxes(filter);
  }

  /** The node whose sandboxes this service settles (passes list only its rows). */
  get nodeId(): string {
    return this.w.node.id;
  }

  // The create path (sandbox-create.ts).

  /**
   * Writes the files, records the sandbox as `creating` and returns; the container is created and
   * started in the background (follow events or poll). `build`: previewd's own template build
   * (template-warm.ts), never reachable from the API.
   */
  create(
    input: CreateSandboxInput,
    opts: {
      owner?: string;
      build?: TemplateName;
      dependencyBuild?: string;
      base?: SandboxBase;
      sources?: CreateSources;
    } = {},
  ): Promise<SandboxRecord> {
    return createSandbox(this.w, this, input, opts);
  }

  /** Runs `work` under the sandbox's lock with its row as it is now (a snapshot freezes its files so). */
  exclusive<T>(id: string, work: (record: SandboxRecord) => Promise<T>): Promise<T> {
    return this.w.lock.run(id, async () => work(await this.w.get(id)));
  }

  // Running and asleep, and deletion (run-state.ts).

  start(id: string): Promise<SandboxRecord> {
    return runState.start(this.w, id);
  }

  /** Restarts the app of a running sandbox through its supervisor; a sandbox not running is started. */
  restartApp(id: string): Promise<SandboxRecord> {
    return runState.restartApp(this.w, id);
  }

  stop(id: string, reason?: StateChangeReason): Promise<SandboxRecord> {
    return runState.stop(this.w, id, reason);
  }

  pause(id: string, reason?: StateChangeReason): Promise<SandboxRecord> {
    return runState.pause(this.w, id, reason);
  }

  /** Running stays, paused is resumed, asleep by previewd is woken; otherwise sandbox_not_running. */
  ensureRunningForExec(id: string): Promise<SandboxRecord> {
    return runState.ensureRunningForExec(this.w, id);
  }

  /** Deletes the sandbox: its container, its workspace, then the row (kept as `deleted`). Idempotent on the engine side. */
  delete(id: string, reason?: StateChangeReason): Promise<void> {
    return runState.deleteSandbox(this.w, id, reason);
  }

  // What a client changes without a state change (sandbox-settings.ts).

  /** Sets the sandbox's own egress policy; in force for new connections once this returns. */
  setNetwork(id: string, policy: EgressPolicy): Promise<SandboxRecord> {
    return settings.setNetwork(this.w, id, policy);
  }

  /** Moves the expiry to `ttlSec` from now, at most lifecycle.maxTtlSec after creation. */
  extend(id: string, ttlSec: number): Promise<SandboxRecord> {
    return settings.extend(this.w, id, ttlSec);
  }

  /** Adds a port to the sandbox's previews; no restart (the edge reaches any port of the sandbox). */
  exposePort(id: string, port: number): Promise<SandboxRecord> {
    return settings.exposePort(this.w, id, port);
  }

  unexposePort(id: string, port: number): Promise<SandboxRecord> {
    return settings.unexposePort(this.w, id, port);
  }

  /** Revokes every preview token issued for the sandbox until now. */
  revokePreviewTokens(id: string): Promise<SandboxRecord> {
    return settings.revokePreviewTokens(this.w, id);
  }

  keepalive(id: string, untilSec?: number): Promise<SandboxRecord> {
    return settings.keepalive(this.w, id, untilSec);
  }

  // What the passes ask (intents.ts): each answers whether it acted.

  /** Whether an operation on the sandbox is under way (passes leave it for their next round). */
  isBusy(id: string): boolean {
    return this.w.lock.isHeld(id);
  }

  /** Expiry reaper: deletes the sandbox if it is past its expiresAt (checked under its lock). */
  expire(id: string): Promise<boolean> {
    return intents.expire(this.w, id);
  }

  /** Idle reaper: stops a running or paused sandbox (reason `idle`) if `stillIdle` says so under its lock. */
  stopIdle(id: string, stillIdle: StillIdle): Promise<boolean> {
    return intents.stopIdle(this.w, id, stillIdle);
  }

  /** Idle reaper: pauses a running sandbox (reason `idle`) if `stillIdle` says so under its lock. */
  pauseIdle(id: string, stillIdle: StillIdle): Promise<boolean> {
    return intents.pauseIdle(this.w, id, stillIdle);
  }

  /** Admission makes room: stops a running or paused sandbox with `reason` if `stillIdle` says so. */
  giveWay(id: string, stillIdle: StillIdle, reason: StateChangeReason = 'capacity'): Promise<boolean> {
    return intents.giveWay(this.w, id, stillIdle, reason);
  }

  /** Reconciler: a `starting` sandbox whose container runs becomes `running`. */
  adoptRunning(id: string): Promise<boolean> {
    return intents.adoptRunning(this.w, id);
  }

  /** Reconciler: finishes a create (or start) a previous process left in `creating` / `starting`. */
  finishCreate(id: string): Promise<boolean> {
    return intents.finishCreate(this.w, id);
  }

  /** Reconciler: finishes a stop a previous process left in `stopping`. */
  finishStop(id: string): Promise<boolean> {
    return intents.finishStop(this.w, id);
  }

  /** Reconciler: a running or paused sandbox whose container is gone goes to `error` (`sandbox_lost`). */
  markLost(id: string, reason: string): Promise<boolean> {
    return intents.markLost(this.w, id, reason);
  }

  /** Node watch: a sandbox of a node that was fenced off goes to `error` (`sandbox_lost`), once. */
  markNodeLost(id: string, reason: string): Promise<boolean> {
    return intents.markNodeLost(this.w, id, reason);
  }

  /** Reconciler: a running or paused sandbox whose container has exited becomes `stopped`. */
  settleExited(id: string): Promise<boolean> {
    return intents.settleExited(this.w, id);
  }

  /** Reconciler: a running sandbox whose container the engine shows paused becomes `paused`. */
  settlePaused(id: string): Promise<boolean> {
    return intents.settlePaused(this.w, id);
  }

  /** Reconciler: a paused sandbox whose container the engine shows running becomes `running`. */
  settleResumed(id: string): Promise<boolean> {
    return intents.settleResumed(this.w, id);
  }

  /** Reconciler: stops the container of a `stopped` sandbox that runs again (started from outside). */
  stopStray(id: string): Promise<boolean> {
    return intents.stopStray(this.w, id);
  }

  /** Reconciler: removes what the engine kept of a `deleted` sandbox. */
  removeDeleted(id: string): Promise<boolean> {
    return intents.removeDeleted(this.w, id);
  }

  /** Reconciler: removes a container or workspace no live row names; false when a live row exists by now. */
  removeOrphan(id: string): Promise<boolean> {
    return intents.removeOrphan(this.w, id);
  }

  /** Waits for background work (tests and graceful shutdown). */
  idle(): Promise<void> {
    return this.w.idle();
  }
}
