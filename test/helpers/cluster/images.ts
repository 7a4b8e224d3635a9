import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, run } from './commands.js';

async function imageId(socket: string | undefined, image: string): Promise<string> {
  const args = ['image', 'inspect', '--format', '{{.Id}}', image];
  const out = socket ? docker(socket, args) : run('docker', args);
  return (await out.catch(() => '')).trim();
}

/**
 * Puts `images` from this host's engine into every engine that lacks them or holds another build
 * (image id compare): one `docker save` for all, `docker load` where needed, the replaced builds
 * pruned. Resolves with the number of engines that loaded (0 when all were up to date).
 */
export async function syncImages(images: string[], sockets: string[]): Promise<number> {
  if (images.length === 0) return 0;
  const ids = new Map<string, string>();
  for (const image of images) {
    const id = await imageId(undefined, image);
    if (!id)
      throw new Error(`image ${image} is not on this host's engine (build it first: previewd images build)`);
    ids.set(image, id);
  }
  const stale: string[] = [];
  for (const socket of sockets) {
    for (const [image, id] of ids) {
      if ((await imageId(socket, image)) !== id) {
        stale.push(socket);
        break;
      }
    }
  }
  if (stale.length === 0) return 0;
  const dir = mkdtempSync(join(tmpdir(), 'pvdc-images-'));
  try {
    const archive = join(dir, 'images.tar');
    await run('docker', ['save', '-o', archive, ...images], { timeoutMs: 300_000 });
    await Promise.all(
      stale.map(async (socket) => {
        await docker(socket, ['load', '-q', '-i', archive], 300_000);
        await docker(socket, ['image', 'prune', '-f']);
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return stale.length;
}
