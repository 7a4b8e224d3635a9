import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Previewd } from '../../packages/sdk/src/index.js';
import { DiskUsage } from '../../src/usage/disk-usage.js';
import { HostUsageSource } from '../../src/usage/host-usage-source.js';
import { edge, previewHostOf } from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdefgh';
const MB = 1024 * 1024;

/** The sandboxes' app: `/big?mb=N` answers N MB (network out through the preview). */
const app = String.raw`require('http').createServer((q, s) => {
  const m = /\/big\?mb=(\d+)/.exec(q.url);
  s.end(m ? Buffer.alloc(Number(m[1]) * 1048576, 97) : 'ok');
}).listen(3000)`;

interface Sample {
  at: string;
  cpuPercent: number;
  memoryMb: number;
  diskMb: number;
  netRxBytes: number;
  netTxBytes: number;
}

describe('usage per sandbox, sampled from the real engine', () => {
  let server: TestServer;
  const ids = { alice: '', bob: '', admin: '' };
  const as = (key: string, method: string, path: string, body?: unknown) =>
    server.call(method, path, body, { authorization: `Bearer ${key}` });
  const metrics = async (id: string, since?: string) =>
    (
      await as(
        ALICE,
        'GET',
        `/v1/sandboxes/${id}/metrics${since ? `?since=${encodeURIComponent(since)}` : ''}`,
      )
    ).body as { intervalSec: number; retentionSec: number; samples: Sample[] };
  /** Samples of alice's sandbox taken after `afterMs`, once there are at least `n`. */
  const samplesAfter = (afterMs: number, n: number, timeoutMs = 20_000) =>
    waitFor(
      async () => {
        const { samples } = await metrics(ids.alice, String(afterMs));
        return samples.length >= n ? samples : undefined;
      },
      timeoutMs,
      `${n} samples after ${new Date(afterMs).toISOString()}`,
    );
  const latest = async () => (await samplesAfter(0, 1)).at(-1) as Sample;
  /** Waits until a sample says `check`; returns it. */
  const sampleWhere = (check: (s: Sample) => boolean, what: string, afterMs = Date.now()) =>
    waitFor(async () => (await metrics(ids.alice, String(afterMs))).samples.find(check), 20_000, what);
  const background = async (cmd: string) => {
    const res = await as(ALICE, 'POST', `/v1/sandboxes/${ids.alice}/processes`, { cmd });
    expect(res.status).toBe(201);
    return res.body.pid as number;
  };
  const kill = (pid: number) =>
    as(ALICE, 'POST', `/v1/sandboxes/${ids.alice}/processes/${pid}/kill`, { signal: 'KILL' });

  beforeAll(async () => {
    server = await startTestServer({
      apiKeys: [TEST_KEY, `${ALICE}:alice`, `${BOB}:bob`],
      'usage.intervalSec': 1,
      'usage.retentionSec': 120,
      'usage.prometheusMaxSandboxes': 2,
      'defaults.pauseAfterSec': 0,
    });
    for (const [who, key, diskMb] of [
      ['alice', ALICE, 256],
      ['bob', BOB, 64],
      ['admin', TEST_KEY, 64],
    ] as const) {
      const res = await as(key, 'POST', '/v1/sandboxes', {
        files: { 'server.js': app },
        runtime: { start: 'node server.js', port: 3000 },
        resources: { cpus: 1, memoryMb: 512, pids: 256, diskMb },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      ids[who] = res.body.id;
    }
    for (const id of Object.values(ids)) await waitState(server, id, 'running', 60_000);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
  });

  it('answers the interval, the retention and samples in the documented shape', async () => {
    await samplesAfter(0, 2);
    const body = await metrics(ids.alice);
    expect(body.intervalSec).toBe(1);
    expect(body.retentionSec).toBe(120);
    const s = body.samples.at(-1) as Sample;
    expect(Object.keys(s).sort()).toEqual(
      ['at', 'cpuPercent', 'diskMb', 'memoryMb', 'netRxBytes', 'netTxBytes'].sort(),
    );
    expect(new Date(s.at).toISOString()).toBe(s.at);
    expect(s.memoryMb).toBeGreaterThan(1); // node is running
    expect(s.memoryMb).toBeLessThan(512);
    expect(s.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(s.diskMb).toBeGreaterThanOrEqual(0);
  });

  it('a sandbox burning CPU shows cpuPercent > 50 within two samples', async () => {
    const pid = await background('node -e "for(;;){}"');
    const started = Date.now();
    try {
      const [first, second] = await samplesAfter(started, 2);
      expect(Math.max(first!.cpuPercent, second!.cpuPercent)).toBeGreaterThan(50);
      // One core at most: the sandbox has cpus: 1.
      expect(second!.cpuPercent).toBeLessThan(115);
    } finally {
      await kill(pid);
    }
    const quiet = await sampleWhere((s) => s.cpuPercent < 20, 'CPU back down after the kill');
    expect(quiet.cpuPercent).toBeLessThan(20);
  });

  it('a sandbox that allocates 100 MB shows it in memoryMb', async () => {
    const before = (await latest()).memoryMb;
    const pid = await background(
      `node -e "const b = Buffer.alloc(100 * 1048576, 1); setInterval(() => { b[0]++; }, 1000)"`,
    );
    try {
      const grown = await sampleWhere((s) => s.memoryMb >= before + 95, `memory past ${before + 95} MB`);
      expect(grown.memoryMb).toBeLessThan(before + 200);
    } finally {
      await kill(pid);
    }
    await sampleWhere((s) => s.memoryMb < before + 50, 'memory back down after the kill');
  });

  it('writing a 20 MB file raises diskMb', async () => {
    const before = (await latest()).diskMb;
    const res = await as(ALICE, 'POST', `/v1/sandboxes/${ids.alice}/exec`, {
      cmd: 'head -c 20971520 /dev/urandom > /workspace/big.bin && sync',
    });
    expect(res.body.exitCode).toBe(0);
    const grown = await sampleWhere((s) => s.diskMb >= before + 19.5, `disk past ${before + 19.5} MB`);
    expect(grown.diskMb).toBeLessThan(before + 40);
  });

  it('fetching through the preview raises netTxBytes (cumulative)', async () => {
    const before = await latest();
    const res = await edge(server, previewHostOf(ids.alice), '/big?mb=5');
    expect(res.statusCode).toBe(200);
    expect((await res.body.arrayBuffer()).byteLength).toBe(5 * MB);
    const after = await sampleWhere(
      (s) => s.netTxBytes >= before.netTxBytes + 5 * MB,
      'netTx past the 5 MB answer',
    );
    // The request came in: a little received, never counted back down.
    expect(after.netRxBytes).toBeGreaterThan(before.netRxBytes);
    const { samples } = await metrics(ids.alice);
    for (let i = 1; i < samples.length; i++)
      expect(samples[i]!.netTxBytes).toBeGreaterThanOrEqual(samples[i - 1]!.netTxBytes);
  });

  it('since filters: ISO time or epoch ms, exclusive; a bad one is a 400', async () => {
    await samplesAfter(0, 4);
    const { samples } = await metrics(ids.alice);
    const pivot = samples[samples.length - 3] as Sample;
    const newer = samples.slice(-2).map((s) => s.at);
    expect((await metrics(ids.alice, pivot.at)).samples.map((s) => s.at).slice(0, 2)).toEqual(newer);
    expect(
      (await metrics(ids.alice, String(Date.parse(pivot.at)))).samples.map((s) => s.at).slice(0, 2),
    ).toEqual(newer);
    expect((await metrics(ids.alice, new Date(Date.now() + 60_000).toISOString())).samples).toEqual([]);
    for (const bad of ['yesterday', '12:00', '-5']) {
      const res = await as(ALICE, 'GET', `/v1/sandboxes/${ids.alice}/metrics?since=${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });

  it("a tenant cannot read another owner's usage (404, as if it did not exist)", async () => {
    const res = await as(BOB, 'GET', `/v1/sandboxes/${ids.alice}/metrics`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('sandbox_not_found');
    expect((await as(BOB, 'GET', `/v1/sandboxes/${ids.bob}/metrics`)).status).toBe(200);
    expect((await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.alice}/metrics`)).status).toBe(200);
  });

  it('Prometheus: per-sandbox series for the top N by memory only, and how many were left out', async () => {
    await waitFor(async () => (server.app.usage.sampler.current().size === 3 ? true : undefined), 20_000);
    // Alice's sandbox holds the most memory for a while: it must be among the exported.
    const pid = await background(
      `node -e "const b = Buffer.alloc(60 * 1048576, 1); setInterval(() => { b[0]++; }, 1000)"`,
    );
    try {
      await sampleWhere((s) => s.memoryMb > 60, 'alice above 60 MB');
      const text = await (
        await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TEST_KEY}` } })
      ).text();
      const series = (name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`));
      for (const name of [
        'previewd_sandbox_cpu_percent',
        'previewd_sandbox_memory_mb',
        'previewd_sandbox_disk_mb',
        'previewd_sandbox_net_rx_bytes_total',
        'previewd_sandbox_net_tx_bytes_total',
      ])
        expect(series(name).length, name).toBe(2);
      expect(series('previewd_sandbox_memory_mb').some((l) => l.includes(`sandbox="${ids.alice}"`))).toBe(
        true,
      );
      expect(text).toMatch(/^previewd_sandbox_series_dropped 1$/m);
      expect(text).toContain('# TYPE previewd_sandbox_net_tx_bytes_total counter');
    } finally {
      await kill(pid);
    }
  });

  it('the engine stats fallback (one snapshot, no stream) reads the same container', async () => {
    const app = server.app;
    const row = await app.store.getSandbox(ids.alice);
    const storage = (app.provider as unknown as { storage: ConstructorParameters<typeof DiskUsage>[0] })
      .storage;
    const docker = (
      app.provider as unknown as { docker: ConstructorParameters<typeof HostUsageSource>[0]['docker'] }
    ).docker;
    const disk = new DiskUsage(storage, { now: () => Date.now() });
    const target = { sandboxId: ids.alice, containerId: row!.containerId! };
    const [viaEngine, viaHost] = await Promise.all([
      new HostUsageSource({ docker, disk, hostFiles: false }).read(target),
      new HostUsageSource({ docker, disk }).read(target),
    ]);
    expect(viaEngine && viaHost).toBeTruthy();
    expect(viaEngine!.cpuNs).toBeGreaterThan(1e9); // it burned a core for seconds above
    expect(Math.abs(viaEngine!.cpuNs - viaHost!.cpuNs)).toBeLessThan(2e9);
    expect(Math.abs(viaEngine!.memoryMb - viaHost!.memoryMb)).toBeLessThan(20);
    expect(viaEngine!.netTxBytes).toBeGreaterThan(5 * MB);
    expect(Math.abs(viaEngine!.netTxBytes - viaHost!.netTxBytes)).toBeLessThan(MB);
  });

  it('the SDKs: sandboxes.metrics(id, { since }) in TypeScript and Python', async () => {
    const sdk = new Previewd({ url: server.url, apiKey: ALICE });
    const all = await sdk.sandboxes.metrics(ids.alice);
    expect(all.intervalSec).toBe(1);
    expect(all.samples.length).toBeGreaterThan(3);
    const pivot = all.samples.at(-2)!;
    const newer = await sdk.sandboxes.metrics(ids.alice, { since: new Date(pivot.at) });
    expect(newer.samples[0]!.at).toBe(all.samples.at(-1)!.at);
    expect((await sdk.sandboxes.metrics(ids.alice, { since: Date.parse(pivot.at) })).samples[0]!.at).toBe(
      all.samples.at(-1)!.at,
    );
    await expect(
      new Previewd({ url: server.url, apiKey: BOB }).sandboxes.metrics(ids.alice),
    ).rejects.toMatchObject({
      code: 'sandbox_not_found',
    });
    const root = join(import.meta.dirname, '..', '..');
    const script = [
      'import json, sys',
      'from previewd import Previewd',
      'c = Previewd(url=sys.argv[1], api_key=sys.argv[2])',
      'm = c.sandboxes.metrics(sys.argv[3])',
      'n = c.sandboxes.metrics(sys.argv[3], since=m["samples"][-2]["at"])',
      'print(json.dumps({"count": len(m["samples"]), "interval": m["intervalSec"], "newer": [s["at"] for s in n["samples"]], "last": m["samples"][-1]["at"]}))',
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'python3',
        ['-c', script, server.url, ALICE, ids.alice],
        { env: { ...process.env, PYTHONPATH: join(root, 'packages/sdk-python/src') }, timeout: 30_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    const py = JSON.parse(out) as { count: number; interval: number; newer: string[]; last: string };
    expect(py.interval).toBe(1);
    expect(py.count).toBeGreaterThan(3);
    expect(py.newer[0]).toBe(py.last);
  });

  it('a deleted sandbox answers 404 and its samples are gone', async () => {
    expect(server.app.usage.sampler.samples(ids.admin).length).toBeGreaterThan(0);
    expect((await as(TEST_KEY, 'DELETE', `/v1/sandboxes/${ids.admin}`)).status).toBeLessThan(300);
    await waitFor(async () =>
      (await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.admin}`)).status === 404 ? true : undefined,
    );
    const res = await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.admin}/metrics`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('sandbox_not_found');
    await waitFor(
      async () => (server.app.usage.sampler.samples(ids.admin).length === 0 ? true : undefined),
      10_000,
    );
  });
});

describe('usage sampling turned off on a node', () => {
  let server: TestServer;
  let id = '';

  beforeAll(async () => {
    server = await startTestServer({ 'usage.enabled': false, 'usage.intervalSec': 1 });
    const res = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': app },
      runtime: { start: 'node server.js', port: 3000 },
      resources: { cpus: 1, memoryMb: 256, pids: 128, diskMb: 64 },
    });
    expect(res.status).toBe(201);
    id = res.body.id;
    await waitState(server, id, 'running', 60_000);
  }, 90_000);
  afterAll(async () => {
    await server?.close();
  });

  it('answers 409 usage_sampling_off with its hint, and samples nothing', async () => {
    const res = await server.call('GET', `/v1/sandboxes/${id}/metrics`);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('usage_sampling_off');
    expect(res.body.error.hint).toContain('usage.enabled');
    expect(server.app.usage.sampler.running).toBe(false);
    expect(server.app.usage.sampler.trackedCount).toBe(0);
    // An unknown sandbox is still a 404 first.
    expect((await server.call('GET', '/v1/sandboxes/01jzzzzzzzzzzzzzzzzzzzzzzz/metrics')).status).toBe(404);
  });
});
