/**
 * bench/dependency-cache: `npm install` inside a sandbox with the per-host cache cold (emptied
 * before the round) and warm, each round in a fresh sandbox (no
 * node_modules), interleaved so the registry's and the machine's noise hit both alike. "warm,
 * --prefer-offline" also skips npm's revalidation requests for cached package documents; the
 * `npm ci` rows install from the lockfile the cold round wrote (what detection runs when a project
 * has package-lock.json).
 *
 * Sandboxes never write the host's cache (it is a read-only lower layer: docs/runtimes.md); only
 * previewd's template builds do. So "warm" here is the cache after the bench publishes the cold
 * round's own downloads (its upper layer) as the cache layer — what a build does for its packages.
 *
 *   node --import tsx bench/dependency-cache.ts [rounds=5] [dependency=express]
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { publishCacheLayer } from '../src/workspaces/cache-layers.js';
import { LayerStore } from '../src/workspaces/layers.js';
import { startTestServer, type TestServer, waitFor } from '../test/helpers/server.js';
import { printTable, summary } from './stats.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const DEPENDENCY = process.argv[3] ?? 'express';

const packageJson = JSON.stringify({ name: 'bench', private: true, dependencies: { [DEPENDENCY]: '*' } });

async function sandboxWithProject(server: TestServer, lockfile?: string): Promise<string> {
  const created = await server.call('POST', '/v1/sandboxes', {
    files: { 'package.json': packageJson, ...(lockfile ? { 'package-lock.json': lockfile } : {}) },
    runtime: { start: 'exec sleep infinity' },
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  await waitFor(async () =>
    (await server.call('GET', `/v1/sandboxes/${id}`)).body.state === 'running' ? true : undefined,
  );
  return id;
}

async function timedInstall(
  server: TestServer,
  command: string,
  lockfile?: string,
  /** Publishes the sandbox's downloads as the host's cache layer (as a template build does). */
  fillCache?: boolean,
): Promise<{ ms: number; packages: number; lockfile: string }> {
  const id = await sandboxWithProject(server, lockfile);
  try {
    const res = await server.app.provider.exec(id, { cmd: ['sh', '-c', `${command} --no-audit --no-fund`] });
    if (res.exitCode !== 0) throw new Error(`${command} failed: ${res.stderr.toString()}`);
    const list = await server.app.provider.exec(id, { cmd: ['sh', '-c', 'ls node_modules | wc -l'] });
    const written = await server.app.provider.exec(id, { cmd: ['cat', 'package-lock.json'] });
    if (fillCache) {
      // What a template build does with its downloads: the next cache layer (cache-layers.ts).
      const upper = join(server.dataDir, 'sandboxes', id, 'disk', 'npm-upper');
      await publishCacheLayer(server.dataDir, new LayerStore(server.dataDir), 'npm', upper);
    }
    return {
      ms: res.durationMs,
      packages: Number(list.stdout.toString().trim()),
      lockfile: written.stdout.toString(),
    };
  } finally {
    await server.app.service.delete(id);
  }
}

/** No cache layer: the next sandboxes mount an empty one. */
async function emptyCache(dir: string): Promise<void> {
  await rm(join(dir, 'npm.layer'), { force: true });
}

async function main(): Promise<void> {
  const server = await startTestServer();
  const cacheDir = join(server.dataDir, 'cache');
  const samples: Record<string, number[]> = {
    'npm install, cold': [],
    'npm install, warm': [],
    'npm install --prefer-offline, warm': [],
    'npm ci, cold': [],
    'npm ci, warm': [],
  };
  let packages = 0;
  try {
    await timedInstall(server, 'npm install'); // the first sandbox of a host also creates the network; not measured
    for (let i = 0; i < ROUNDS; i++) {
      await emptyCache(cacheDir);
      const cold = await timedInstall(server, 'npm install', undefined, true);
      samples['npm install, cold']!.push(cold.ms);
      packages = cold.packages;
      samples['npm install, warm']!.push((await timedInstall(server, 'npm install')).ms);
      samples['npm install --prefer-offline, warm']!.push(
        (await timedInstall(server, 'npm install --prefer-offline')).ms,
      );
      await emptyCache(cacheDir);
      samples['npm ci, cold']!.push((await timedInstall(server, 'npm ci', cold.lockfile, true)).ms);
      samples['npm ci, warm']!.push((await timedInstall(server, 'npm ci', cold.lockfile)).ms);
      process.stderr.write(`round ${i + 1}/${ROUNDS} done\n`);
    }
  } finally {
    await server.close();
  }
  const cold = summary(samples['npm install, cold']!).p50;
  printTable(
    `Installing "${DEPENDENCY}" (${packages} packages in node_modules) inside a sandbox, ${ROUNDS} rounds (ms)`,
    Object.entries(samples).map(([install, ms]) => {
      const s = summary(ms);
      return {
        install,
        median: s.p50,
        min: s.min,
        max: s.max,
        'vs cold': `${((s.p50 / cold) * 100).toFixed(0)}%`,
      };
    }),
  );
}

await main();
