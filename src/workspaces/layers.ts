import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

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

  constructor(dataDir: string) {
    this.root = resolve(dataDir, 'layers');
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
    this.path(key);
    const dir = join(this.root, '.used');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const marker = join(dir, key);
    const now = new Date();
    await utimes(marker, now, now).catch(async () => writeFile(marker, '', { mode: 0o600 }));
  }

  /** When `key` was last named by a new stack (`touch`), if ever. */
  async lastUsed(key: string): Promise<Date | undefined> {
    const st = await stat(join(this.root, '.used', this.path(key).slice(this.root.length + 1))).catch(
      () => undefined,
    );
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
  put(key: string, fill: (dir: string) => Promise<void>): Promise<string> {
    const final = this.path(key);
    if (existsSync(final)) return Promise.resolve(final);
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
    await rm(gone, { recursive: true, force: true });
  }

  /**
   * Removes a layer. Only for layers no stack names (a mounted overlay keeps its lower's inodes
   * alive, but a remount after a restart would fail).
   */
  async remove(key: string): Promise<void> {
    await rm(this.path(key), { recursive: true, force: true });
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
