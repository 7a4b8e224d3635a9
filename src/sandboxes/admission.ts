import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Clock } from '../domain/clock.js';
import { PreviewdError } from '../domain/errors.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { SandboxState } from '../domain/state-machine.js';
import type { Store } from '../store/store.js';
import { availableMemoryMb, containerMemoryMb, hostMemoryMb } from './memory.js';
import type { SandboxService, StartGate } from './service.js';
import type { SandboxUsage } from './usage.js';

/** States that hold a container (and its memory) on the host. */
const LIVE: readonly SandboxState[] = ['creating', 'starting', 'running', 'paused'];

export interface AdmissionDeps {
  store: Store;
  service: SandboxService;
  usage: SandboxUsage;
  config: Config;
  log: Logger;
  /** Default: the usage's clock. */
  clock?: Clock;
  /** Where memory figures come from (tests and non-Linux hosts may replace it). */
  memory?: {
    availableMb(): Promise<number>;
    containerMb(containerId: string): Promise<number | undefined>;
  };
  /** The warm pool (src/pool/): memory its unclaimed containers hold, counted as used, and given back first. */
  pool?: { reservedMb(): number; giveWay(): Promise<number> };
}

/**
 * Capacity admission and per-owner quotas, asked by SandboxService before a create and before a
 * start of a stopped sandbox (API start and edge wake alike). Beyond `maxRunning` live sandboxes,
 * the memory budget or the free-memory watermark, it stops the least-recently-active idle
 * sandboxes first — never one active within `minActiveSec`, kept awake, always_on, or with running
 * work — and answers 503 capacity_exhausted with Retry-After when nothing can give way. Decisions
 * are serialised, so concurrent starts do not all count the same free slot.
 */
export class Admission implements StartGate {
  private queue: Promise<unknown> = Promise.resolve();
  /** Creates admitted whose row is not written yet (files still being written): id → admitted at. */
  private readonly admittedCreates = new Map<string, { at: number; owner?: string }>();
  private readonly memory: NonNullable<AdmissionDeps['memory']>;
  /** The usage's clock: minActiveSec, keepalive and pending creates are measured on it. */
  private readonly clock: Clock;

  constructor(private readonly deps: AdmissionDeps) {
    this.memory = deps.memory ?? { availableMb: availableMemoryMb, containerMb: containerMemoryMb };
    this.clock = deps.clock ?? deps.usage.clock;
  }

  get memoryBudgetMb(): number {
    return this.deps.config.admission.memoryBudgetMb ?? Math.floor(hostMemoryMb() * 0.8);
  }

  get minFreeMemoryMb(): number {
    return this.deps.config.admission.minFreeMemoryMb ?? Math.max(256, Math.floor(hostMemoryMb() * 0.05));
  }

  admit(request: { sandboxId?: string; owner?: string; kind: 'create' | 'start' }): Promise<void> {
    const run = this.queue.then(() => this.decide(request));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async decide(request: { sandboxId?: string; owner?: string; kind: 'create' | 'start' }) {
    const { store, config } = this.deps;
    // Deleted rows too: an admitted create whose sandbox was deleted since is no longer pending.
    // This node's rows: capacity is this node's, and only its sandboxes may give way.
    const rows = (await store.listSandboxes({ includeDeleted: true, node: this.deps.service.nodeId })).filter(
      (r) => r.id !== request.sandboxId,
    );
    // Admitted creates count until their row exists (or for a minute, if they failed before it).
    const ids = new Set(rows.map((r) => r.id));
    for (const [id, admitted] of this.admittedCreates) {
      if (ids.has(id) || this.clock.now() - admitted.at > 60_000) this.admittedCreates.delete(id);
    }
    const pending = this.admittedCreates.size;
    // Quotas count the owner's sandboxes on every node.
    if (request.owner) {
      const owned = await store.listSandboxes({ owner: request.owner });
      this.checkQuotas(
        owned.filter((r) => r.id !== request.sandboxId),
        request,
      );
    }

    const live = rows.filter((r) => LIVE.includes(r.state));
    const { maxRunning, startMemoryMb } = config.admission;
    let extraSlots = maxRunning > 0 ? live.length + pending + 1 - maxRunning : 0;
    const usageMb = new Map<string, number>();
    for (const r of live) usageMb.set(r.id, await this.usageOf(r));
    let used =
      [...usageMb.values()].reduce((a, b) => a + b, 0) +
      pending * startMemoryMb +
      (this.deps.pool?.reservedMb() ?? 0);
    let available = await this.memory.availableMb();
    const overBudget = () => used + startMemoryMb > this.memoryBudgetMb;
    // Unclaimed warm containers give way before any sandbox does.
    while (overBudget() && this.deps.pool) {
      const freed = await this.deps.pool.giveWay();
      if (freed <= 0) break;
      used -= freed;
    }
    const belowWatermark = () => available - startMemoryMb < this.minFreeMemoryMb;
    const admitted = () => {
      if (request.kind === 'create' && request.sandboxId)
        this.admittedCreates.set(request.sandboxId, { at: this.clock.now(), owner: request.owner });
    };
    if (extraSlots <= 0 && !overBudget() && !belowWatermark()) return admitted();

    const candidates = live
      .filter((r) => this.canGiveWay(r))
      .sort((a, b) => this.deps.usage.lastActive(a) - this.deps.usage.lastActive(b));
    const stopped: string[] = [];
    for (const candidate of candidates) {
      if (extraSlots <= 0 && !overBudget() && !belowWatermark()) break;
      if (!(await this.stopIfStillIdle(candidate.id))) continue;
      stopped.push(candidate.id);
      extraSlots -= 1;
      const freed = usageMb.get(candidate.id) ?? 0;
      used -= freed;
      available += freed;
    }
    if (stopped.length > 0)
      this.deps.log.info({ stopped, for: request }, 'stopped idle sandboxes to make room');
    if (extraSlots > 0 || overBudget() || belowWatermark()) {
      const why =
        extraSlots > 0
          ? `${maxRunning} sandboxes are running (admission.maxRunning)`
          : overBudget()
            ? `sandboxes use ${Math.round(used)} MB of the ${this.memoryBudgetMb} MB budget`
            : `the host has ${Math.round(available)} MB available, below the ${this.minFreeMemoryMb} MB watermark`;
      throw new PreviewdError('capacity_exhausted', `no room to start a sandbox: ${why}, and none is idle`, {
        headers: { 'Retry-After': String(config.admission.retryAfterSec) },
        details: { retryAfterSec: config.admission.retryAfterSec },
      });
    }
    admitted();
  }

  get startMemoryMb(): number {
    return this.deps.config.admission.startMemoryMb;
  }

  /**
   * Room for one more warm pool container of `mb` (counted like a sandbox about to start): within
   * the memory budget with what runs, what is admitted and what the pool holds, and above the
   * free-memory watermark. Serialised with admissions; `reserve` runs inside, so the pool's count
   * grows before the next decision reads it. Never stops a sandbox.
   */
  admitPool(mb: number, reserve: () => void): Promise<boolean> {
    const run = this.queue.then(async () => {
      const rows = await this.deps.store.listSandboxes({ node: this.deps.service.nodeId });
      let used = this.admittedCreates.size * this.startMemoryMb + (this.deps.pool?.reservedMb() ?? 0);
      for (const r of rows.filter((row) => LIVE.includes(row.state))) used += await this.usageOf(r);
      const available = await this.memory.availableMb();
      if (used + mb > this.memoryBudgetMb || available - mb < this.minFreeMemoryMb) return false;
      reserve();
      return true;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private checkQuotas(rows: SandboxRecord[], request: { owner?: string; kind: 'create' | 'start' }): void {
    const { maxSandboxesPerOwner, maxRunningPerOwner } = this.deps.config.quotas;
    if (!request.owner) return;
    const ownPending = [...this.admittedCreates.values()].filter((a) => a.owner === request.owner).length;
    const own = rows.filter((r) => r.owner === request.owner && r.state !== 'deleted');
    const owned = own.length + ownPending;
    if (request.kind === 'create' && maxSandboxesPerOwner !== undefined && owned >= maxSandboxesPerOwner) {
      throw new PreviewdError(
        'quota_exceeded',
        `owner ${request.owner} has ${owned} sandboxes, the quota is ${maxSandboxesPerOwner}`,
        { details: { quota: 'maxSandboxesPerOwner', limit: maxSandboxesPerOwner } },
      );
    }
    const running = own.filter((r) => LIVE.includes(r.state)).length + ownPending;
    if (maxRunningPerOwner !== undefined && running >= maxRunningPerOwner) {
      throw new PreviewdError(
        'quota_exceeded',
        `owner ${request.owner} has ${running} sandboxes running, the quota is ${maxRunningPerOwner}`,
        {
          details: { quota: 'maxRunningPerOwner', limit: maxRunningPerOwner },
          hint: 'Stop some of your sandboxes (POST /v1/sandboxes/{id}/stop) or delete them.',
        },
      );
    }
  }

  private async usageOf(record: SandboxRecord): Promise<number> {
    const measured = record.containerId ? await this.memory.containerMb(record.containerId) : undefined;
    if (measured !== undefined) return measured;
    return Math.min(record.resources.memoryMb, this.deps.config.admission.startMemoryMb);
  }

  /** Running or paused, idle for minActiveSec, not kept awake, not always_on, no running work, no operation under way. */
  canGiveWay(record: SandboxRecord): boolean {
    return this.canGiveWayLocked(record) && !this.deps.service.isBusy(record.id);
  }

  private async stopIfStillIdle(id: string): Promise<boolean> {
    const { service, log } = this.deps;
    try {
      return await service.giveWay(id, (current) => this.canGiveWayLocked(current), 'capacity');
    } catch (err) {
      log.warn({ err, sandboxId: id }, 'could not stop an idle sandbox to make room');
      return false;
    }
  }

  /** canGiveWay for a sandbox whose lock the caller holds. */
  private canGiveWayLocked(record: SandboxRecord): boolean {
    const { usage, config } = this.deps;
    const now = this.clock.now();
    if (record.state !== 'running' && record.state !== 'paused') return false;
    if (record.idlePolicy === 'always_on' || usage.keptAwake(record, now)) return false;
    if (now - usage.lastActive(record) < config.admission.minActiveSec * 1000) return false;
    return !usage.hasRunningWork(record.id);
  }
}
