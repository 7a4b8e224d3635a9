/**
 * bench/edge: the preview edge against the same upstream app reached directly (container IP) and
 * through nginx (keep-alive upstream), with wrk, in one run; then wake latency (stopped → first
 * byte through the edge, p50 of N) beside a plain engine start → port open as the floor.
 *
 * The edge is measured as previewd serves it (HAProxy front, one thread like nginx's one worker)
 * and, on the same server, its built-in edge alone (its loopback listener: what previewd serves
 * with edge.front "off"); a private preview of the same app (token in X-Previewd-Token) likewise,
 * through the front (HAProxy checks the token itself) and through the built-in edge. Each path runs --rounds times, in a rotating order; the tables give the
 * medians (the machine is noisy).
 *
 *   node --import tsx bench/edge.ts [--duration 5] [--rounds 3] [--wakes 10]
 *
 * Installs nginx-light and HAProxy from Debian when missing; needs wrk.
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { probePort } from '../src/edge/port-probe.js';
import { createDockerClient } from '../src/providers/docker/client.js';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { percentile, printTable, summary } from './stats.js';

const run = promisify(execFile);
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const DURATION = arg('duration', 5);
const WAKES = arg('wakes', 10);
const ROUNDS = arg('rounds', 3);

const APP = `
const http = require('node:http');
const page = '<!doctype html><title>bench</title><p>' + 'x'.repeat(1024 - 40) + '</p>';
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) });
  res.end(page);
}).listen(3000, '0.0.0.0');
`;

function ensureTools(): void {
  if (!existsSync('/usr/sbin/nginx')) {
    console.log('installing nginx-light from Debian…');
    execFileSync('apt-get', ['install', '-y', '-q', 'nginx-light'], { stdio: 'inherit' });
  }
  if (spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status !== 0) {
    console.log('installing haproxy from Debian…');
    execFileSync('apt-get', ['install', '-y', '-q', 'haproxy'], { stdio: 'inherit' });
  }
  if (!existsSync('/usr/bin/wrk')) {
    console.log('installing wrk from Debian…');
    execFileSync('apt-get', ['install', '-y', '-q', 'wrk'], { stdio: 'inherit' });
  }
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

async function wrk(
  url: string,
  host: string,
  load: { threads: number; connections: number } = { threads: 2, connections: 64 },
  headers: string[] = [],
): Promise<{ rps: number; p50: number; p99: number }> {
  const { stdout } = await run(
    'wrk',
    [
      `-t${load.threads}`,
      `-c${load.connections}`,
      `-d${DURATION}s`,
      '--latency',
      '-H',
      `Host: ${host}`,
      ...headers.flatMap((h) => ['-H', h]),
      url,
    ],
    {
      maxBuffer: 1 << 20,
    },
  ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  if (/Non-2xx/.test(stdout)) throw new Error(`wrk saw errors against ${url}:\n${stdout}`);
  return { rps, p50, p99 };
}

async function startNginx(dir: string, upstream: string, port: number): Promise<() => void> {
  for (const sub of ['cb', 'px', 'fc', 'uw', 'sc']) mkdirSync(join(dir, sub), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc;
  uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  upstream app { server ${upstream}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
}
`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await probePort('127.0.0.1', port, 100)); i++)
    await new Promise((r) => setTimeout(r, 50));
  return () => child.kill('SIGTERM');
}

async function firstByteThroughEdge(server: TestServer, host: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${server.edgeUrl}/`, { headers: { host, accept: '*/*' } });
  const ms = performance.now() - t0;
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`wake answered ${res.statusCode}`);
  return ms;
}

async function main(): Promise<void> {
  ensureTools();
  const server = await startTestServer({
    logLevel: 'silent',
    'docker.stopTimeoutSec': 1,
    'edge.front': 'haproxy',
    'edge.frontThreads': 1,
  });
  const front = server.app.edge.front!;
  const dir = mkdtempSync(join(tmpdir(), 'previewd-bench-edge-'));
  let stopNginx: (() => void) | undefined;
  let floorContainer: { remove(opts: { force: boolean }): Promise<unknown> } | undefined;
  try {
    const created = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': APP },
      runtime: { start: 'node server.js', port: 3000 },
    });
    const id = created.body.id as string;
    const host = `3000-${id}.preview.localhost`;
    // Until the built-in edge has reached the app and handed the route to the front.
    for (;;) {
      const res = await request(`${server.edgeUrl}/`, { headers: { host } }).catch(() => undefined);
      if (res) await res.body.dump();
      if (res?.statusCode === 200 && front.routes(host)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // The same app as a private preview: requests carry a token, HAProxy verifies it.
    const priv = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': APP },
      runtime: { start: 'node server.js', port: 3000 },
      visibility: 'private',
    });
    const privId = priv.body.id as string;
    const privHost = `3000-${privId}.preview.localhost`;
    const minted = await server.call('POST', `/v1/sandboxes/${privId}/preview-tokens`, { ttlSec: 86_400 });
    const tokenHeader = `X-Previewd-Token: ${minted.body.token as string}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const res = await request(`${server.edgeUrl}/`, {
        headers: { host: privHost, 'x-previewd-token': minted.body.token as string },
      }).catch(() => undefined);
      if (res) await res.body.dump();
      if (res?.statusCode === 200 && front.routes(privHost)) break;
      if (Date.now() > deadline) throw new Error('the private route was never published on the front');
      await new Promise((r) => setTimeout(r, 100));
    }
    const addr = await server.app.provider.address(id, 3000);
    const privAddr = await server.app.provider.address(privId, 3000);
    const nginxPort = 20000 + (process.pid % 20000);
    stopNginx = await startNginx(dir, `${addr.host}:${addr.port}`, nginxPort);

    const paths: { name: string; url: string; host: string; headers?: string[] }[] = [
      { name: 'direct (container IP)', url: `http://${addr.host}:${addr.port}/`, host },
      { name: 'nginx (1 worker)', url: `http://127.0.0.1:${nginxPort}/`, host },
      { name: 'previewd edge (HAProxy front, 1 thread)', url: `${server.edgeUrl}/`, host },
      { name: 'previewd built-in edge alone', url: `${server.app.edge.builtinUrl}/`, host },
      {
        name: 'private sandbox direct (its container IP)',
        url: `http://${privAddr.host}:${privAddr.port}/`,
        host: privHost,
      },
      {
        name: 'private preview, edge (HAProxy front checks the token)',
        url: `${server.edgeUrl}/`,
        host: privHost,
        headers: [tokenHeader],
      },
      {
        name: 'private preview, built-in edge alone',
        url: `${server.app.edge.builtinUrl}/`,
        host: privHost,
        headers: [tokenHeader],
      },
    ];
    const runs = paths.map(() => [] as { rps: number; p50: number; p99: number }[]);
    const fastBefore = (await front.serverTotals())['fast/app'] ?? 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < paths.length; k++) {
        const i = (k + round) % paths.length;
        runs[i]!.push(await wrk(paths[i]!.url, paths[i]!.host, undefined, paths[i]!.headers));
      }
    }
    const fastServed = ((await front.serverTotals())['fast/app'] ?? 0) - fastBefore;
    const med = runs.map((r) => ({
      rps: percentile(
        r.map((x) => x.rps),
        50,
      ),
      p50: percentile(
        r.map((x) => x.p50),
        50,
      ),
      p99: percentile(
        r.map((x) => x.p99),
        50,
      ),
    }));
    printTable(
      `Proxy throughput: wrk -t2 -c64 -d${DURATION}s, 1 KiB page, medians of ${ROUNDS} rounds in rotating order`,
      paths.map((p, i) => ({
        path: p.name,
        'req/s': String(Math.round(med[i]!.rps)),
        'p50 ms': med[i]!.p50,
        'p99 ms': med[i]!.p99,
        'each round req/s': runs[i]!.map((r) => Math.round(r.rps)).join(' / '),
      })),
    );
    const [direct, nginx, edge, builtin, privDirect, privEdge, privBuiltin] = med as [
      (typeof med)[0],
      (typeof med)[0],
      (typeof med)[0],
      (typeof med)[0],
      (typeof med)[0],
      (typeof med)[0],
      (typeof med)[0],
    ];
    console.log(
      `\nedge/nginx req/s: ${(edge.rps / nginx.rps).toFixed(2)}x (goal ≥ 0.8x)   built-in alone/nginx: ${(builtin.rps / nginx.rps).toFixed(2)}x   edge/direct: ${(edge.rps / direct.rps).toFixed(2)}x`,
    );
    console.log(
      `private preview/nginx req/s: edge ${(privEdge.rps / nginx.rps).toFixed(2)}x (goal ≥ 0.8x)   built-in alone ${(privBuiltin.rps / nginx.rps).toFixed(2)}x   private/public through the edge: ${(privEdge.rps / edge.rps).toFixed(2)}x   private edge/its direct: ${(privEdge.rps / privDirect.rps).toFixed(2)}x`,
    );
    console.log(
      `added p50 vs direct: edge ${(edge.p50 - direct.p50).toFixed(3)} ms (goal ≤ 1 ms), nginx ${(nginx.p50 - direct.p50).toFixed(3)} ms, built-in alone ${(builtin.p50 - direct.p50).toFixed(3)} ms`,
    );
    console.log(`requests HAProxy sent straight to the sandbox during the runs: ${fastServed}`);

    // Under saturation p50 mostly mirrors throughput (64 connections / req/s). The latency a hop
    // adds on its own: one connection, one request at a time.
    const single = paths.map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < paths.length; k++) {
        const i = (k + round) % paths.length;
        const p = paths[i]!;
        single[i]!.push((await wrk(p.url, p.host, { threads: 1, connections: 1 }, p.headers)).p50);
      }
    }
    const p50s = single.map((r) => percentile(r, 50));
    printTable(
      `Latency of one request at a time: wrk -t1 -c1 -d${DURATION}s, medians of ${ROUNDS} rounds (ms)`,
      paths.map((p, i) => ({
        path: p.name,
        p50: p50s[i]!.toFixed(3),
        'added p50': i === 0 ? '' : (p50s[i]! - p50s[0]!).toFixed(3),
      })),
    );
    stopNginx();
    stopNginx = undefined;

    // Wake latency: stopped → first byte through the edge, beside a plain container of the same
    // image and app on the same network: engine start → port open (the floor).
    const docker = createDockerClient(server.app.config);
    const floor = await docker.createContainer({
      name: `previewd-bench-floor-${process.pid}`,
      Image: server.app.config.images.node,
      Cmd: ['node', '-e', APP],
      User: '1000:1000',
      HostConfig: { Init: true, NetworkMode: server.app.config.docker.network },
    });
    floorContainer = floor;
    const wakes: number[] = [];
    const floors: number[] = [];
    for (let i = 0; i < WAKES; i++) {
      await server.call('POST', `/v1/sandboxes/${id}/stop`);
      wakes.push(await firstByteThroughEdge(server, host));

      const t0 = performance.now();
      await floor.start();
      const ip = (await floor.inspect()).NetworkSettings.Networks?.[server.app.config.docker.network]
        ?.IPAddress;
      while (!ip || !(await probePort(ip, 3000, 200))) await new Promise((r) => setTimeout(r, 5));
      floors.push(performance.now() - t0);
      await floor.stop({ t: 1 });
    }
    const w = summary(wakes);
    const f = summary(floors);
    printTable(`Wake latency over ${WAKES} wakes (ms)`, [
      { path: 'edge: stopped → first byte', p50: w.p50, p95: w.p95, min: w.min, max: w.max },
      { path: 'floor: engine start → port open', p50: f.p50, p95: f.p95, min: f.min, max: f.max },
    ]);
    console.log(`\nwake overhead over the floor (p50): ${(w.p50 - f.p50).toFixed(1)} ms`);
  } finally {
    stopNginx?.();
    await floorContainer?.remove({ force: true }).catch(() => undefined);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    if (existsSync(join(dir, 'error.log'))) console.log(readFileSync(join(dir, 'error.log'), 'utf8'));
  }
}

await main();
