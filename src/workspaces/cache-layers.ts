import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type LayerStore, layerKey } from './layers.js';

const run = promisify(execFile);

export type CacheName = 'npm' | 'pip';

/** `<dataDir>/cache/<name>.layer`: the key of the download cache layer new sandboxes get. */
function pointer(dataDir: string, name: CacheName): string {
  return resolve(dataDir, 'cache', `${name}.layer`);
}

/** The current download-cache layer of `name`, if one was published and still exists. */
export async function currentCacheLayer(
  dataDir: string,
  layers: LayerStore,
  name: CacheName,
): Promise<string | undefined> {
  const key = (await readFile(pointer(dataDir, name), 'utf8').catch(() => '')).trim();
  if (!key || !layers.has(key)) return undefined;
  // Named for a new stack (or a new cache layer's base): the layer budget leaves it meanwhile.
  return (await layers.claim(key)) ? key : undefined;
}

/**
 * The host's download caches are layers too, so nothing ever writes a cache a mounted overlay
 * reads from (overlayfs leaves changes to a lower layer under a live mount undefined). A template
 * build (previewd's own sandbox) sees the current cache layer as its lower, like any sandbox; its
 * downloads land in its upper directory. Afterwards this publishes a new layer: the current one
 * hard-linked (both are immutable: a shared inode no sandbox can write), then the build's upper
 * copied over it with `--remove-destination` (an existing name is replaced by a new inode, never
 * written through) and overlayfs's whiteouts dropped; then the pointer moves. Sandboxes mounted
 * on the old layer keep it; the next ones get the new one.
 */
export async function publishCacheLayer(
  dataDir: string,
  layers: LayerStore,
  name: CacheName,
  upper: string,
): Promise<string | undefined> {
  if (!existsSync(upper) || (await readdir(upper)).length === 0) return undefined;
  const previous = await currentCacheLayer(dataDir, layers, name);
  const key = layerKey('cache', name, previous ?? '', randomBytes(8).toString('hex'));
  await layers.put(
    key,
    async (dir) => {
      if (previous) await run('cp', ['-al', `${layers.path(previous)}/.`, dir]);
      await run('cp', ['-a', '--remove-destination', `${resolve(upper)}/.`, dir]);
      // Whiteouts (character devices 0:0) and opaque markers belong to the build's overlay only.
      await run('find', [dir, '-type', 'c', '-delete']);
      // Every sandbox has its own uid and npm writes into its cache's directories: readable and
      // writable by all, which opens nothing — sandboxes only ever see it as an overlay's lower
      // layer, so a write lands in their own upper layer.
      await run('chmod', ['-R', 'a+rwX,ug-s', dir]);
    },
    { kind: 'cache' },
  );
  await mkdir(dirname(pointer(dataDir, name)), { recursive: true });
  const tmp = `${pointer(dataDir, name)}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, `${key}\n`);
  await rename(tmp, pointer(dataDir, name));
  return key;
}
