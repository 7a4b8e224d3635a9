import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { type Clock, isoAt, systemClock } from '../domain/clock.js';
import { PreviewdError } from '../domain/errors.js';
import type { EventPayloads, StateChangeReason } from '../domain/events.js';
import { type Fence, LOCAL_NODE } from '../domain/node.js';
import type { SandboxPatch, SandboxRecord } from '../domain/sandbox.js';
import { assertTransition, type SandboxState } from '../domain/state-machine.js';
import type { EventBus } from '../events/bus.js';
import type { SandboxProvider } from '../providers/provider.js';
import { TemplateCache } from '../runtimes/template-cache.js';
import type { Store } from '../store/store.js';
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

/** Whether a sandbox may be stopped or paused now; asked again under the sandbox's lock. */
export type StillIdle = (current: SandboxRecord) => boolean;

const LOCAL: ServiceNode = { id: LOCAL_NODE, fence: () => undefined };

/** States with a container the engine runs (or holds frozen). */
export function isAwake(state: SandboxState): boolean {
  return state === 'running' || state === 'paused';
}

function errorInfo(err: unknown): { code: string; message: string } {
  if (err instanceof PreviewdError) return { code: err.code, message: err.message };
  return { code: 'internal', message: (err as Error)?.message ?? String(err) };
}

/**
 * What SandboxService writes with, shared by the modules that hold its operations (sandbox-create,
 * run-state, sandbox-settings, intents): its dependencies, the per-sandbox lock, the background
 * work, and the one state change (`transition`). Only SandboxService makes one.
 */
export class SandboxWriter {
  readonly lock = new KeyedLock();
  private readonly background = new Set<Promise<unknown>>();
  readonly store: Store;
  readonly provider: SandboxProvider;
  readonly bus: EventBus;
  readonly config: Config;
  readonly log: Logger;
  readonly gate?: StartGate;
  readonly beforeSleep?: (sandboxId: string) => Promise<void>;
  readonly afterTokensRevoked?: (sandboxId: string) => Promise<void>;
  readonly onNetworkChange?: (sandboxId: string) => Promise<void>;
  readonly clock: Clock;
  readonly node: ServiceNode;
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

  async get(id: string): Promise<SandboxRecord> {
    const record = await this.store.getSandbox(id);
    if (!record) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
    return record;
  }

  /**
   * Runs `work` under the sandbox's lock with the row as it is now (deleted rows included), or
   * answers false when there is no row. Every intent re-reads the row here, never trusts the
   * caller's copy.
   */
  withRow(
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

  /**
   * Moves a sandbox to `to`, checked against the state machine and persisted only if nobody moved
   * it meanwhile; then publishes the change.
   */
  async transition(
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

  /** This node's fence for a write (none outside a cluster; node_fenced once the lease lapsed). */
  fenced(): { fence?: Fence } {
    const fence = this.node.fence();
    return fence ? { fence } : {};
  }

  nowIso(): string {
    return isoAt(this.clock);
  }

  /** Records a failed operation: the sandbox goes to `error` with the failure's code and message. */
  async fail(id: string, err: unknown): Promise<void> {
    const info = errorInfo(err);
    this.log.warn({ sandboxId: id, err }, 'sandbox operation failed');
    const record = await this.store.getSandbox(id);
    if (!record || record.state === 'error') return;
    await this.transition(record, 'error', { error: info }).catch((e) =>
      this.log.error({ err: e, sandboxId: id }, 'could not record sandbox error'),
    );
  }

  inBackground(work: Promise<unknown>): void {
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
