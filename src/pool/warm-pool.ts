import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { SandboxIdentity } from '../domain/sandbox.js';
import type { Resources } from '../domain/schemas.js';
import { engineStatus } from '../providers/docker/errors.js';
import {
  containerName,
  LABEL_INSTANCE,
  LABEL_MANAGED,
  LABEL_POOL,
  POOL_NAME_PREFIX,
} from '../providers/docker/labels.js';
import { createPoolContainer, type PoolContainerContext, poolContainerName } from './pool-container.js';
import {
  listSlots,
  mountIntoSlot,
  prepareSlot,
  readClaim,
  removeSlot,
  type SlotClaim,
  signalWaiter,
  slotPaths,
  slotTarget,
  waiterReady,
  writeClaim,
  writeSlotUser,
} from './pool-slots.js';

/** How the pool asks admission for room (src/sandboxes/admission.ts admitPool). */
export interface PoolAdmission {
  admitPool(mb: number, reserve: () => void): Promise<boolean>;
  readonly startMemoryMb: number;
}

export interface WarmPoolOptions {
  config: Pick<Config, 'pool' | 'dataDir' | 'resources' | 'admission'>;
  context: PoolContainerContext;
  log: Logger;
  registry?: Registry;
  /** How long a new container may take to reach its FIFO (default 15 s). */
  readyTimeoutMs?: number;
  /** How long after a claim the refill starts (default 1 s). */
  refillDelayMs?: number;
  /** How often the pool retries filling while admission has no room (default 10 s). */
  retryMs?: number;
}

interface WarmEntry {
  slot: string;
  image: string;
  containerId?: string;
  state: 'filling' | 'warm';
}

/** What a claim needs: the sandbox's binds (host source → container path), user files and env. */
export interface ClaimRequest {
  sandboxId: string;
  image: string;
  identity: SandboxIdentity;
  env: Record<string, string>;
  mounts: { source: string; target: string }[];
  passwd: string;
  group: string;
}

export interface PoolState {
  images: { image: string; target: number; warm: number; filling: number }[];
  claimed: number;
  /** Memory admission counts for the pool's unclaimed containers, MB. */
  reservedMb: number;
}

/**
 * The warm pool (docs/pool.md): per runtime image, `pool[image]` containers created and started
 * ahead of any sandbox, each waiting in runtime/pool-waiter.sh. A create that fits claims one
 * (the provider's spawn calls `claim`): it is renamed to the sandbox's container, gets the
 * sandbox's mounts, user and environment, and starts its app. Each container serves one sandbox
 * once and is removed at that sandbox's first stop or delete. Refilling runs in the background,
 * one container at a time, only while admission has room.
 */
export class WarmPool {
  private readonly entries = new Map<string, WarmEntry>();
  private readonly claimedSlots = new Map<string, { slot: string; claim: SlotClaim }>();
  private admission?: PoolAdmission;
  private filling?: Promise<void>;
  private again = false;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private readonly claims?: Counter<'image' | 'result'>;

  constructor(private readonly opts: WarmPoolOptions) {
    if (opts.registry) {
      this.claims = new Counter({
        name: 'previewd_pool_claims_total',
        help: 'Creates that asked the warm pool, by image and result (claimed, empty, discarded)',
        labelNames: ['image', 'result'],
        registers: [opts.registry],
      });
      const pool = this;
      new Gauge({
        name: 'previewd_pool_containers',
        help: 'Unclaimed warm pool containers, by image and state (warm, filling)',
        labelNames: ['image', 'state'],
        registers: [opts.registry],
        collect() {
          this.reset();
          for (const s of pool.state().images) {
            this.set({ image: s.image, state: 'warm' }, s.warm);
            this.set({ image: s.image, state: 'filling' }, s.filling);
          }
        },
      });
    }
  }

  get resources(): Resources {
    return this.opts.config.resources.default;
  }

  private get targets(): [string, number][] {
    return Object.entries(this.opts.config.pool).filter(([, n]) => n > 0);
  }

  hasImage(image: string): boolean {
    return (this.opts.config.pool[image] ?? 0) > 0;
  }

  useAdmission(admission: PoolAdmission): void {
    this.admission = admission;
  }

  /** Memory admission counts for unclaimed containers (each as a sandbox about to start). */
  reservedMb(): number {
    return this.entries.size * (this.admission?.startMemoryMb ?? this.opts.config.admission.startMemoryMb);
  }

  state(): PoolState {
    const images = this.targets.map(([image, target]) => {
      const mine = [...this.entries.values()].filter((e) => e.image === image);
      return {
        image,
        target,
        warm: mine.filter((e) => e.state === 'warm').length,
        filling: mine.filter((e) => e.state === 'filling').length,
      };
    });
    return { images, claimed: this.claimedSlots.size, reservedMb: this.reservedMb() };
  }

  /** The claim of a sandbox whose container came from the pool. */
  claimOf(sandboxId: string): SlotClaim | undefined {
    return this.claimedSlots.get(sandboxId)?.claim;
  }

  /**
   * Removes what a previous run left unclaimed (containers and slots), keeps claimed ones (their
   * sandboxes run on), then fills in the background.
   */
  async start(): Promise<void> {
    const { docker, instance } = this.opts.context;
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${instance}`, LABEL_POOL] },
    });
    const kept = new Set<string>();
    for (const c of containers) {
      const slot = c.Labels[LABEL_POOL] ?? '';
      const unclaimed = c.Names.some((n) => n.replace(/^\//, '').startsWith(POOL_NAME_PREFIX));
      const claim = unclaimed ? undefined : await readClaim(slotPaths(this.opts.config.dataDir, slot));
      if (claim && c.Names.includes(`/${containerName(claim.sandboxId)}`)) {
        this.claimedSlots.set(claim.sandboxId, { slot, claim });
        kept.add(slot);
        continue;
      }
      await this.removeContainer(c.Id);
    }
    for (const slot of await listSlots(this.opts.config.dataDir)) {
      if (!kept.has(slot))
        await removeSlot(slotPaths(this.opts.config.dataDir, slot)).catch((err) => {
          this.opts.log.warn({ err, slot }, 'could not remove a pool slot');
        });
    }
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.opts.retryMs ?? 10_000);
    this.timer.unref();
    this.kick();
  }

  /** Stops filling and removes the unclaimed containers; claimed sandboxes stay as they are. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.filling?.catch(() => undefined);
    for (const entry of [...this.entries.values()]) await this.discard(entry);
  }

  /** Fills in the background (one container at a time); a no-op while a fill runs, which then loops. */
  kick(): void {
    if (this.stopped) return;
    if (this.filling) {
      this.again = true;
      return;
    }
    this.filling = (async () => {
      do {
        this.again = false;
        while (!this.stopped && (await this.fillOne())) {
          // one at a time until every image has its count or admission has no room
        }
      } while (this.again && !this.stopped);
    })()
      .catch((err) => this.opts.log.warn({ err }, 'warm pool fill failed'))
      .finally(() => {
        this.filling = undefined;
      });
  }

  /** Waits for the fill under way (tests). */
  async settled(): Promise<void> {
    while (this.filling) await this.filling;
  }

  private async fillOne(): Promise<boolean> {
    const image = this.targets.find(
      ([img, n]) => [...this.entries.values()].filter((e) => e.image === img).length < n,
    )?.[0];
    if (!image) return false;
    const slot = randomBytes(6).toString('hex');
    const entry: WarmEntry = { slot, image, state: 'filling' };
    const mb = this.admission?.startMemoryMb ?? this.opts.config.admission.startMemoryMb;
    const reserve = () => {
      this.entries.set(slot, entry);
    };
    let admitted = true;
    if (this.admission) admitted = await this.admission.admitPool(mb, reserve);
    else reserve();
    if (!admitted || this.stopped) {
      this.entries.delete(slot);
      return false;
    }
    const paths = slotPaths(this.opts.config.dataDir, slot);
    try {
      await prepareSlot(paths);
      entry.containerId = await createPoolContainer(this.opts.context, {
        image,
        slot,
        paths,
        resources: this.resources,
      });
      const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 15_000);
      while (!(await waiterReady(paths))) {
        if (Date.now() > deadline) throw new Error(`the pool container for ${image} did not get ready`);
        await new Promise((r) => setTimeout(r, 20));
      }
      entry.state = 'warm';
      return true;
    } catch (err) {
      this.opts.log.warn({ err, image }, 'could not make a warm pool container');
      await this.discard(entry);
      return false;
    }
  }

  /** Takes a warm container of the image out of the pool (the claim owns it from here). */
  private take(image: string): WarmEntry | undefined {
    const entry = [...this.entries.values()].find((e) => e.image === image && e.state === 'warm');
    if (entry) this.entries.delete(entry.slot);
    return entry;
  }

  /**
   * Claims a warm container for a sandbox: renamed to its container name, its mounts bound onto
   * the slot (they propagate into the running container), user files and environment written,
   * the waiter woken. Returns the container id, or undefined (none warm, or the claim failed and
   * the container was discarded): the caller then creates a container as usual.
   */
  async claim(req: ClaimRequest): Promise<string | undefined> {
    const entry = this.take(req.image);
    if (!entry?.containerId) {
      this.claims?.inc({ image: req.image, result: 'empty' });
      return undefined;
    }
    const paths = slotPaths(this.opts.config.dataDir, entry.slot);
    const claim: SlotClaim = { sandboxId: req.sandboxId, identity: req.identity, env: req.env };
    try {
      await this.opts.context.docker
        .getContainer(entry.containerId)
        .rename({ name: containerName(req.sandboxId) });
      // From here the sandbox owns the container: a failure below removes it with the slot.
      this.claimedSlots.set(req.sandboxId, { slot: entry.slot, claim });
      await mountIntoSlot(
        paths,
        req.mounts.map((m) => {
          const target = slotTarget(paths, m.target);
          if (!target) throw new Error(`the pool container has no place for ${m.target}`);
          return { source: m.source, target };
        }),
      );
      await writeSlotUser(paths, req.passwd, req.group);
      await writeClaim(paths, claim);
      let woken = await signalWaiter(paths);
      for (let i = 0; !woken && i < 5; i++) {
        await new Promise((r) => setTimeout(r, 10));
        woken = await signalWaiter(paths);
      }
      if (!woken) throw new Error('the pool container was not waiting');
      this.claims?.inc({ image: req.image, result: 'claimed' });
      return entry.containerId;
    } catch (err) {
      this.opts.log.warn({ err, sandboxId: req.sandboxId }, 'warm pool claim failed; creating a container');
      this.claims?.inc({ image: req.image, result: 'discarded' });
      await this.removeContainer(entry.containerId);
      this.claimedSlots.delete(req.sandboxId);
      await removeSlot(paths).catch((e) => this.opts.log.warn({ err: e }, 'could not remove a pool slot'));
      return undefined;
    } finally {
      // The refill waits a moment: the claimed sandbox's app starts first (2 cores are few).
      setTimeout(() => this.kick(), this.opts.refillDelayMs ?? 1000).unref();
    }
  }

  /**
   * Ends a claim: the container (stopped by the caller, or not) is removed, the slot's mounts
   * unmounted and the slot removed. Before the sandbox's storage is released: a bind of its
   * overlay in the slot would keep its disk busy. No-op for a sandbox that claimed nothing.
   */
  async release(sandboxId: string): Promise<boolean> {
    const held = this.claimedSlots.get(sandboxId);
    if (!held) return false;
    await this.removeContainer(containerName(sandboxId));
    await removeSlot(slotPaths(this.opts.config.dataDir, held.slot));
    this.claimedSlots.delete(sandboxId);
    return true;
  }

  /** Gives an unclaimed container's memory back to admission; returns the MB freed (0: none to give). */
  async giveWay(): Promise<number> {
    const entry = [...this.entries.values()].find((e) => e.state === 'warm');
    if (!entry) return 0;
    const mb = this.admission?.startMemoryMb ?? this.opts.config.admission.startMemoryMb;
    this.entries.delete(entry.slot);
    await this.discard(entry);
    return mb;
  }

  private async discard(entry: WarmEntry): Promise<void> {
    this.entries.delete(entry.slot);
    if (entry.containerId) await this.removeContainer(entry.containerId);
    else await this.removeContainer(poolContainerName(this.opts.context.instance, entry.slot));
    await removeSlot(slotPaths(this.opts.config.dataDir, entry.slot)).catch((err) =>
      this.opts.log.warn({ err, slot: entry.slot }, 'could not remove a pool slot'),
    );
  }

  private async removeContainer(idOrName: string): Promise<void> {
    try {
      await this.opts.context.docker.getContainer(idOrName).remove({ force: true, v: true });
    } catch (err) {
      const status = engineStatus(err);
      if (status !== 404 && status !== 409) throw err;
    }
  }
}
