/**
 * bench/io: sandbox I/O round trips through the HTTP API, beside the docker CLI as the floor,
 * measured in one run, interleaved, on one running sandbox.
 *
 *   node --import tsx bench/io.ts [N=50]
 *
 * - "file write (PUT) → visible inside": PUT /files round trip; when it returns the bytes are on
 *   the sandbox's bind mount. Each write is then checked from inside the container (untimed;
 *   mismatches are counted and must be 0).
 * - "write + read back inside": the PUT plus an exec of `cat` through the API, end to end.
 * - "exec true (API)": POST /exec `{cmd:["true"]}` round trip, JSON answer.
 * - "exec true (provider)": the same through the provider (dockerode) without HTTP.
 * - "docker exec true (CLI)": `docker exec <container> true`, the floor.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestServer, TEST_KEY } from '../test/helpers/server.js';
import { printTable, summary } from './stats.js';

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 50);

async function main(): Promise<void> {
  // Port scans exec into running sandboxes every interval; slow them down so they do not add noise.
  const server = await startTestServer({ 'io.portScanIntervalMs': 60_000 });
  try {
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const id = created.body.id as string;
    for (;;) {
      const res = await server.call('GET', `/v1/sandboxes/${id}`);
      if (res.body.state === 'running') break;
      if (res.body.state === 'error') throw new Error(JSON.stringify(res.body.error));
      await new Promise((r) => setTimeout(r, 20));
    }
    const container = `previewd-${id}`;
    const headers = { authorization: `Bearer ${TEST_KEY}` };
    const put = (path: string, body: string) =>
      fetch(`${server.url}/v1/sandboxes/${id}/files?path=${path}`, {
        method: 'PUT',
        headers: { ...headers, 'content-type': 'application/octet-stream' },
        body,
      }).then(async (r) => {
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`PUT ${r.status}`);
      });
    const exec = (cmd: string[]) =>
      fetch(`${server.url}/v1/sandboxes/${id}/exec`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ cmd }),
      }).then(async (r) => {
        const body = (await r.json()) as { stdout: string; exitCode: number };
        if (r.status !== 200) throw new Error(`exec ${r.status}`);
        return body;
      });

    // warm-up
    for (let i = 0; i < 5; i++) {
      await put('warm.txt', 'w');
      await exec(['true']);
      await run('docker', ['exec', container, 'true']);
    }

    const write: number[] = [];
    const writeRead: number[] = [];
    const apiExec: number[] = [];
    const providerExec: number[] = [];
    const cliExec: number[] = [];
    let mismatches = 0;
    for (let i = 0; i < N; i++) {
      const content = `payload-${i}-${Math.random()}`;
      let t0 = performance.now();
      await put(`bench/w-${i}.txt`, content);
      write.push(performance.now() - t0);
      const seen = await run('docker', ['exec', container, 'cat', `/workspace/bench/w-${i}.txt`]);
      if (seen.stdout !== content) mismatches++;

      t0 = performance.now();
      await put(`bench/r-${i}.txt`, content);
      const back = await exec(['cat', `bench/r-${i}.txt`]);
      writeRead.push(performance.now() - t0);
      if (back.stdout !== content) mismatches++;

      t0 = performance.now();
      await exec(['true']);
      apiExec.push(performance.now() - t0);

      t0 = performance.now();
      await server.app.provider.exec(id, { cmd: ['true'] });
      providerExec.push(performance.now() - t0);

      t0 = performance.now();
      await run('docker', ['exec', container, 'true']);
      cliExec.push(performance.now() - t0);
    }

    const floor = summary(cliExec).p50;
    const row = (name: string, samples: number[]) => {
      const s = summary(samples);
      return {
        measure: name,
        n: String(s.n),
        p50_ms: s.p50,
        p95_ms: s.p95,
        vs_docker_cli: `${(s.p50 / floor).toFixed(2)}x`,
      };
    };
    printTable(`bench/io — ${N} rounds, one running sandbox (${new Date().toISOString()})`, [
      row('file write (PUT) → visible inside', write),
      row('write + read back inside (PUT + exec cat)', writeRead),
      row('exec true (API, JSON)', apiExec),
      row('exec true (provider, no HTTP)', providerExec),
      row('docker exec true (CLI) [floor]', cliExec),
    ]);
    console.log(`\ncontent mismatches inside the container: ${mismatches}`);
  } finally {
    await server.close();
  }
}

await main();
