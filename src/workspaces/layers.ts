import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What a layer holds (docs/layers.md); recorded when it is published, for the doctor's report. */
export type LayerKind = 'template' | 'cache' | 'dependency' | 'snapshot' | 'other';

/** `<root>/.meta/<key>.json`: a layer's size, measured once (layers never change), and its kind. */
export interface LayerMeta {
  kind: LayerKind;
  /** Disk blocks the tree takes (du), in bytes. Hard links shared with another layer count in both. */
  bytes: number;
  /** When it was measured (at publish, or at the first budget pass that saw it), ms since epoch. */
  measuredAt: number;
}

/** Called after a layer is published (the budget checks the store then). Per store root. */
const publishListeners = new Map<string, Set<(key: string) => void>>();

/**
 * One operation at a time per layer across every LayerStore of this process (several are made for
 * one data dir): a `touch` for a new stack and an eviction never interleave, so either the touch
 * comes first (and the eviction sees the fresh use and leaves the layer) or the eviction does (and
 * the touch fails: the layer is gone).
 */
const locks = new Map<string, Promise<unknown>>();
function locked<T>(path: string, work: () => Promise<T>): Promise<T> {
  const before = locks.get(path) ?? Promise.resolve();
  const next = before.then(work, work);
  const tail = next.catch(() => undefined);
  locks.set(path, tail);
  void tail.then(() => {
    if (locks.get(path) === tail) locks.delete(path);
  });
  return next;
}

/** A layer key: lowercase hex, what `layerKey` makes (a path segment that cannot climb out). */
const KEY = /^[a-f0-9]{16,64}$/;

/** The key of a layer built from these inputs (a recipe: template fingerprint, install, image…). */
export function layerKey(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 32);
}

/**
 * The read-only layers sandboxes' overlay stacks are made of: `<dataDir>/layers/<key>/`, one
 * directory tree per key, never written once published. A layer is built in a temporary directory
 * beside its final place by previewd itself (never by a sandbox: see template-cache.ts) and
 * published with one rename, so a layer directory that exists is complete — a crash mid-build
 * leaves only a `.tmp-…` directory, which `sweep` removes.
 *
 * Keys are derived from what the layer is built from (`layerKey`), so the same recipe on the same
 * host names the same layer and two builds of it keep the first. Snapshots and per-lockfile
 * dependency layers (issue 16) go here too.
 *
 * Nothing a sandbox runs reaches these directories except as an overlay's lowerdir, which overlayfs
 * never writes: a write inside the sandbox copies the file up into the sandbox's own upper layer.
 */
export class LayerStore {
  readonly root: string;
  private readonly building = new Map<string, Promise<string>>();

  constructor(
    dataDir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.root = resolve(dataDir, 'layers');
  }

  /** Calls `listener` after any LayerStore on this root publishes a layer. Returns the removal. */
  onPublish(listener: (key: string) => void): () => void {
    const set = publishListeners.get(this.root) ?? new Set();
    publishListeners.set(this.root, set);
    set.add(listener);
    return () => set.delete(listener);
  }

  private published(key: string, kind: LayerKind): void {
    void this.meta(key, kind)
      .catch(() => undefined)
      .then(() => {
        for (const listener of publishListeners.get(this.root) ?? []) listener(key);
      });
  }

  /** The published layers' keys (not `empty`, not builds under way). */
  async keys(): Promise<string[]> {
    return (await readdir(this.root).catch(() => [] as string[])).filter((n) => KEY.test(n));
  }

  private metaPath(key: string): string {
    this.path(key);
    return join(this.root, '.meta', `${key}.json`);
  }

  /** The recorded size and kind of `key`, if it was measured. */
  async readMeta(key: string): Promise<LayerMeta | undefined> {
    const text = await readFile(this.metaPath(key), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const m = JSON.parse(text) as LayerMeta;
      return typeof m.bytes === 'number' && typeof m.measuredAt === 'number' ? m : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The size and kind of `key`: read from `.meta/<key>.json`, or measured once (du) and written
   * there (not with `record: false`). `kind` is what the caller knows of it.
   */
  async meta(key: string, kind: LayerKind = 'other', opts: { record?: boolean } = {}): Promise<LayerMeta> {
    const at = this.now();
    const known = await this.readMeta(key);
    if (known && (kind === 'other' || known.kind === kind)) return known;
    const bytes = known?.bytes ?? (await this.measure(key));
    const meta: LayerMeta = { kind, bytes, measuredAt: known?.measuredAt ?? at };
    // A reader (the doctor) measures without writing.
    if (opts.record === false) return meta;
    const dir = join(this.root, '.meta');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${key}.${randomBytes(4).toString('hex')}`);
    await writeFile(tmp, `${JSON.stringify(meta)}\n`, { mode: 0o600 });
    await rename(tmp, this.metaPath(key));
    return meta;
  }

  /** Walks the layer once: the disk blocks of its tree in bytes (links not followed, one file system). */
  private async measure(key: string): Promise<number> {
    const { stdout } = await run('du', ['-s', '-x', '-B1', this.path(key)], { maxBuffer: 1 << 20 });
    const bytes = Number.parseInt(stdout, 10);
    if (!Number.isFinite(bytes)) throw new Error(`du gave no size for layer ${key}`);
    return bytes;
  }

  path(key: string): string {
    if (!KEY.test(key) && key !== 'empty') throw new Error(`not a layer key: ${key}`);
    return join(this.root, key);
  }

  has(key: string): boolean {
    return existsSync(this.path(key));
  }

  /**
   * Records that a new stack is about to name `key` (the layer store's budget evicts the least
   * recently used layers first): `<root>/.used/<key>`, whose mtime is the last use.
   */
  async touch(key: string): Promise<void> {
    const layer = this.path(key);
    await locked(layer, async () => {
      if (key !== 'empty' && !existsSync(layer)) throw new Error(`layer ${key} is not in the layer store`);
      const dir = join(this.root, '.used');
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const marker = join(dir, key);
      const now = new Date(this.now());
      await utimes(marker, now, now).catch(async () => {
        await writeFile(marker, '', { mode: 0o600 });
        await utimes(marker, now, now);
      });
    });
  }

  /**
   * Evicts `key` (the budget, layer-budget.ts) unless a new stack named it at or after `seenUse`
   * (the last use the caller decided on): renamed aside under the layer's lock, so a `touch` for a
   * new stack either comes first (the layer stays) or fails (it is gone). Returns whether it went.
   */
  async evict(key: string, seenUse: number): Promise<boolean> {
    const layer = this.path(key);
    if (key === 'empty') return false;
    const gone = join(this.root, `.tmp-gone-${key}-${randomBytes(4).toString('hex')}`);
    const moved = await locked(layer, async () => {
      const used = (await this.lastUsed(key))?.getTime();
      if (used !== undefined && used > seenUse) return false;
      try {
        await rename(layer, gone);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
    });
    if (!moved) return false;
    await this.forget(key);
    await rm(gone, { recursive: true, force: true });
    return true;
  }

  /** Drops what the store recorded of a removed layer (its meta and last use). */
  private async forget(key: string): Promise<void> {
    await rm(this.metaPath(key), { force: true });
    await rm(join(this.root, '.used', key), { force: true });
  }

  /** `touch`, for a layer about to be handed to a new stack: false when it is gone (evicted). */
  claim(key: string): Promise<boolean> {
    return this.touch(key).then(
      () => true,
      () => false,
    );
  }

  /** When `key` was last named by a new stack (`touch`), if ever. */
  async lastUsed(key: string): Promise<Date | undefined> {
    this.path(key); // refuses what is not a layer key
    const st = await stat(join(this.root, '.used', key)).catch(() => undefined);
    return st?.mtime;
  }

  /** The empty layer: the lower of a stack that starts from nothing (overlayfs needs one). */
  async empty(): Promise<string> {
    const dir = this.path('empty');
    if (!existsSync(dir)) {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await chmod(dir, 0o755);
    }
    return dir;
  }

  /**
   * Publishes the layer `key`, filled by `fill` (into an empty directory it is given), unless it
   * exists. Concurrent calls for one key share one build. Returns the layer's directory.
   */
  put(key: string, fill: (dir: string) => Promise<void>, opts: { kind?: LayerKind } = {}): Promise<string> {
    const final = this.path(key);
    if (existsSync(final)) return Promise.resolve(final);
    const kind = opts.kind ?? 'other';
    const pending = this.building.get(key);
    if (pending) return pending;
    const work = (async () => {
      await mkdir(this.root, { recursive: true, mode: 0o755 });
      const tmp = join(this.root, `.tmp-${key}-${randomBytes(4).toString('hex')}`);
      await mkdir(tmp, { mode: 0o755 });
      try {
        await fill(tmp);
        await chmod(tmp, 0o755);
        if (existsSync(final)) {
          await rm(tmp, { recursive: true, force: true });
        } else {
          await rename(tmp, final);
          this.published(key, kind);
        }
        return final;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    })().finally(() => this.building.delete(key));
    this.building.set(key, work);
    return work;
  }

  /**
   * Publishes a content-addressed layer (a snapshot's frozen writable layer): `fill` fills an
   * empty directory, `keyOf` names the filled tree by its content; the same content already
   * published keeps the first copy (`existed`).
   */
  async publish(
    fill: (dir: string) => Promise<void>,
    keyOf: (dir: string) => Promise<string>,
  ): Promise<{ key: string; dir: string; existed: boolean }> {
    await mkdir(this.root, { recursive: true, mode: 0o755 });
    const tmp = join(this.root, `.tmp-frozen-${randomBytes(8).toString('hex')}`);
    await mkdir(tmp, { mode: 0o755 });
    try {
      await fill(tmp);
      await chmod(tmp, 0o755);
      const key = await keyOf(tmp);
      const final = this.path(key);
      if (existsSync(final)) {
        await rm(tmp, { recursive: true, force: true });
        return { key, dir: final, existed: true };
      }
      await rename(tmp, final);
      this.published(key, 'snapshot');
      return { key, dir: final, existed: false };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Takes a layer out of the store at once (renamed aside, then removed): a reader that checks
   * `has` afterwards never sees it half removed.
   */
  async discard(key: string): Promise<void> {
    const gone = join(this.root, `.tmp-gone-${key}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(this.path(key), gone);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await this.forget(key);
    await rm(gone, { recursive: true, force: true });
  }

  /**
   * Removes a layer. Only for layers no stack names (a mounted overlay keeps its lower's inodes
   * alive, but a remount after a restart would fail).
   */
  async remove(key: string): Promise<void> {
    await rm(this.path(key), { recursive: true, force: true });
    if (key !== 'empty') await this.forget(key);
  }

  /** Removes builds a crash interrupted (`.tmp-…` older than `olderThanMs`). */
  async sweep(olderThanMs = 60 * 60_000): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      if (!name.startsWith('.tmp-')) continue;
      const st = await stat(join(this.root, name)).catch(() => undefined);
      if (!st || Date.now() - st.mtimeMs < olderThanMs) continue;
      if (this.building.has(name.slice(5, -9))) continue;
      await rm(join(this.root, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }
}
