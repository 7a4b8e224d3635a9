/**
 * bench/lifecycle: create → running through the HTTP API (p50/p95 over N sandboxes), beside a
 * plain `docker run` of the same image with the same options as the floor, measured in the same
 * run, interleaved, so the machine's noise hits both alike. Then wake latency through the edge
 * (request → first byte) from paused and from stopped, and a density run: D idle Node sandboxes,
 * memory per sandbox (cgroup, without page cache) and previewd's own RSS. Last, the isolation
 * levels side by side: create → running, create → serving through the edge, and idle memory of a
 * Node sandbox, `container` (runc) and `gvisor` (runsc) interleaved, medians over R rounds.
 *
 *   node --import tsx bench/lifecycle.ts [N=20] [--wakes 10] [--density 50] [--isolation 5]
 *   (N=0 skips the create section; --wakes 0 / --density 0 / --isolation 0 skip theirs)
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import { containerMemoryMb } from '../src/sandboxes/memory.js';
import { startTestServer } from '../test/helpers/server.js';
import { sandboxLikeRunArgs } from './docker-floor.js';
import { printTable, summary } from './stats.js';

const run = promisify(execFile);
function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}
const positional =
  process.argv[2] !== undefined && !process.argv[2].startsWith('--') ? process.argv[2] : undefined;
const N = Number(positional ?? 20);
const WAKES = flag('wakes', 10);
/** Bounded: each sandbox is a container with a Node process. */
const DENSITY = Math.min(flag('density', 50), 200);
/** Rounds of the isolation comparison (one sandbox of each level per round). */
const ISOLATION_ROUNDS = Math.min(flag('isolation', 5), 50);
const nodeApp = `require('http').createServer((q,s)=>s.end('ok')).listen(3000)`;
type Server = Awaited<ReturnType<typeof startTestServer>>;

/** A GET through the edge until the first byte of the answer (headers received). */
async function edgeFirstByte(server: Server, id: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${server.edgeUrl}/`, {
    headers: { host: `3000-${id}.preview.localhost`, accept: 'application/json' },
  });
  const ms = performance.now() - t0;
  const body = await res.body.text();
  if (res.statusCode !== 200 || body !== 'ok') throw new Error(`edge answered ${res.statusCode}: ${body}`);
  return ms;
}

async function createNodeSandbox(server: Server, isolation?: 'container' | 'gvisor'): Promise<string> {
  const created = await server.call('POST', '/v1/sandboxes', {
    ...(isolation ? { isolation } : {}),
    runtime: { start: `node -e "${nodeApp}"`, port: 3000 },
    pauseAfterSec: 0,
    idleTimeoutSec: 0,
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  return created.body.id as string;
}

async function wakeBench(server: Server): Promise<void> {
  const id = await createNodeSandbox(server);
  await waitUntilServes(server, id);
  const fromPaused: number[] = [];
  const fromStopped: number[] = [];
  for (let i = 0; i < WAKES; i++) {
    await server.call('POST', `/v1/sandboxes/${id}/pause`);
    fromPaused.push(await edgeFirstByte(server, id));
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    fromStopped.push(await edgeFirstByte(server, id));
  }
  await server.call('DELETE', `/v1/sandboxes/${id}`);
  printTable(`wake through the edge, request → first byte, ${WAKES} wakes each (ms)`, [
    { from: 'paused (goal ≤ 150 ms)', ...summary(fromPaused) },
    { from: 'stopped (goal ≤ 1 s)', ...summary(fromStopped) },
  ]);
}

async function waitUntilServes(server: Server, id: string): Promise<void> {
  for (;;) {
    try {
      await edgeFirstByte(server, id);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function densityBench(server: Server): Promise<void> {
  const ids: string[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < DENSITY; i += 5) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(5, DENSITY - i) }, () => createNodeSandbox(server)),
      );
      ids.push(...batch);
      await Promise.all(batch.map((id) => waitUntilServes(server, id)));
    }
    const startedSec = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 5000)); // let them settle idle
    const perSandbox: number[] = [];
    for (const id of ids) {
      const record = await server.app.store.getSandbox(id);
      const mb = record?.containerId ? await containerMemoryMb(record.containerId) : undefined;
      if (mb !== undefined) perSandbox.push(mb);
    }
    const rssMb = process.memoryUsage().rss / 1024 / 1024;
    printTable(`density: ${ids.length} idle Node sandboxes (all serving after ${startedSec.toFixed(1)} s)`, [
      // Without page cache: the node binary's pages are cached once and shared by every sandbox.
      { what: 'memory per sandbox, MB (cgroup, no page cache)', ...summary(perSandbox) },
    ]);
    const total = perSandbox.reduce((a, b) => a + b, 0);
    console.log(`sum over sandboxes: ${total.toFixed(0)} MB`);
    console.log(`previewd RSS (in-process, includes this bench's client): ${rssMb.toFixed(0)} MB`);
  } finally {
    for (let i = 0; i < ids.length; i += 10) {
      await Promise.all(ids.slice(i, i + 10).map((id) => server.call('DELETE', `/v1/sandboxes/${id}`)));
    }
  }
}

/**
 * container vs gvisor, interleaved per round: create → running (API state), create → serving (the
 * app's first byte through the edge), then idle memory once every sandbox of the round settled:
 * the container's cgroup without page cache but with shared memory — for runsc that is the
 * sentry, the gofer and the app, whose memory lives in the sentry's memfd — and the host tasks in
 * its pids cgroup (runc: the app's threads; runsc: the sentry's and its stubs').
 */
async function isolationBench(server: Server): Promise<void> {
  const levels = await server.app.provider.isolationLevels?.();
  if (!levels?.includes('gvisor')) {
    console.log('\nisolation: gVisor is not available on this engine (scripts/ensure-runsc.sh); skipped');
    return;
  }
  const order = ['container', 'gvisor'] as const;
  const toRunning = { container: [] as number[], gvisor: [] as number[] };
  const toServing = { container: [] as number[], gvisor: [] as number[] };
  const memory = { container: [] as number[], gvisor: [] as number[] };
  const tasks = { container: [] as number[], gvisor: [] as number[] };
  for (let round = 0; round < ISOLATION_ROUNDS; round++) {
    const ids: Record<string, string> = {};
    for (const level of round % 2 === 0 ? order : [...order].reverse()) {
      const t0 = performance.now();
      const id = await createNodeSandbox(server, level);
      ids[level] = id;
      for (;;) {
        const res = await server.call('GET', `/v1/sandboxes/${id}`);
        if (res.body.state === 'running') break;
        if (res.body.state === 'error') throw new Error(`sandbox failed: ${JSON.stringify(res.body.error)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      toRunning[level].push(performance.now() - t0);
      await waitUntilServes(server, id);
      toServing[level].push(performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 3000)); // idle
    for (const level of order) {
      const record = await server.app.store.getSandbox(ids[level]!);
      const mb = record?.containerId ? await containerMemoryMb(record.containerId) : undefined;
      if (mb !== undefined) memory[level].push(mb);
      const pids = record?.containerId
        ? await readFile(`/sys/fs/cgroup/pids/docker/${record.containerId}/pids.current`, 'utf8').catch(
            () => '',
          )
        : '';
      if (pids) tasks[level].push(Number(pids));
      await server.call('DELETE', `/v1/sandboxes/${ids[level]}`);
    }
  }
  const row = (level: (typeof order)[number]) => ({
    isolation: level,
    'create→running ms': summary(toRunning[level]).p50,
    'create→serving ms': summary(toServing[level]).p50,
    'idle memory MB': summary(memory[level]).p50,
    'host tasks': tasks[level].length ? summary(tasks[level]).p50 : Number.NaN,
  });
  printTable(`isolation levels, idle Node sandbox, medians over ${ISOLATION_ROUNDS} rounds (interleaved)`, [
    row('container'),
    row('gvisor'),
  ]);
  console.log(
    'memory: the container cgroup without page cache, shared memory counted (runsc: sentry + gofer + app);' +
      ' host tasks: its pids cgroup (cgroup v1 path; NaN elsewhere)',
  );
}

async function apiCreateToRunning(
  server: Awaited<ReturnType<typeof startTestServer>>,
): Promise<{ ms: number; id: string }> {
  const t0 = performance.now();
  const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  for (;;) {
    const res = await server.call('GET', `/v1/sandboxes/${id}`);
    if (res.body.state === 'running') return { ms: performance.now() - t0, id };
    if (res.body.state === 'error') throw new Error(`sandbox failed: ${JSON.stringify(res.body.error)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function dockerRunFloor(image: string, i: number): Promise<{ ms: number; name: string }> {
  const name = `previewd-bench-floor-${process.pid}-${i}`;
  const t0 = performance.now();
  await run('docker', [...sandboxLikeRunArgs(name, 'previewd'), image, 'sleep', 'infinity']);
  return { ms: performance.now() - t0, name };
}

async function main(): Promise<void> {
  if (N > 0) await createBench();
  const lifecycle = await startTestServer({ logLevel: 'silent', 'admission.maxRunning': DENSITY + 10 });
  try {
    if (WAKES > 0) await wakeBench(lifecycle);
    if (DENSITY > 0) await densityBench(lifecycle);
    if (ISOLATION_ROUNDS > 0) await isolationBench(lifecycle);
  } finally {
    await lifecycle.close();
  }
}

async function createBench(): Promise<void> {
  const server = await startTestServer({ logLevel: 'silent' });
  const image = server.app.config.images.node;
  const api: number[] = [];
  const floor: number[] = [];
  const floorNames: string[] = [];
  try {
    // warm-up: one of each, not counted
    const warm = await apiCreateToRunning(server);
    await server.call('DELETE', `/v1/sandboxes/${warm.id}`);
    const warmFloor = await dockerRunFloor(image, -1);
    await run('docker', ['rm', '-f', warmFloor.name]);
    for (let i = 0; i < N; i++) {
      api.push((await apiCreateToRunning(server)).ms);
      const f = await dockerRunFloor(image, i);
      floor.push(f.ms);
      floorNames.push(f.name);
    }
  } finally {
    if (floorNames.length) await run('docker', ['rm', '-f', ...floorNames]).catch(() => undefined);
    await server.close();
  }
  const a = summary(api);
  const f = summary(floor);
  printTable(`create → running, ${N} sandboxes, sequential (ms)`, [
    { path: 'previewd API (POST + poll GET 5 ms)', ...a },
    { path: 'floor: docker run -d (CLI, same options)', ...f },
  ]);
  console.log(`\nratio p50 previewd / docker run: ${(a.p50 / f.p50).toFixed(2)}x`);
}

await main();
