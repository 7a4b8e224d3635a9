import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import { newSandboxId } from '../domain/ids.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import {
  type CreateSnapshotInput,
  type ForkSandboxInput,
  type SnapshotRecord,
  type SnapshotView,
  snapshotView,
} from '../domain/snapshot-schemas.js';
import type { EventBus } from '../events/bus.js';
import type { SandboxProvider } from '../providers/provider.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { Store } from '../store/store.js';
import type { LayerStore } from '../workspaces/layers.js';
import type { SandboxStorage } from '../workspaces/sandbox-storage.js';
import { type FrozenLayers as Frozen, freezeWorkspace } from './freeze.js';
import { FrozenLayers } from './layer-collection.js';
import { pinLayers } from './layer-pins.js';

export interface SnapshotServiceDeps {
  config: Config;
  store: Store;
  service: SandboxService;
  provider: SandboxProvider;
  storage: SandboxStorage;
  layers: LayerStore;
  bus: EventBus;
  log: Logger;
  /** How often the layer collection runs besides after deletes (default 10 minutes). */
  collectEveryMs?: number;
}

/** States whose files can be frozen: the storage exists and no create or delete is under way. */
const FREEZABLE = new Set(['running', 'paused', 'stopped', 'error']);

const notFound = (id: string) => new PreviewdError('snapshot_not_found', `snapshot ${id} does not exist`);

/**
 * Snapshots and forks (docs/snapshots.md). A snapshot freezes a sandbox's writable layer as a new
 * content-addressed read-only layer of this node's layer store; its row (the store) names those
 * layers, the layers it sat on and the runtime plan. A sandbox made from it stacks them under an
 * empty writable layer of its own. A fork is the two in one step, without a row: its frozen layer
 * belongs to the new sandbox's stack alone and is freed with it.
 *
 * Tenancy: a snapshot is its sandbox owner's; another owner's answers snapshot_not_found, like a
 * missing one, on every route (GET, DELETE, create from it).
 */
export class SnapshotService {
  readonly frozen: FrozenLayers;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: SnapshotServiceDeps) {
    this.frozen = new FrozenLayers({
      dataDir: deps.config.dataDir,
      store: deps.store,
      layers: deps.layers,
      storage: deps.storage,
      nodeId: () => deps.service.nodeId,
      log: deps.log,
    });
  }

  /** Collects at start, after every sandbox deletion, and on a timer. */
  start(): void {
    const collect = () =>
      void this.frozen
        .collect()
        .catch((err) => this.deps.log.warn({ err }, 'snapshot layer collection failed'));
    this.unsubscribe = this.deps.bus.subscribe((event) => {
      if (event.type === 'sandbox.deleted') collect();
    });
    this.timer = setInterval(collect, this.deps.collectEveryMs ?? 10 * 60_000);
    this.timer.unref();
    collect();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    await this.frozen.collect().catch(() => undefined);
  }

  /**
   * Freezes the sandbox's files under its lock: a running container is paused for the copy (its
   * processes cannot change a file meanwhile) and unpaused after; a paused or stopped one stays
   * as it is. Returns the frozen layers, marked for collection.
   */
  private freeze(sandboxId: string): Promise<{ record: SandboxRecord; frozen: Frozen }> {
    return this.deps.service.exclusive(sandboxId, async (record) => {
      if (!FREEZABLE.has(record.state)) {
        throw new PreviewdError(
          'snapshot_unavailable',
          `sandbox ${sandboxId} is ${record.state}; a snapshot needs it running, paused, stopped or in error`,
        );
      }
      const pause = record.state === 'running';
      if (pause) await this.deps.provider.pause(sandboxId);
      try {
        const frozen = await freezeWorkspace(this.deps, sandboxId);
        await this.frozen.mark(frozen.key);
        return { record, frozen };
      } finally {
        if (pause) {
          await this.deps.provider
            .unpause(sandboxId)
            .catch((err) => this.deps.log.warn({ err, sandboxId }, 'unpause after a snapshot failed'));
        }
      }
    });
  }

  async create(sandboxId: string, input: CreateSnapshotInput): Promise<SnapshotView> {
    const max = this.deps.config.quotas.maxSnapshotsPerOwner;
    const sandbox = await this.deps.service.get(sandboxId);
    // Refused before the copy when the quota is already reached (the insert checks again).
    if (sandbox.owner !== undefined) {
      const held = await this.deps.store.listSnapshots({ owner: sandbox.owner, limit: max });
      if (held.length >= max) {
        throw new PreviewdError(
          'snapshot_quota_exceeded',
          `owner ${sandbox.owner} has ${held.length} snapshots, the quota is ${max}`,
          { details: { quota: 'maxSnapshotsPerOwner', limit: max } },
        );
      }
    }
    const { record, frozen } = await this.freeze(sandboxId);
    const snapshot: SnapshotRecord = {
      id: newSandboxId(),
      sandboxId,
      ...(input.name !== undefined ? { name: input.name } : {}),
      labels: input.labels ?? {},
      ...(record.owner !== undefined ? { owner: record.owner } : {}),
      node: this.deps.service.nodeId,
      runtime: record.runtime,
      image: record.image,
      layers: frozen.layers,
      sizeMb: frozen.sizeMb,
      createdAt: new Date().toISOString(),
    };
    // The layer stays pinned until the row names it (a collection in between would free it).
    const release = pinLayers(frozen.layers);
    try {
      await this.deps.store.insertSnapshot(snapshot, max);
    } catch (err) {
      release();
      void this.frozen.collect().catch(() => undefined);
      throw err;
    }
    release();
    this.deps.log.info(
      { snapshotId: snapshot.id, sandboxId, layers: snapshot.layers, sizeMb: snapshot.sizeMb },
      'snapshot taken',
    );
    return snapshotView(snapshot);
  }

  /** The snapshot, when `owner` may see it (undefined: an admin acting for no owner sees all). */
  async record(id: string, owner: string | undefined): Promise<SnapshotRecord> {
    const row = await this.deps.store.getSnapshot(id);
    if (!row || (owner !== undefined && row.owner !== owner)) throw notFound(id);
    return row;
  }

  async get(id: string, owner: string | undefined): Promise<SnapshotView> {
    return snapshotView(await this.record(id, owner));
  }

  async list(
    owner: string | undefined,
    query: { sandboxId?: string; limit: number; cursor?: string },
  ): Promise<{ snapshots: SnapshotView[]; nextCursor: string | null }> {
    const rows = await this.deps.store.listSnapshots({
      ...(owner !== undefined ? { owner } : {}),
      ...(query.sandboxId !== undefined ? { sandboxId: query.sandboxId } : {}),
      ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    return {
      snapshots: page.map(snapshotView),
      nextCursor: rows.length > query.limit ? (page[page.length - 1]?.id ?? null) : null,
    };
  }

  /**
   * Removes the snapshot at once (no longer listed, counted or usable). Its layer is freed on its
   * node when no sandbox's stack uses it any more: at once when none does, else when the last
   * sandbox made from it is deleted. Any node may delete the row; the node holding the layer frees it.
   */
  async delete(id: string, owner: string | undefined): Promise<SnapshotView> {
    const row = await this.record(id, owner);
    if (!(await this.deps.store.deleteSnapshot(id))) throw notFound(id);
    if (row.node === this.deps.service.nodeId) await this.frozen.collect();
    return snapshotView(row);
  }

  /** Where a create from this snapshot must run (the node holding its layers). */
  async nodeOf(id: string, owner: string | undefined): Promise<string> {
    return (await this.record(id, owner)).node;
  }

  /**
   * A new sandbox from the sandbox's files as they are now: frozen (as for a snapshot, no row
   * kept), then created over them with the same runtime plan and settings, its app started fresh.
   */
  async fork(sandboxId: string, owner: string | undefined, input: ForkSandboxInput): Promise<SandboxRecord> {
    const { record, frozen } = await this.freeze(sandboxId);
    const release = pinLayers(frozen.layers);
    try {
      return await this.deps.service.create(
        {
          ...(record.network ? { network: record.network } : {}),
          isolation: record.isolation,
          ports: input.ports ?? record.ports,
          env: { ...record.env, ...input.env },
          resources: { ...record.resources, ...input.resources },
          visibility: input.visibility ?? record.visibility,
          idleTimeoutSec: input.idleTimeoutSec ?? record.idleTimeoutSec,
          pauseAfterSec: input.pauseAfterSec ?? record.pauseAfterSec,
          ...(input.ttlSec !== undefined ? { ttlSec: input.ttlSec } : {}),
          ...((input.idlePolicy ?? record.idlePolicy)
            ? { idlePolicy: input.idlePolicy ?? record.idlePolicy }
            : {}),
          ...(record.preStop ? { preStop: record.preStop } : {}),
          metadata: input.metadata ?? record.metadata,
          labels: input.labels ?? record.labels,
          ...(input.runtime ? { runtime: input.runtime } : {}),
        },
        {
          // The forked sandbox's owner, whoever asks (tenancy already let the caller reach it).
          ...(record.owner !== undefined ? { owner: record.owner } : owner !== undefined ? { owner } : {}),
          base: { layers: frozen.layers, runtime: record.runtime, release: () => undefined },
        },
      );
    } finally {
      release();
      void this.frozen.collect().catch(() => undefined);
    }
  }
}
