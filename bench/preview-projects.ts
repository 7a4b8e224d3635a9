/**
 * The layered-workspace figures of bench/preview.ts, on projects no one here wrote (create-vite's
 * templates, fetched at bench time: bench/create-vite.ts), side by side in one run:
 *
 * - create → first good byte of a create-vite project: the first time its lockfile is seen (the
 *   sandbox installs; previewd then builds the dependency layer in a sandbox of its own), again
 *   with the lockfile seen before (the layer is mounted, nothing installed), and that with a warm
 *   pool;
 * - a static site → first preview byte: `docker run` of the same image serving the same files,
 *   previewd without a pool, previewd from a warm pool;
 * - fork of a running Vite sandbox → the fork's preview answers.
 *
 * "Good" for a Vite project: `/` answers 200 and so does the project's own entry module (the dev
 * server transformed it, its imports resolved).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runtimeDir } from '../src/providers/docker/app-supervisor.js';
import { edgeJson, previewHostOf } from '../test/helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer } from '../test/helpers/server.js';
import { fetchViteProjects, renamedArchive, type ViteProject } from './create-vite.js';
import { sandboxLikeRunArgs } from './docker-floor.js';
import { printTable, summary } from './stats.js';

const run = promisify(execFile);
const VITE_PORT = 5173;
const STATIC_PORT = 8080;

interface Options {
  /** create-vite templates to measure. */
  projects: string[];
  /** Samples per figure (medians reported). */
  rounds: number;
  /** Warm containers per runtime image in the pooled server. */
  poolSize: number;
}

async function ok(server: TestServer, host: string, path: string): Promise<boolean> {
  const res = await edgeJson(server, host, path).catch(() => undefined);
  return res?.status === 200;
}

/** Polls (every 5 ms) until every path answers 200 through the edge; the time from `t0`. */
async function firstGood(
  server: TestServer,
  host: string,
  paths: string[],
  t0: number,
  timeoutMs = 600_000,
): Promise<number> {
  const pending = [...paths];
  while (performance.now() - t0 < timeoutMs) {
    while (pending.length > 0 && (await ok(server, host, pending[0]!))) pending.shift();
    if (pending.length === 0) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${host}${pending[0]} did not answer 200 within ${timeoutMs} ms`);
}

async function createArchive(server: TestServer, archive: Buffer, options: object = {}): Promise<string> {
  const res = await fetch(`${server.url}/v1/sandboxes`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TEST_KEY}`,
      'content-type': 'application/gzip',
      'x-previewd-create': JSON.stringify(options),
    },
    body: archive,
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id) throw new Error(`create: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

async function projectToGood(server: TestServer, project: ViteProject, archive = project.archive) {
  const t0 = performance.now();
  const id = await createArchive(server, archive);
  const ms = await firstGood(server, previewHostOf(id, VITE_PORT), ['/', project.module], t0);
  return { id, ms };
}

const STATIC_FILES = {
  'index.html': '<!doctype html><html><body><h1 id="title">Hello from a static site</h1></body></html>\n',
  'style.css': 'body { font-family: system-ui }\n',
};

async function staticToByte(server: TestServer): Promise<{ id: string; ms: number }> {
  const t0 = performance.now();
  const res = await server.call('POST', '/v1/sandboxes', { files: STATIC_FILES });
  if (res.status !== 201) throw new Error(`create: ${JSON.stringify(res.body)}`);
  const id = res.body.id as string;
  return { id, ms: await firstGood(server, previewHostOf(id, STATIC_PORT), ['/'], t0) };
}

/**
 * The floor: `docker run -d` of the node image serving the same files with the same static server,
 * the options a sandbox has, until its port answers 200 on the container's address.
 */
async function dockerRunStatic(image: string, network: string, i: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'previewd-bench-static-'));
  const name = `previewd-bench-static-${process.pid}-${i}`;
  try {
    for (const [path, text] of Object.entries(STATIC_FILES)) await writeFile(join(dir, path), text);
    await chmod(dir, 0o755); // mkdtemp makes it 0700: the container's user must read it
    const t0 = performance.now();
    await run('docker', [
      ...sandboxLikeRunArgs(name, network),
      '-v',
      `${runtimeDir()}:/opt/previewd:ro`,
      '-v',
      `${dir}:/workspace:ro`,
      '-w',
      '/workspace',
      image,
      'node',
      '/opt/previewd/static-server.mjs',
      '--port',
      String(STATIC_PORT),
    ]);
    let ip = '';
    for (;;) {
      if (!ip) {
        const { stdout } = await run('docker', [
          'inspect',
          '-f',
          `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`,
          name,
        ]);
        ip = stdout.trim();
      }
      const res = ip ? await fetch(`http://${ip}:${STATIC_PORT}/`).catch(() => undefined) : undefined;
      if (res?.status === 200) {
        await res.arrayBuffer();
        return performance.now() - t0;
      }
      if (performance.now() - t0 > 60_000) throw new Error('docker run: the static server never answered');
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await run('docker', ['rm', '-f', name]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Waits (bounded) until previewd's own build of the project's dependency layer is published. */
async function layerBuilt(server: TestServer, project: ViteProject, timeoutMs = 600_000): Promise<number> {
  const t0 = performance.now();
  // A probe create says at once whether it got the layer (`runtime.dependencies`); it is removed.
  for (;;) {
    const res = await fetch(`${server.url}/v1/sandboxes`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_KEY}`,
        'content-type': 'application/gzip',
        'x-previewd-create': '{}',
      },
      body: project.archive,
    });
    const body = (await res.json()) as { id: string; runtime?: { dependencies?: string } };
    await server.app.service.delete(body.id);
    if (body.runtime?.dependencies === 'layer') return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`no dependency layer for ${project.name}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function forkToGood(server: TestServer, source: string, project: ViteProject): Promise<number> {
  const t0 = performance.now();
  const res = await server.call('POST', `/v1/sandboxes/${source}/fork`, {});
  if (res.status !== 201) throw new Error(`fork: ${JSON.stringify(res.body)}`);
  const id = res.body.id as string;
  const ms = await firstGood(server, previewHostOf(id, VITE_PORT), ['/', project.module], t0);
  await server.app.service.delete(id);
  return ms;
}

const median = (xs: number[]) => summary(xs).p50;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function projectsBench(opts: Options): Promise<void> {
  const fetched = await fetchViteProjects(opts.projects);
  const dataDir = await mkdtemp(join(tmpdir(), 'previewd-bench-layers-'));
  const projectRows: Record<string, string | number>[] = [];
  const staticRow: Record<string, string | number> = {};
  const say = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const plain = await startTestServer({ logLevel: 'silent', dataDir, 'dependencyLayers.enabled': true });
    const image = plain.app.config.images.node;
    const network = plain.app.config.docker.network;
    const perProject = new Map<string, { first: number; seen: number[]; fork: number[]; pooled: number[] }>();
    try {
      // The host's first sandbox also creates the network: not measured.
      const warmup = await staticToByte(plain);
      await plain.app.service.delete(warmup.id);
      const floor: number[] = [];
      const pooless: number[] = [];
      for (let i = 0; i < opts.rounds; i++) {
        floor.push(await dockerRunStatic(image, network, i));
        const s = await staticToByte(plain);
        pooless.push(s.ms);
        await plain.app.service.delete(s.id);
      }
      staticRow['docker run → 200'] = median(floor);
      staticRow['previewd, no pool'] = median(pooless);
      say(`static: docker run ${median(floor).toFixed(0)} ms, previewd ${median(pooless).toFixed(0)} ms`);
      for (const project of fetched.projects) {
        const first = await projectToGood(plain, project);
        say(`${project.name}: lockfile never seen → ${fmt(first.ms)}`);
        await plain.app.service.delete(first.id);
        const built = await layerBuilt(plain, project);
        say(`${project.name}: dependency layer ready ${fmt(built)} later`);
        const seen: number[] = [];
        const fork: number[] = [];
        for (let i = 0; i < opts.rounds; i++) {
          // Another app from the same template: its own name (in package.json and the lockfile).
          const r = await projectToGood(
            plain,
            project,
            await renamedArchive(project, `bench-${project.name}-${i}`),
          );
          seen.push(r.ms);
          fork.push(await forkToGood(plain, r.id, project));
          await plain.app.service.delete(r.id);
        }
        say(`${project.name}: lockfile seen → ${fmt(median(seen))}, fork → ${fmt(median(fork))}`);
        perProject.set(project.name, { first: first.ms, seen, fork, pooled: [] });
      }
    } finally {
      await plain.close();
    }
    // The same data dir (its layers) with a warm pool of the node image.
    const pooled = await startTestServer({
      logLevel: 'silent',
      dataDir,
      'dependencyLayers.enabled': true,
      pool: { [image]: opts.poolSize },
    });
    try {
      const warmup = await staticToByte(pooled);
      await pooled.app.service.delete(warmup.id);
      const fromPool: number[] = [];
      for (let i = 0; i < opts.rounds; i++) {
        await poolFull(pooled, image, opts.poolSize);
        const s = await staticToByte(pooled);
        fromPool.push(s.ms);
        await pooled.app.service.delete(s.id);
      }
      staticRow['previewd, warm pool'] = median(fromPool);
      say(`static: warm pool ${median(fromPool).toFixed(0)} ms`);
      for (const project of fetched.projects) {
        const row = perProject.get(project.name)!;
        for (let i = 0; i < opts.rounds; i++) {
          await poolFull(pooled, image, opts.poolSize);
          const r = await projectToGood(pooled, project, await renamedArchive(project, `bench-pool-${i}`));
          row.pooled.push(r.ms);
          await pooled.app.service.delete(r.id);
        }
        say(`${project.name}: lockfile seen + warm pool → ${fmt(median(row.pooled))}`);
      }
    } finally {
      await pooled.close();
    }
    for (const project of fetched.projects) {
      const row = perProject.get(project.name)!;
      projectRows.push({
        project: `create-vite ${fetched.projects[0]?.version} ${project.name}`,
        'lockfile never seen s': (row.first / 1000).toFixed(2),
        'lockfile seen s (p50)': (median(row.seen) / 1000).toFixed(2),
        'seen + warm pool s (p50)': (median(row.pooled) / 1000).toFixed(2),
        'fork → preview s (p50)': (median(row.fork) / 1000).toFixed(2),
        anchors: '≤ 3 s seen, ≤ 1.5 s pool, ≤ 2 s fork',
      });
    }
  } finally {
    await fetched.dispose();
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
  printTable(
    `create → first good byte (/ and the entry module answer 200), ${opts.rounds} rounds, medians`,
    projectRows,
  );
  printTable(`static site → first preview byte, ms (p50 of ${opts.rounds}; anchor: pool ≤ 300 ms)`, [
    staticRow,
  ]);
}

/** Waits (bounded) until the pool holds `size` warm containers of `image` again. */
async function poolFull(server: TestServer, image: string, size: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const res = await server.call('GET', '/v1/pool');
    const images = (res.body?.images ?? []) as { image: string; warm: number }[];
    if ((images.find((i) => i.image === image)?.warm ?? 0) >= size) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the pool of ${image} never refilled to ${size}`);
}
