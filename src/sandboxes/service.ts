import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { type Clock, isoAt, systemClock } from '../domain/clock.js';
import { type EgressPolicy, effectivePolicy } from '../domain/egress.js';
import { PreviewdError } from '../domain/errors.js';
import type { EventPayloads, StateChangeReason } from '../domain/events.js';
import { newSandboxId } from '../domain/ids.js';
import { type Fence, LOCAL_NODE } from '../domain/node.js';
import { nowIso, type SandboxPatch, type SandboxRecord } from '../domain/sandbox.js';
import type { CreateSandboxInput, Resources, RuntimePlan, SandboxView } from '../domain/schemas.js';
import { assertTransition, type SandboxState } from '../domain/state-machine.js';
import { devServerEnv } from '../edge/dev-server-env.js';
import { previewUrl } from '../edge/preview-urls.js';
import type { EventBus } from '../events/bus.js';
import type { SandboxProvider } from '../providers/provider.js';
import { commandFor, planFromInput, superviseFor } from '../runtimes/plan.js';
import { TemplateCache } from '../runtimes/template-cache.js';
import { warmAfterInstall } from '../runtimes/template-warm.js';
import { nodeTemplates, type TemplateName } from '../runtimes/templates.js';
import type { SandboxFilter, Store } from '../store/store.js';
import { traefikLabels } from '../traefik/labels.js';
import { checkCreate } from './create-policy.js';
import { allocateIdentity, identityOf } from './identity.js';
import { KeyedLock } from './keyed-lock.js';

/**
 * Decides whether one more sandbox may start on this host (capacity, quotas), making room first
 * when it can (src/sandboxes/admission.ts). Throws capacity_exhausted or quota_exceeded.
 */
export interface StartGate {
  admit(request: { sandboxId?: string; owner?: string; kind: 'create' | 'start' }): Promise<void>;
}

export interface SandboxServiceDeps {
  store: Store;
  provider: SandboxProvider;
  bus: EventBus;
  config: Config;
  log: Logger;
  /** Capacity admission and quotas (none: every start is admitted). */
  gate?: StartGate;
  /**
   * Called before a running sandbox is paused or stopped, once it is settled that it will be: the
   * edge's front stops routing to it here, so no request reaches a frozen container.
   */
  beforeSleep?: (sandboxId: string) => Promise<void>;
  /**
   * Called once a revocation of preview tokens is published, before the revoke is answered: the
   * edge's front has dropped the sandbox's routes when it resolves (app.ts).
   */
  afterTokensRevoked?: (sandboxId: string) => Promise<void>;
  /** Puts the egress rules in force for the sandbox's new policy (app.ts: the containment's refresh). */
  onNetworkChange?: (sandboxId: string) => Promise<void>;
  /** Where every lifecycle time comes from (default: the system's). */
  clock?: Clock;
  /**
   * This node: its id is stamped on every row it inserts, and its sandboxes are the only ones
   * its passes touch; every write carries `fence()` (default: `local`, no fence).
   */
  node?: ServiceNode;
}

/** Who writes: src/cluster/cluster.ts's NodeIdentity has this shape. */
export interface ServiceNode {
  id: string;
  /** Undefined outside a cluster; throws node_fenced once this node's lease has lapsed. */
  fence(): Fence | undefined;
}

const LOCAL: ServiceNode = { id: LOCAL_NODE, fence: () => undefined };

/** Whether a sandbox may be stopped or paused now; asked again under the sandbox's lock. */
export type StillIdle = (current: SandboxRecord) => boolean;

/** The disk of a sandbox when the configuration's resources.default names none. */
const DEFAULT_DISK_MB = 1024;
/** The disk of previewd's template builds (next's node_modules is about 700 MB). */
const BUILD_DISK_MB = 4096;

/** States with a container the engine runs (or holds frozen). */
function isAwake(state: SandboxState): boolean {
  return state === 'running' || state === 'paused';
}

function errorInfo(err: unknown): { code: string; message: string } {
  if (err instanceof PreviewdError) return { code: err.code, message: err.message };
  return { code: 'internal', message: (err as Error)?.message ?? String(err) };
}

/**
 * The only place that changes a sandbox's state. Every transition is checked against the state
 * machine, persisted (compare-and-set on the previous state), then published on the event bus.
 */
export class SandboxService {
  private readonly lock = new KeyedLock();
  private readonly background = new Set<Promise<unknown>>();
  private readonly store: Store;
  private readonly provider: SandboxProvider;
  private readonly bus: EventBus;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly gate?: StartGate;
  private readonly beforeSleep?: (sandboxId: string) => Promise<void>;
  private readonly afterTokensRevoked?: (sandboxId: string) => Promise<void>;
  private readonly onNetworkChange?: (sandboxId: string) => Promise<void>;
  private readonly clock: Clock;
  private readonly node: ServiceNode;
  /** Installed dependencies of the Node templates, per host (src/runtimes/template-cache.ts). */
  readonly templates: TemplateCache;

  constructor(deps: SandboxServiceDeps) {
    this.store = deps.store;
    this.provider = deps.provider;
    this.bus = deps.bus;
    this.config = deps.config;
    this.log = deps.log;
    this.gate = deps.gate;
    this.beforeSleep = deps.beforeSleep;
    this.afterTokensRevoked = deps.afterTokensRevoked;
    this.onNetworkChange = deps.onNetworkChange;
    this.clock = deps.clock ?? systemClock;
    this.node = deps.node ?? LOCAL;
    this.templates = new TemplateCache({ config: deps.config, log: deps.log });
  }

  view(record: SandboxRecord): SandboxView {
    const { env: _env, containerId: _c, deletedAt: _d, ...rest } = record;
    return {
      ...rest,
      node: record.node ?? LOCAL_NODE,
      isolation: record.isolation ?? 'container',
      network: effectivePolicy(record.network, record.owner, this.config.network),
      previews: record.ports.map((port) => ({ port, url: previewUrl(this.config, record.id, port) })),
    };
  }

  async get(id: string): Promise<SandboxRecord> {
    const record = await this.store.getSandbox(id);
    if (!record) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
    return record;
  }

  /**
   * Sets the sandbox's own egress policy; running or not, it is in force for new connections once
   * this returns (connections already open keep going).
   */
  async setNetwork(id: string, policy: EgressPolicy): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      await this.get(id);
      const next = await this.store.updateSandbox(
        id,
        { network: policy, updatedAt: this.nowIso() },
        undefined,
        this.fenced(),
      );
      if (!next) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
      await this.onNetworkChange?.(id);
      return next;
    });
  }

  list(filter: SandboxFilter): Promise<SandboxRecord[]> {
    return this.store.listSandboxes(filter);
  }

  private resources(requested: Partial<Resources> | undefined): Resources {
    const merged = { ...this.config.resources.default, ...requested };
    const max = this.config.resources.max;
    merged.diskMb ??= Math.min(DEFAULT_DISK_MB, max.diskMb ?? DEFAULT_DISK_MB);
    for (const key of ['cpus', 'memoryMb', 'pids', 'diskMb'] as const) {
      const limit = max[key];
      if (limit !== undefined && (merged[key] ?? 0) > limit) {
        throw new PreviewdError(
          'resource_limit',
          `resources.${key} ${merged[key]} is above this host's maximum ${limit}`,
          {
            details: { field: `resources.${key}`, max: limit },
          },
        );
      }
    }
    return merged;
  }

  /**
   * Writes the files, records the sandbox as `creating` and returns; the container is created and
   * started in the background (follow events or poll). Files are on disk before the row exists,
   * so a crash never leaves a row whose files are half written.
   *
   * `build`: previewd's own throwaway sandbox building a template's dependency layer
   * (template-warm.ts): the bare template, the host's download caches writable, a 4 GB disk.
   * Never reachable from the API.
   */
  async create(
    input: CreateSandboxInput,
    opts: { owner?: string; build?: TemplateName } = {},
  ): Promise<SandboxRecord> {
    const resources = this.resources(
      opts.build
        ? {
            ...input.resources,
            diskMb: Math.min(BUILD_DISK_MB, this.config.resources.max.diskMb ?? BUILD_DISK_MB),
          }
        : input.resources,
    );
    this.checkLifecycleLimits(input);
    const isolation = await checkCreate(input, this.config, this.provider);
    const id = newSandboxId();
    await this.gate?.admit({ sandboxId: id, owner: opts.owner, kind: 'create' });
    const identity = await allocateIdentity(this.config, this.store, id);
    // The template's files (and its cached lockfile when warm), the user's files on top; its
    // dependency layer (when warm) is the workspace's read-only lower layer.
    const template = input.template ? await this.templates.filesFor(input.template) : undefined;
    const warm = template?.warm === true;
    if (opts.build) this.templates.markBuild(id, opts.build);
    let plan: RuntimePlan;
    try {
      const files = await this.provider.prepareWorkspace(id, {
        identity,
        layers: template?.layer ? [template.layer] : [],
        diskMb: resources.diskMb,
        build: opts.build !== undefined,
      });
      const withTemplate = template ? { ...input, files: { ...template.files, ...input.files } } : input;
      for (const [path, content] of Object.entries(withTemplate.files ?? {}))
        await files.write(path, content);
      // After the writes: a bad path is reported as invalid_path before detection reads the files.
      plan = planFromInput(withTemplate, this.config);
    } catch (err) {
      this.templates.unmarkBuild(id);
      await this.provider.destroy(id).then(
        () => this.store.releaseUid(id),
        () => undefined,
      );
      throw err;
    }
    const now = this.nowIso();
    const ports = input.ports ?? (plan.port ? [plan.port] : []);
    const record: SandboxRecord = {
      id,
      state: 'creating',
      image: plan.image,
      isolation,
      runtime: plan,
      ports: [...new Set(ports)],
      env: input.env ?? {},
      resources,
      identity,
      visibility: input.visibility ?? 'public',
      idleTimeoutSec: input.idleTimeoutSec ?? this.config.defaults.idleTimeoutSec,
      pauseAfterSec: input.pauseAfterSec ?? this.config.defaults.pauseAfterSec,
      metadata: input.metadata ?? {},
      labels: input.labels ?? {},
      createdAt: now,
      updatedAt: now,
      lastActivityAt: now,
    };
    if (input.template) record.template = input.template;
    if (input.network) record.network = input.network;
    if (input.ttlSec !== undefined) {
      record.ttlSec = input.ttlSec;
      record.expiresAt = isoAt(this.clock, input.ttlSec * 1000);
    }
    if (opts.owner) record.owner = opts.owner;
    if (input.idlePolicy) record.idlePolicy = input.idlePolicy;
    if (input.preStop) record.preStop = input.preStop;
    record.node = this.node.id;
    await this.store.insertSandbox(record, {
      event: { type: 'sandbox.created', sandboxId: id, data: { image: record.image } },
      ...this.fenced(),
    });
    await this.bus.pump();
    // Env values may be secrets: log their names only.
    this.log.info({ sandboxId: id, runtime: { ...plan, env: Object.keys(plan.env) } }, 'runtime plan');
    this.inBackground(this.lock.run(id, () => this.provision(id)));
    const name = input.template as TemplateName | undefined;
    if (name && !warm && !opts.build && nodeTemplates.includes(name)) {
      // A cold template: previewd builds its layer in a sandbox of its own (never from this one).
      void warmAfterInstall(this, this.provider, name, id)
        .then((r) => r.result === 'failed' && this.log.warn({ template: name }, 'template build failed'))
        .catch((err) => this.log.warn({ err, template: name }, 'template build failed'));
    }
    return record;
  }

  private checkLifecycleLimits(input: CreateSandboxInput): void {
    const { maxPauseAfterSec, maxIdleTimeoutSec, maxTtlSec } = this.config.lifecycle;
    const limits = [
      ['pauseAfterSec', input.pauseAfterSec, maxPauseAfterSec],
      ['idleTimeoutSec', input.idleTimeoutSec, maxIdleTimeoutSec],
      ['ttlSec', input.ttlSec, maxTtlSec],
    ] as const;
    for (const [field, value, max] of limits) {
      if (value !== undefined && value > max) {
        throw new PreviewdError('resource_limit', `${field} ${value} is above this host's maximum ${max}`, {
          details: { field, max },
          hint: `Ask for at most ${max} (lifecycle.max* in previewd.yaml).`,
        });
      }
    }
  }

  /**
   * Creates (if needed) and starts the container of a sandbox in `creating` or `starting`.
   * A failure moves the sandbox to `error` and is returned, not thrown.
   */
  private async provision(id: string): Promise<unknown> {
    let record = await this.store.getSandbox(id);
    if (!record || (record.state !== 'creating' && record.state !== 'starting')) return undefined;
    try {
      const { instanceId } = await this.provider.spawn({
        sandboxId: id,
        image: record.image,
        cmd: commandFor(record.runtime),
        supervise: superviseFor(record.runtime, this.config.appRestarts),
        env: { ...devServerEnv(this.config), ...record.runtime.env, ...record.env },
        resources: record.resources,
        labels: this.config.edgeMode === 'traefik' ? traefikLabels(this.config, record) : {},
        ports: record.ports,
        identity: identityOf(record),
        isolation: record.isolation,
      });
      if (record.state === 'creating') {
        record = await this.transition(record, 'starting', { containerId: instanceId });
      }
      await this.provider.start(id);
      const now = this.nowIso();
      await this.transition(record, 'running', { startedAt: now, lastActivityAt: now, error: undefined });
      return undefined;
    } catch (err) {
      await this.fail(id, err);
      return err;
    }
  }

  async start(id: string): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      const record = await this.get(id);
      if (record.state === 'running' || record.state === 'starting') return record;
      if (record.state === 'paused') return this.resume(record);
      // Only the states that need a container started: a bad transition still answers invalid_state.
      if (record.state === 'stopped' || record.state === 'error') {
        await this.gate?.admit({ sandboxId: id, owner: record.owner, kind: 'start' });
      }
      await this.transition(record, 'starting', { error: undefined, stopReason: undefined });
      const failure = await this.provision(id);
      if (failure) throw failure;
      return this.get(id);
    });
  }

  /**
   * Restarts the app of a running sandbox through its supervisor (the install runs again when the
   * dependencies changed); a sandbox that is not running is started, which runs the same plan.
   */
  async restartApp(id: string): Promise<SandboxRecord> {
    const record = await this.get(id);
    if (record.state !== 'running') return this.start(id);
    if (!this.provider.restartApp || !record.runtime.start) {
      throw new PreviewdError('invalid_state', `sandbox ${id} runs no supervised app`, {
        hint: 'Only sandboxes with a start command (detected or runtime.start) have an app to restart.',
      });
    }
    await this.provider.restartApp(id);
    return record;
  }

  async stop(id: string, reason?: StateChangeReason): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      const record = await this.get(id);
      if (record.state === 'stopped') return record;
      return this.stopLocked(record, reason);
    });
  }

  /**
   * Stops a sandbox whose lock the caller holds. A running or paused sandbox runs its preStop
   * command first (time-bounded; its failure is logged, the stop goes on).
   */
  private async stopLocked(record: SandboxRecord, reason?: StateChangeReason): Promise<SandboxRecord> {
    const wasLive = record.state === 'running' || record.state === 'paused';
    const stopping =
      record.state === 'stopping' ? record : await this.transition(record, 'stopping', {}, reason);
    try {
      if (wasLive && record.preStop) await this.runPreStop(record);
      if (wasLive) await this.settleBeforeSleep(record.id);
      await this.provider.stop(record.id);
    } catch (err) {
      await this.fail(record.id, err);
      throw err;
    }
    return this.transition(stopping, 'stopped', { stoppedAt: this.nowIso(), stopReason: reason }, reason);
  }

  private async runPreStop(record: SandboxRecord): Promise<void> {
    const preStop = record.preStop!;
    const timeoutSec = Math.min(
      preStop.timeoutSec ?? this.config.lifecycle.preStopTimeoutSec,
      this.config.lifecycle.preStopTimeoutSec,
    );
    try {
      if (record.state === 'paused') await this.provider.unpause(record.id);
      const result = await this.provider.exec(record.id, {
        cmd: typeof preStop.cmd === 'string' ? ['sh', '-c', preStop.cmd] : preStop.cmd,
        timeoutSec,
        maxOutputBytes: 64 * 1024,
      });
      this.log.info(
        {
          sandboxId: record.id,
          exitCode: result.exitCode,
          stderr: result.stderr.toString('utf8').slice(-2000),
        },
        'preStop ran',
      );
    } catch (err) {
      this.log.warn({ err, sandboxId: record.id }, 'preStop failed; stopping anyway');
    }
  }

  async pause(id: string, reason?: StateChangeReason): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      const record = await this.get(id);
      if (record.state === 'paused') return record;
      return this.pauseLocked(record, reason);
    });
  }

  /** Pauses a sandbox whose lock the caller holds. */
  private async pauseLocked(record: SandboxRecord, reason?: StateChangeReason): Promise<SandboxRecord> {
    assertTransition(record.id, record.state, 'paused');
    await this.settleBeforeSleep(record.id);
    await this.provider.pause(record.id);
    return this.transition(record, 'paused', {}, reason);
  }

  private async settleBeforeSleep(id: string): Promise<void> {
    try {
      await this.beforeSleep?.(id);
    } catch (err) {
      this.log.warn({ err, sandboxId: id }, 'before-sleep hook failed; going on');
    }
  }

  private async resume(record: SandboxRecord): Promise<SandboxRecord> {
    await this.provider.unpause(record.id);
    return this.transition(record, 'running', { lastActivityAt: this.nowIso() });
  }

  /**
   * Moves the expiry to `ttlSec` from now, at most lifecycle.maxTtlSec after the sandbox was
   * created.
   */
  async extend(id: string, ttlSec: number): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      const record = await this.get(id);
      const limit = Date.parse(record.createdAt) + this.config.lifecycle.maxTtlSec * 1000;
      const wanted = this.clock.now() + ttlSec * 1000;
      if (wanted > limit) {
        throw new PreviewdError(
          'resource_limit',
          `sandbox ${id} may live until ${new Date(limit).toISOString()} at most (lifecycle.maxTtlSec ${this.config.lifecycle.maxTtlSec} after creation)`,
          {
            details: { field: 'ttlSec', max: Math.max(0, Math.floor((limit - this.clock.now()) / 1000)) },
            hint: 'Ask for a shorter ttlSec; details.max is what is left.',
          },
        );
      }
      const expiresAt = new Date(wanted).toISOString();
      const next = await this.store.updateSandbox(
        id,
        { expiresAt, ttlSec: Math.round((wanted - Date.parse(record.createdAt)) / 1000) },
        undefined,
        this.fenced(),
      );
      if (!next) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
      return next;
    });
  }

  /**
   * Makes a sandbox ready for exec: running stays, paused is resumed (a state change like any
   * other), anything else answers sandbox_not_running with a hint that fits the state.
   */
  async ensureRunningForExec(id: string): Promise<SandboxRecord> {
    const record = await this.get(id);
    if (record.state === 'running') return record;
    if (record.state === 'paused') return this.start(id);
    // Asleep because previewd put it to sleep, not because a client stopped it: wake it.
    if (record.state === 'stopped' && record.stopReason) return this.start(id);
    const hint =
      record.state === 'creating' || record.state === 'starting'
        ? 'The sandbox is starting; wait for state "running" (follow GET /v1/sandboxes/{id}/events).'
        : `Start it first: POST /v1/sandboxes/${id}/start.`;
    throw new PreviewdError('sandbox_not_running', `sandbox ${id} is ${record.state}, not running`, { hint });
  }

  /** Adds a port to the sandbox's previews; no restart (the edge reaches any port of the sandbox). */
  async exposePort(id: string, port: number): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      const record = await this.get(id);
      if (record.ports.includes(port)) return record;
      const ports = [...record.ports, port];
      const event = { type: 'sandbox.ports' as const, sandboxId: id, data: { ports } };
      const next =
        (await this.store.updateSandbox(id, { ports }, undefined, { event, ...this.fenced() })) ?? record;
      await this.bus.pump();
      return next;
    });
  }

  async unexposePort(id: string, port: number): Promise<SandboxRecord> {
    return this.lock.run(id, async () => {
      const record = await this.get(id);
      if (!record.ports.includes(port)) {
        throw new PreviewdError('port_not_exposed', `port ${port} of sandbox ${id} is not exposed`);
      }
      const ports = record.ports.filter((p) => p !== port);
      const event = { type: 'sandbox.ports' as const, sandboxId: id, data: { ports } };
      const next =
        (await this.store.updateSandbox(id, { ports }, undefined, { event, ...this.fenced() })) ?? record;
      await this.bus.pump();
      return next;
    });
  }

  /** Revokes every preview token issued for the sandbox until now. */
  async revokePreviewTokens(id: string): Promise<SandboxRecord> {
    await this.get(id);
    // Tokens are signed with the system's time: their cut-off is too.
    const validAfter = nowIso();
    const next = await this.store.updateSandbox(id, { previewTokensValidAfter: validAfter }, undefined, {
      event: { type: 'sandbox.preview_tokens_revoked', sandboxId: id, data: { validAfter } },
      ...this.fenced(),
    });
    if (!next) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
    await this.bus.pump();
    await this.afterTokensRevoked?.(id);
    return next;
  }

  async keepalive(id: string, untilSec?: number): Promise<SandboxRecord> {
    const record = await this.get(id);
    const patch: SandboxPatch = { lastActivityAt: this.nowIso() };
    if (untilSec !== undefined) patch.keepAliveUntil = isoAt(this.clock, untilSec * 1000);
    return (await this.store.updateSandbox(id, patch, undefined, this.fenced())) ?? record;
  }

  /** Deletes the sandbox: its container, its workspace, then the row (kept as `deleted`). Idempotent on the engine side. */
  async delete(id: string, reason?: StateChangeReason): Promise<void> {
    await this.lock.run(id, async () => this.deleteLocked(await this.get(id), reason));
  }

  /**
   * Deletes the sandbox if it is past its expiresAt, checked under its lock (an extend that came
   * first wins): event `sandbox.expired`, then the usual deletion. Returns whether it did.
   */
  async expire(id: string): Promise<boolean> {
    return this.lock.run(id, async () => {
      const record = await this.store.getSandbox(id);
      if (!record?.expiresAt || Date.parse(record.expiresAt) > this.clock.now()) return false;
      await this.bus.publish(
        { type: 'sandbox.expired', sandboxId: id, data: { expiresAt: record.expiresAt } },
        this.fenced(),
      );
      await this.deleteLocked(record, 'expired');
      return true;
    });
  }

  private async deleteLocked(record: SandboxRecord, reason?: StateChangeReason): Promise<void> {
    const id = record.id;
    await this.transition(record, 'deleted', { deletedAt: this.nowIso() }, reason);
    try {
      await this.provider.destroy(id);
      // Container and files gone: nothing on the host has its uid any more.
      await this.store.releaseUid(id);
    } catch (err) {
      // The row is already deleted; the reconciler removes what the engine kept.
      this.log.warn({ err, sandboxId: id }, 'destroy failed; the reconciler will retry');
    }
    await this.bus.publish({ type: 'sandbox.deleted', sandboxId: id, data: {} }, this.fenced());
  }

  /** Whether an operation on the sandbox is under way (passes leave it for their next round). */
  isBusy(id: string): boolean {
    return this.lock.isHeld(id);
  }

  /**
   * Runs `work` under the sandbox's lock with the row as it is now (deleted rows included), or
   * answers false when there is no row. Every intent below re-reads the row here, never trusts
   * the caller's copy.
   */
  private withRow(
    id: string,
    work: (current: SandboxRecord) => Promise<boolean>,
    opts: { includeDeleted?: boolean } = {},
  ): Promise<boolean> {
    return this.lock.run(id, async () => {
      const current = await this.store.getSandbox(id, opts);
      // A row of another node is never touched here: its node settles it.
      if (!current || (current.node ?? LOCAL_NODE) !== this.node.id) return false;
      return work(current);
    });
  }

  /** Idle reaper: stops a running or paused sandbox (reason `idle`) if `stillIdle` says so under its lock. */
  stopIdle(id: string, stillIdle: StillIdle): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (!isAwake(current.state) || !stillIdle(current)) return false;
      await this.stopLocked(current, 'idle');
      return true;
    });
  }

  /** Idle reaper: pauses a running sandbox (reason `idle`) if `stillIdle` says so under its lock. */
  pauseIdle(id: string, stillIdle: StillIdle): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (current.state !== 'running' || !stillIdle(current)) return false;
      await this.pauseLocked(current, 'idle');
      return true;
    });
  }

  /**
   * Admission makes room: stops a running or paused sandbox with `reason` (`capacity`) if
   * `stillIdle` says so under its lock.
   */
  giveWay(id: string, stillIdle: StillIdle, reason: StateChangeReason = 'capacity'): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (!isAwake(current.state) || !stillIdle(current)) return false;
      await this.stopLocked(current, reason);
      return true;
    });
  }

  /**
   * Reconciler: a `starting` sandbox whose container runs (a previous process died after the
   * engine started it) becomes `running`.
   */
  adoptRunning(id: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (current.state !== 'starting') return false;
      if ((await this.provider.inspect(id)).status !== 'running') return false;
      await this.transition(current, 'running', { startedAt: this.nowIso() });
      return true;
    });
  }

  /**
   * Reconciler: finishes a create (or start) a previous process left in `creating` / `starting`
   * (spawn is idempotent). A failure leaves the sandbox in `error`; it still acted.
   */
  finishCreate(id: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (current.state !== 'creating' && current.state !== 'starting') return false;
      await this.provision(id);
      return true;
    });
  }

  /** Reconciler: finishes a stop a previous process left in `stopping`. */
  finishStop(id: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (current.state !== 'stopping') return false;
      await this.stopLocked(current);
      return true;
    });
  }

  /**
   * Reconciler: a running or paused sandbox whose container the engine no longer has goes to
   * `error` with `sandbox_lost` (a start recreates it); event `sandbox.lost` with `reason`.
   */
  markLost(id: string, reason: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (!isAwake(current.state)) return false;
      if ((await this.provider.inspect(id)).status !== 'missing') return false;
      await this.transition(current, 'error', {
        error: {
          code: 'sandbox_lost',
          message: 'the container disappeared; start the sandbox to recreate it',
        },
      });
      await this.bus.publish({ type: 'sandbox.lost', sandboxId: id, data: { reason } }, this.fenced());
      return true;
    });
  }

  /**
   * Node watch (src/cluster/node-watch.ts): a sandbox of a node that was fenced off goes to `error`
   * with `sandbox_lost` — its container and files are on that node, out of reach. Not under a lock
   * (no process holds that sandbox's lock any more): the compare-and-set on its state makes one of
   * the sweeping nodes do it, once.
   */
  async markNodeLost(id: string, reason: string): Promise<boolean> {
    const current = await this.store.getSandbox(id);
    if (!current || !['creating', 'starting', 'running', 'paused', 'stopping'].includes(current.state))
      return false;
    try {
      await this.transition(current, 'error', {
        error: { code: 'sandbox_lost', message: `${reason}; start the sandbox again once its node is back` },
      });
    } catch (err) {
      if (err instanceof PreviewdError && err.code === 'invalid_state') return false;
      throw err;
    }
    await this.bus.publish({ type: 'sandbox.lost', sandboxId: id, data: { reason } }, this.fenced());
    return true;
  }

  /**
   * Reconciler: a running or paused sandbox whose container has exited becomes `stopped` (reason
   * `engine`; error `app_exited` when the exit code was not 0). The engine is asked again here.
   */
  settleExited(id: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (!isAwake(current.state)) return false;
      const info = await this.provider.inspect(id);
      if (info.status !== 'exited' && info.status !== 'dead' && info.status !== 'created') return false;
      const stoppedAt = this.nowIso();
      const patch: SandboxPatch =
        info.exitCode && info.exitCode !== 0
          ? { stoppedAt, error: { code: 'app_exited', message: `the app exited with code ${info.exitCode}` } }
          : { stoppedAt };
      const stopping = await this.transition(current, 'stopping', {}, 'engine');
      await this.transition(stopping, 'stopped', patch, 'engine');
      return true;
    });
  }

  /** Reconciler: a running sandbox whose container the engine shows paused becomes `paused`. */
  settlePaused(id: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (current.state !== 'running' || (await this.provider.inspect(id)).status !== 'paused') return false;
      await this.transition(current, 'paused');
      return true;
    });
  }

  /** Reconciler: a paused sandbox whose container the engine shows running becomes `running`. */
  settleResumed(id: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (current.state !== 'paused' || (await this.provider.inspect(id)).status !== 'running') return false;
      await this.transition(current, 'running');
      return true;
    });
  }

  /** Reconciler: stops the container of a `stopped` sandbox that runs again (started from outside). */
  stopStray(id: string): Promise<boolean> {
    return this.withRow(id, async (current) => {
      if (current.state !== 'stopped') return false;
      const { status } = await this.provider.inspect(id);
      if (status !== 'running' && status !== 'paused') return false;
      await this.provider.stop(id);
      return true;
    });
  }

  /** Reconciler: removes what the engine kept of a `deleted` sandbox (its container, its workspace). */
  removeDeleted(id: string): Promise<boolean> {
    return this.withRow(
      id,
      async (current) => {
        if (current.state !== 'deleted') return false;
        if ((await this.provider.inspect(id)).status === 'missing') return false;
        await this.provider.destroy(id);
        await this.store.releaseUid(id);
        return true;
      },
      { includeDeleted: true },
    );
  }

  /**
   * Reconciler: removes a container or workspace no row names (a create that died before its
   * row was written), checked under the id's lock; false when a row exists by now.
   */
  removeOrphan(id: string): Promise<boolean> {
    return this.lock.run(id, async () => {
      if (await this.store.getSandbox(id, { includeDeleted: true })) return false;
      await this.provider.destroy(id);
      await this.store.releaseUid(id);
      return true;
    });
  }

  /**
   * Moves a sandbox to `to`, checked against the state machine and persisted only if nobody moved
   * it meanwhile; then publishes the change.
   */
  private async transition(
    record: SandboxRecord,
    to: SandboxState,
    patch: SandboxPatch = {},
    reason?: StateChangeReason,
  ): Promise<SandboxRecord> {
    assertTransition(record.id, record.state, to);
    const data: EventPayloads['sandbox.state'] = { from: record.state, to };
    const error = 'error' in patch ? patch.error : record.error;
    if (error && to === 'error') data.error = error;
    if (reason) data.reason = reason;
    // The event is written with the change (the outbox): both or neither.
    const next = await this.store.updateSandbox(record.id, { ...patch, state: to }, [record.state], {
      event: { type: 'sandbox.state', sandboxId: record.id, data },
      ...this.fenced(),
    });
    if (!next) {
      const current = await this.store.getSandbox(record.id, { includeDeleted: true });
      throw new PreviewdError(
        'invalid_state',
        `sandbox ${record.id} changed state meanwhile (now ${current?.state ?? 'gone'}), retry`,
      );
    }
    await this.bus.pump();
    this.log.info({ sandboxId: record.id, from: record.state, to, reason }, 'sandbox state');
    return next;
  }

  /** Records a failed operation: the sandbox goes to `error` with the failure's code and message. */
  /** This node's fence for a write (none outside a cluster; node_fenced once the lease lapsed). */
  private fenced(): { fence?: Fence } {
    const fence = this.node.fence();
    return fence ? { fence } : {};
  }

  /** The node whose sandboxes this service settles (passes list only its rows). */
  get nodeId(): string {
    return this.node.id;
  }

  private nowIso(): string {
    return isoAt(this.clock);
  }

  private async fail(id: string, err: unknown): Promise<void> {
    const info = errorInfo(err);
    this.log.warn({ sandboxId: id, err }, 'sandbox operation failed');
    const record = await this.store.getSandbox(id);
    if (!record || record.state === 'error') return;
    await this.transition(record, 'error', { error: info }).catch((e) =>
      this.log.error({ err: e, sandboxId: id }, 'could not record sandbox error'),
    );
  }

  private inBackground(work: Promise<unknown>): void {
    const tracked = work.catch((err) => this.log.error({ err }, 'background sandbox work failed'));
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }

  /** Waits for background work (tests and graceful shutdown). */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
    await this.lock.drain();
  }
}
