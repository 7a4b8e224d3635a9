/**
 * bench/lifecycle: create → running through the HTTP API (p50/p95 over N sandboxes), beside a
 * plain `docker run` of the same image with the same options as the floor, measured in the same
 * run, interleaved, so the machine's noise hits both alike.
 *
 *   node --import tsx bench/lifecycle.ts [N=20]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestServer } from '../test/helpers/server.js';
import { printTable, summary } from './stats.js';

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 20);

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
  await run('docker', [
    'run',
    '-d',
    '--init',
    '--name',
    name,
    '--user',
    '1000:1000',
    '--network',
    'previewd',
    '--memory',
    '1024m',
    '--cpus',
    '1',
    '--pids-limit',
    '512',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges:true',
    image,
    'sleep',
    'infinity',
  ]);
  return { ms: performance.now() - t0, name };
}

async function main(): Promise<void> {
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
