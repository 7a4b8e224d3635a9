import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolationCheck } from '../../src/cli/commands/doctor.js';
import { loadConfig } from '../../src/config/load.js';
import { newSandboxId } from '../../src/domain/ids.js';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { gvisorHostPids } from '../../src/providers/docker/isolation.js';
import { containerName } from '../../src/providers/docker/labels.js';
import type { SandboxProvider, SpawnSpec } from '../../src/providers/provider.js';
import { containerMemoryMb } from '../../src/sandboxes/memory.js';
import { providerConformance } from '../conformance/provider.conformance.js';
import {
  createAppSandbox,
  edge,
  edgeJson,
  previewHostOf,
  waitState,
  wsConnect,
  wsRoundTrip,
} from '../helpers/edge.js';
import {
  type FakeInternet,
  PROBE_SCRIPT,
  type ProbeTarget,
  startFakeInternet,
} from '../helpers/fake-internet.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

/**
 * isolation "gvisor" on the real engine with the real runsc (registered by scripts/ensure-runsc.sh):
 * the provider contract, the boundary's settings, the API and the edge's core cases, and the
 * refusal when the engine lacks the runtime. The whole suite runs once more only for the provider
 * contract; the edge gets its core cases here (HTTP, streaming, SSE, WebSocket), not a second run
 * of edge-proxy.test.ts.
 */

const GVISOR_KERNEL = '4.4.0';
const docker = createDockerClient({ docker: { network: 'previewd' } as never });

function makeProvider(extra: Record<string, unknown> = {}): {
  provider: DockerProvider;
  dataDir: string;
  image: string;
} {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-gvisor-'));
  const { config } = loadConfig({ env: {}, cwd: dataDir, overrides: { dataDir, ...extra } });
  return {
    provider: new DockerProvider({ docker: createDockerClient(config), config }),
    dataDir,
    image: config.images.node,
  };
}

async function engineRuntime(sandboxId: string): Promise<string | undefined> {
  const info = await docker.getContainer(containerName(sandboxId)).inspect();
  return info.HostConfig.Runtime;
}

/**
 * The provider with every spawn asking for gVisor, and checking that the engine made the container
 * with the runsc runtime: the conformance suite below runs against gVisor sandboxes only.
 */
function gvisorOnly(provider: DockerProvider): SandboxProvider {
  return new Proxy(provider, {
    get(target, prop, receiver) {
      if (prop === 'spawn') {
        return async (spec: SpawnSpec) => {
          const made = await target.spawn({ ...spec, isolation: 'gvisor' });
          const runtime = await engineRuntime(spec.sandboxId);
          if (runtime !== 'runsc') throw new Error(`spawned with runtime ${runtime}, not runsc`);
          return made;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

providerConformance('docker, isolation gvisor (runsc)', async () => {
  const { provider, dataDir, image } = makeProvider();
  return {
    provider: gvisorOnly(provider),
    image,
    cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
});

describe('gVisor sandboxes: what the boundary looks like from inside', () => {
  const { provider, dataDir, image } = makeProvider();
  const gvisor = newSandboxId();
  const container = newSandboxId();
  const identity = { uid: 150_101, gid: 150_101 };

  const spawn = async (sandboxId: string, isolation: 'container' | 'gvisor') => {
    await provider.prepareWorkspace(sandboxId, { identity });
    await provider.spawn({
      sandboxId,
      identity,
      image,
      env: {},
      resources: { cpus: 0.5, memoryMb: 300, pids: 200 },
      labels: {},
      ports: [],
      isolation,
    });
    await provider.start(sandboxId);
  };
  const sh = async (sandboxId: string, script: string) =>
    (await provider.exec(sandboxId, { cmd: ['sh', '-c', script] })).stdout.toString().trim();

  beforeAll(async () => {
    await Promise.all([spawn(gvisor, 'gvisor'), spawn(container, 'container')]);
  }, 60_000);
  // Tearing down a gVisor sandbox after the process-limit test waits for the sentry to reap its
  // host tasks, which on a loaded machine took past the default two minutes once.
  afterAll(async () => {
    await Promise.all([provider.destroy(gvisor), provider.destroy(container)]);
    rmSync(dataDir, { recursive: true, force: true });
  }, 300_000);

  it('the engine lists gVisor, and a gvisor sandbox runs under runsc, a container one under runc', async () => {
    expect(await provider.isolationLevels()).toEqual(['container', 'gvisor']);
    expect(await engineRuntime(gvisor)).toBe('runsc');
    expect(await engineRuntime(container)).toBe('runc');
  });

  it("answers uname with gVisor's kernel (4.4.0), where container isolation shows the host's", async () => {
    expect(await sh(gvisor, 'uname -r')).toBe(GVISOR_KERNEL);
    expect(await sh(container, 'uname -r')).toBe(release());
    expect(release()).not.toBe(GVISOR_KERNEL);
  });

  it('keeps the same uid, capabilities and limits inside gVisor', async () => {
    expect(await sh(gvisor, 'id -u')).toBe('150101');
    expect(await sh(gvisor, "grep CapEff /proc/self/status | awk '{print $2}'")).toBe('0000000000000000');
    expect(await sh(gvisor, "grep CapBnd /proc/self/status | awk '{print $2}'")).toBe('0000000000000400');
    // gVisor shows no cgroup files inside; the limits are on the container, which holds the sentry.
    const info = await docker.getContainer(containerName(gvisor)).inspect();
    expect(info.HostConfig.Memory).toBe(300 * 1024 * 1024);
    // processes are bounded inside gVisor (RLIMIT_NPROC); the cgroup bounds the sentry's host tasks
    expect(info.HostConfig.Ulimits).toEqual([{ Name: 'nproc', Soft: 200, Hard: 200 }]);
    expect(info.HostConfig.PidsLimit).toBe(gvisorHostPids(200));
    expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges:true']);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(await sh(gvisor, 'touch /usr/x 2>&1 || echo refused')).toContain('refused');
    // the init process is PID 1, the command its child
    expect(await sh(gvisor, 'tr "\\0" " " < /proc/1/cmdline')).toContain('docker-init');
  });

  it('bounds the processes of a gVisor sandbox: fork fails inside (EAGAIN), the sandbox goes on', async () => {
    // 400 children against a bound of 200 tasks; the script counts, ends its children, then writes
    // the result into the workspace (read from the host: no exec while the sandbox is at its bound).
    const script = `
      const { spawn } = require('node:child_process');
      const kids = []; let refused = 0; let settled = 0;
      const done = () => { if (++settled < 400) return;
        for (const k of kids) k.kill('SIGKILL');
        setTimeout(() => { require('node:fs').writeFileSync('/workspace/forks.json', JSON.stringify({ started: kids.length, refused })); process.exit(0); }, 500); };
      for (let i = 0; i < 400; i++) {
        const child = spawn('sleep', ['30']);
        child.once('spawn', () => { kids.push(child); done(); });
        child.once('error', (err) => { if (err.code === 'EAGAIN') refused++; done(); });
      }`;
    await provider.startExec(gvisor, { cmd: ['node', '-e', script] });
    const files = provider.files(gvisor, identity);
    const result = await waitFor(
      async () => {
        const text = await files.read('forks.json').then(String, () => undefined);
        return text ? (JSON.parse(text) as { started: number; refused: number }) : undefined;
      },
      30_000,
      'the fork count',
    );
    expect(result.started).toBeGreaterThan(100);
    expect(result.started).toBeLessThan(200);
    expect(result.refused).toBe(400 - result.started);
    expect((await provider.inspect(gvisor)).status).toBe('running');
    expect(await sh(gvisor, 'echo still-here')).toBe('still-here');
  });

  it('mounts the workspace and the CA bundle (read-only) inside gVisor', async () => {
    await provider.files(gvisor, identity).write('hello.txt', 'from the host');
    expect(await sh(gvisor, 'cat /workspace/hello.txt')).toBe('from the host');
    await sh(gvisor, 'echo from-inside > /workspace/inside.txt');
    expect((await provider.files(gvisor, identity).read('inside.txt')).toString()).toBe('from-inside\n');
    expect(await sh(gvisor, 'head -c 27 "$NODE_EXTRA_CA_CERTS"')).toBe('-----BEGIN CERTIFICATE-----');
    expect(await sh(gvisor, 'touch "$NODE_EXTRA_CA_CERTS" 2>&1 || echo read-only')).toContain('read-only');
  });

  it("counts the sentry's memory (the app's memory is in its memfd) in the container's reading", async () => {
    const before = await containerMemoryMb((await docker.getContainer(containerName(gvisor)).inspect()).Id);
    const hold = await provider.startExec(gvisor, {
      cmd: [
        'node',
        '-e',
        'globalThis.b = Buffer.alloc(96 * 1024 * 1024, 1); console.log("held"); setInterval(() => {}, 1000)',
      ],
    });
    const id = (await docker.getContainer(containerName(gvisor)).inspect()).Id;
    const after = await waitFor(async () => {
      const mb = await containerMemoryMb(id);
      return mb !== undefined && before !== undefined && mb - before >= 90 ? mb : undefined;
    });
    expect(after).toBeGreaterThan(96);
    await hold.signal('KILL');
  });

  it('pauses and resumes a gVisor sandbox', async () => {
    await provider.pause(gvisor);
    expect((await provider.inspect(gvisor)).status).toBe('paused');
    await provider.unpause(gvisor);
    expect((await provider.inspect(gvisor)).status).toBe('running');
    expect(await sh(gvisor, 'echo awake')).toBe('awake');
  });
});

describe('gVisor sandboxes through the API and the edge', () => {
  let server: TestServer;
  let id: string;
  let host: string;

  beforeAll(async () => {
    server = await startTestServer({ 'io.portScanIntervalMs': 300 });
    ({ id } = await createAppSandbox(server, { isolation: 'gvisor' }));
    host = previewHostOf(id);
    await waitFor(async () => ((await edgeJson(server, host, '/echo')).status === 200 ? true : undefined));
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('shows the isolation on the sandbox and runs it under gVisor', async () => {
    const res = await server.call('GET', `/v1/sandboxes/${id}`);
    expect(res.body.isolation).toBe('gvisor');
    const uname = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['uname', '-r'] });
    expect(uname.body.stdout.trim()).toBe(GVISOR_KERNEL);
    // a sandbox created without one gets isolation.default (container)
    const plain = await server.call('POST', '/v1/sandboxes', {});
    expect(plain.status).toBe(201);
    expect(plain.body.isolation).toBe('container');
    await server.call('DELETE', `/v1/sandboxes/${plain.body.id}`);
  });

  it('proxies HTTP through the edge', async () => {
    const res = await edgeJson(server, host, '/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'gvisor' }),
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ method: 'POST', body: '{"hello":"gvisor"}' });
  });

  it('streams a chunked response without buffering', async () => {
    const res = await edge(server, host, '/chunked?gate=g1');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const iter = res.body[Symbol.asyncIterator]();
    expect(Buffer.from((await iter.next()).value).toString()).toBe('first-chunk\n');
    expect((await edgeJson(server, host, '/release?gate=g1')).body.released).toBe(true);
    let rest = '';
    for (let r = await iter.next(); !r.done; r = await iter.next()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe('last-chunk\n');
  });

  it('streams server-sent events', async () => {
    const res = await edge(server, host, '/sse?gate=g2', { headers: { accept: 'text/event-stream' } });
    const iter = res.body[Symbol.asyncIterator]();
    expect(Buffer.from((await iter.next()).value).toString()).toBe('data: one\n\n');
    await edgeJson(server, host, '/release?gate=g2');
    let rest = '';
    for (let r = await iter.next(); !r.done; r = await iter.next()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe('data: two\n\n');
  });

  it('proxies a WebSocket', async () => {
    const { ws, first } = await wsConnect(server, host, '/hmr?token=g');
    expect(JSON.parse(first)).toEqual({ host, forwardedHost: host, url: '/hmr?token=g' });
    expect(await wsRoundTrip(ws, 'ping')).toBe('ping');
    ws.close();
  });

  it('sees the ports a process opens inside gVisor (port.open, undeclared and loopback-only)', async () => {
    const event = (port: number) =>
      waitFor(
        async () =>
          (await server.app.bus.history({ sandboxId: id })).find(
            (e: any) => e.type === 'port.open' && e.data.port === port,
          ),
        30_000,
        `port.open ${port}`,
      );
    const open = await server.call('POST', `/v1/sandboxes/${id}/processes`, {
      cmd: ['node', '-e', "require('http').createServer((q, r) => r.end('ok')).listen(4100)"],
    });
    expect(open.status).toBe(201);
    expect(((await event(4100)) as any).data).toEqual({ port: 4100, declared: false, loopback: false });
    const local = await server.call('POST', `/v1/sandboxes/${id}/processes`, {
      cmd: ['node', '-e', "require('http').createServer((q, r) => r.end('ok')).listen(4101, '127.0.0.1')"],
    });
    expect(local.status).toBe(201);
    expect(((await event(4101)) as any).data).toEqual({ port: 4101, declared: false, loopback: true });
  });

  it('stops, and wakes on the next preview request', async () => {
    expect((await server.call('POST', `/v1/sandboxes/${id}/stop`)).status).toBe(200);
    await waitState(server, id, 'stopped');
    const res = await edgeJson(server, host, '/echo');
    expect(res.status).toBe(200);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
    const uname = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['uname', '-r'] });
    expect(uname.body.stdout.trim()).toBe(GVISOR_KERNEL);
  });
});

describe('network containment holds for gVisor sandboxes (runsc on the container network namespace)', () => {
  // runsc runs with --network=host: the sentry's sockets are real sockets in the container's own
  // namespace, so the host's iptables chains see the same packets as for runc. The outside is a
  // namespace this test makes (documentation range); private addresses live inside it.
  const REFUSED = 'EHOSTUNREACH';
  let internet: FakeInternet;
  let hostService: Server;
  let hostPort: number;
  let server: TestServer;
  let a: string;
  let b: string;

  beforeAll(async () => {
    // network-containment.test.ts may hold 169.254.169.254 at the same time.
    internet = await startFakeInternet({ metadata: '169.254.170.2' });
    hostService = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.end('host');
    });
    await new Promise<void>((r) => hostService.listen(0, '0.0.0.0', r));
    hostPort = (hostService.address() as AddressInfo).port;
    server = await startTestServer();
    const files = {
      'server.js': "require('node:http').createServer((q, s) => s.end('sandbox b')).listen(3000);\n",
    };
    const [ra, rb] = await Promise.all([
      server.call('POST', '/v1/sandboxes', {
        isolation: 'gvisor',
        runtime: { start: 'exec sleep infinity' },
      }),
      server.call('POST', '/v1/sandboxes', {
        isolation: 'gvisor',
        files,
        runtime: { start: 'node server.js', port: 3000 },
      }),
    ]);
    a = ra.body.id;
    b = rb.body.id;
    await Promise.all([waitState(server, a, 'running'), waitState(server, b, 'running')]);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    hostService?.close();
    await internet?.close();
  }, 60_000);

  const probe = async (targets: ProbeTarget[]) => {
    const res = await server.call('POST', `/v1/sandboxes/${a}/exec`, {
      cmd: ['node', '-e', PROBE_SCRIPT, JSON.stringify(targets)],
      timeoutSec: 30,
    });
    expect(res.body.exitCode, res.body.stderr).toBe(0);
    return JSON.parse(res.body.stdout) as string[];
  };

  it('reaches the internet, and not private or metadata addresses, the host, or another sandbox', async () => {
    expect(await engineRuntime(a)).toBe('runsc');
    // the control: the outside answers this very sandbox
    expect(await probe([{ host: internet.publicAddr, port: internet.httpPort }])).toEqual([
      `ok:internet ${internet.tag} ${internet.publicAddr}`,
    ]);
    const privates = Object.values(internet.privateAddrs).map((addr) => ({
      host: addr,
      port: internet.httpPort,
    }));
    expect(await probe(privates)).toEqual(privates.map(() => REFUSED));
    const net = await docker.getNetwork('previewd').inspect();
    const gateway = net.IPAM?.Config?.[0]?.Gateway as string;
    expect(await probe([{ host: gateway, port: hostPort }])).toEqual([REFUSED]);
    const bAddr = await server.app.provider.address(b, 3000);
    // the host reaches b (the edge's direction); a does not
    expect((await edgeJson(server, previewHostOf(b), '/')).status).toBe(200);
    expect(await probe([bAddr])).toEqual([REFUSED]);
  });
});

describe('gVisor refused where the engine lacks it', () => {
  const missing = 'previewd-test-no-such-runtime';
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ 'isolation.gvisorRuntime': missing });
  });
  afterAll(async () => {
    await server?.close();
  });

  const workspaces = () => {
    const dir = join(server.app.config.dataDir, 'sandboxes');
    return existsSync(dir) ? readdirSync(dir) : [];
  };

  it('answers 409 isolation_unavailable with how to get it, and creates nothing', async () => {
    const res = await server.call('POST', '/v1/sandboxes', { isolation: 'gvisor' });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('isolation_unavailable');
    expect(res.body.error.message).toContain(missing);
    expect(res.body.error.hint).toContain('ensure-runsc.sh');
    expect((await server.call('GET', '/v1/sandboxes')).body.sandboxes).toEqual([]);
    expect(workspaces()).toEqual([]);
  });

  it('still creates container sandboxes (the control)', async () => {
    const res = await server.call('POST', '/v1/sandboxes', { isolation: 'container' });
    expect(res.status).toBe(201);
    expect(res.body.isolation).toBe('container');
    await server.call('DELETE', `/v1/sandboxes/${res.body.id}`);
  });

  it('the provider maps the engine refusing the runtime to isolation_unavailable', async () => {
    const { provider, dataDir, image } = makeProvider({ 'isolation.gvisorRuntime': missing });
    const sandboxId = newSandboxId();
    const identity = { uid: 150_102, gid: 150_102 };
    try {
      expect(await provider.isolationLevels()).toEqual(['container']);
      await provider.prepareWorkspace(sandboxId, { identity });
      await expect(
        provider.spawn({
          sandboxId,
          identity,
          image,
          env: {},
          resources: { cpus: 0.5, memoryMb: 128, pids: 64 },
          labels: {},
          ports: [],
          isolation: 'gvisor',
        }),
      ).rejects.toMatchObject({ code: 'isolation_unavailable' });
    } finally {
      await provider.destroy(sandboxId);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('previewd doctor on isolation', () => {
  it('says gVisor is there, or how to get it (a failure when isolation.default needs it)', async () => {
    const check = (env: Record<string, string>) => isolationCheck(loadConfig({ env, cwd: tmpdir() }).config);
    expect(await check({})).toMatchObject({ status: 'ok', detail: expect.stringContaining('gvisor') });
    const missing = { PREVIEWD_ISOLATION_GVISOR_RUNTIME: 'previewd-test-no-such-runtime' };
    expect(await check(missing)).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('apt-get install runsc'),
    });
    expect(await check({ ...missing, PREVIEWD_ISOLATION: 'gvisor' })).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('ensure-runsc.sh'),
    });
  });
});

describe('isolation.default gvisor (PREVIEWD_ISOLATION)', () => {
  it('gives new sandboxes gVisor, and refuses them where the runtime is missing', async () => {
    const { config } = loadConfig({ env: { PREVIEWD_ISOLATION: 'gvisor' }, cwd: tmpdir() });
    expect(config.isolation.default).toBe('gvisor');
    const server = await startTestServer({ 'isolation.default': 'gvisor' });
    try {
      const res = await server.call('POST', '/v1/sandboxes', {});
      expect(res.status).toBe(201);
      expect(res.body.isolation).toBe('gvisor');
      await waitState(server, res.body.id, 'running');
      expect(await engineRuntime(res.body.id)).toBe('runsc');
    } finally {
      await server.close();
    }
    const without = await startTestServer({
      'isolation.default': 'gvisor',
      'isolation.gvisorRuntime': 'previewd-test-no-such-runtime',
    });
    try {
      const res = await without.call('POST', '/v1/sandboxes', {});
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('isolation_unavailable');
    } finally {
      await without.close();
    }
  }, 60_000);
});
