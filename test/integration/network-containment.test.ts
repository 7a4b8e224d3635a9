import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, connect as tcpConnect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containmentCheck } from '../../src/cli/commands/doctor.js';
import { loadConfig } from '../../src/config/load.js';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { NetworkContainment, removeContainment } from '../../src/providers/docker/containment.js';
import { chainNames } from '../../src/providers/docker/containment-rules.js';
import { Iptables } from '../../src/providers/docker/iptables.js';
import {
  type FakeInternet,
  PROBE_SCRIPT,
  type ProbeTarget,
  startFakeInternet,
} from '../helpers/fake-internet.js';
import { startTestServer, type TestServer, waitFor, waitState } from '../helpers/server.js';

/**
 * Default network containment, against the real engine and real iptables. Every destination is on
 * this host: the test's own server on the host, and a network namespace the test makes (the
 * "internet" in a documentation range, private and metadata addresses inside it). Each refused
 * destination is first shown to answer from a container on an uncontained network (the control),
 * so a refusal proves the rule, not a missing route or a dead server.
 */

const REFUSED = 'EHOSTUNREACH'; // what the chains' REJECT (icmp-admin-prohibited) makes connect fail with
const docker = createDockerClient({ docker: { network: 'previewd' } } as never);
const iptables = new Iptables();

function gatewayOf(net: Docker.NetworkInspectInfo): string {
  const gw = net.IPAM?.Config?.[0]?.Gateway;
  if (!gw) throw new Error(`network ${net.Name} has no gateway`);
  return gw;
}

/** An IPv4 address of this host that belongs to no bridge, veth or test interface (eth0's here). */
function otherHostAddress(): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (/^(lo|docker|br-|veth|pvct)/.test(name)) continue;
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error('this host has no address besides loopback and bridges');
}

async function probeInSandbox(server: TestServer, id: string, targets: ProbeTarget[]): Promise<string[]> {
  const res = await server.call('POST', `/v1/sandboxes/${id}/exec`, {
    cmd: ['node', '-e', PROBE_SCRIPT, JSON.stringify(targets)],
    timeoutSec: 30,
  });
  expect(res.status).toBe(200);
  expect(res.body.exitCode, res.body.stderr).toBe(0);
  return JSON.parse(res.body.stdout);
}

async function probeInContainer(container: Docker.Container, targets: ProbeTarget[]): Promise<string[]> {
  const exec = await container.exec({
    Cmd: ['node', '-e', PROBE_SCRIPT, JSON.stringify(targets)],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const stdout = { write: (b: Buffer) => out.push(b) };
  docker.modem.demuxStream(stream, stdout as never, { write: () => undefined } as never);
  await new Promise((r) => stream.on('end', r));
  return JSON.parse(Buffer.concat(out).toString('utf8'));
}

/** Connects from the host itself: the edge's direction, which the containment must keep working. */
function connectFromHost(host: string, port: number): Promise<string> {
  return new Promise((done) => {
    const s = tcpConnect({ host, port });
    let data = '';
    s.setTimeout(4000, () => {
      s.destroy();
      done('timeout');
    });
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (d) => {
      data += d;
    });
    s.on('end', () => done(`ok:${data.split('\n').pop()}`));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/** A TCP server on the host's 0.0.0.0 (random port) that says who it is: what sandboxes must not reach. */
async function hostService(tag: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.end(`host ${tag}`);
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('sandbox network containment (real engine, real iptables, a namespace for the outside)', () => {
  let internet: FakeInternet;
  let host: { server: Server; port: number };
  let server: TestServer;
  let a: string;
  let b: string;
  let bAddr: { host: string; port: number };
  let control: Docker.Container | undefined;
  let controlNet: Docker.Network | undefined;
  let gateways: { previewd: string; docker0: string; other: string };

  beforeAll(async () => {
    internet = await startFakeInternet();
    host = await hostService(internet.tag);
    server = await startTestServer(); // the default configuration: containment "auto", network "previewd"
    const files = {
      'server.js':
        "require('node:http').createServer((q, s) => s.end('sandbox b')).listen(3000, '0.0.0.0');\n",
    };
    const [ra, rb] = await Promise.all([
      server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } }),
      server.call('POST', '/v1/sandboxes', { files, runtime: { start: 'node server.js', port: 3000 } }),
    ]);
    a = ra.body.id;
    b = rb.body.id;
    await Promise.all([waitState(server, a, 'running'), waitState(server, b, 'running')]);
    bAddr = await server.app.provider.address(b, 3000);
    const previewdNet = await docker.getNetwork('previewd').inspect();
    // docker0's address (the default bridge's IPAM names no gateway; Node lists no interface that is down)
    const docker0 = /inet (\S+)\//.exec(
      execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'docker0'], { encoding: 'utf8' }),
    )?.[1];
    if (!docker0) throw new Error('no docker0 address on this host');
    gateways = { previewd: gatewayOf(previewdNet), docker0, other: otherHostAddress() };

    // The control: the same image on a network previewd does not contain.
    controlNet = await docker.createNetwork({ Name: `pvdct-ctl-${internet.tag}`, Driver: 'bridge' });
    control = await docker.createContainer({
      Image: server.app.config.images.node,
      Cmd: ['sleep', 'infinity'],
      User: '1000:1000',
      HostConfig: { NetworkMode: `pvdct-ctl-${internet.tag}`, Init: true, AutoRemove: false },
      Labels: { 'previewd.test': 'network-containment' },
    });
    await control.start();
  }, 120_000);

  afterAll(async () => {
    await control?.remove({ force: true }).catch(() => undefined);
    await controlNet?.remove().catch(() => undefined);
    await server?.close();
    host?.server.close();
    await internet?.close();
  }, 60_000);

  const internetTargets = () => [
    { host: internet.publicAddr, port: internet.httpPort },
    { host: internet.publicAddr, port: internet.tlsPort, tls: true },
  ];
  const answer = (addr: string) => `ok:internet ${internet.tag} ${addr}`;
  const privateTargets = () =>
    Object.values(internet.privateAddrs).map((addr) => ({ host: addr, port: internet.httpPort }));
  const hostTargets = () =>
    [gateways.previewd, gateways.docker0, gateways.other].map((addr) => ({ host: addr, port: host.port }));

  it('control: every destination answers from a container on an uncontained network', async () => {
    const results = await probeInContainer(control!, [
      ...internetTargets(),
      ...privateTargets(),
      ...hostTargets(),
    ]);
    expect(results).toEqual([
      answer(internet.publicAddr),
      answer(internet.publicAddr),
      ...Object.values(internet.privateAddrs).map(answer),
      ...hostTargets().map(() => `ok:host ${internet.tag}`),
    ]);
  });

  it('a sandbox reaches the internet: HTTP and TLS to the namespace host in a documentation range', async () => {
    expect(await probeInSandbox(server, a, internetTargets())).toEqual([
      answer(internet.publicAddr),
      answer(internet.publicAddr),
    ]);
  });

  it('a sandbox cannot reach private, CGNAT or metadata addresses (all inside the test namespace)', async () => {
    const results = await probeInSandbox(server, a, privateTargets());
    expect(Object.fromEntries(Object.keys(internet.privateAddrs).map((k, i) => [k, results[i]]))).toEqual(
      Object.fromEntries(Object.keys(internet.privateAddrs).map((k) => [k, REFUSED])),
    );
  });

  it("a sandbox cannot reach a host service on 0.0.0.0 through any gateway or the host's own address", async () => {
    expect(await probeInSandbox(server, a, hostTargets())).toEqual([REFUSED, REFUSED, REFUSED]);
    // …while the host itself still reaches it on those addresses
    expect(await connectFromHost(gateways.previewd, host.port)).toBe(`ok:host ${internet.tag}`);
  });

  it('a sandbox cannot reach another sandbox; the host (edge, port scanner) still reaches both', async () => {
    expect(await connectFromHost(bAddr.host, bAddr.port)).toBe('ok:sandbox b');
    expect(await probeInSandbox(server, a, [bAddr])).toEqual([REFUSED]);
  });

  it('jumps to its chains once however many control planes started; the resolvers stay reachable', async () => {
    const id = (await docker.getNetwork('previewd').inspect()).Id;
    const { inputChain, forwardChain } = chainNames(id);
    for (const [builtin, chain] of [
      ['INPUT', inputChain],
      ['DOCKER-USER', forwardChain],
    ] as const) {
      const jumps = ((await iptables.list(builtin)) ?? []).filter((l) => l.endsWith(`-j ${chain}`));
      expect(jumps, builtin).toHaveLength(1);
    }
    // the resolvers containers are given stay reachable (Docker's DNS forwards from the sandbox's namespace)
    const resolvers = execFileSync('sh', ['-c', "awk '/^nameserver/{print $2}' /etc/resolv.conf"], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter((r) => r && !r.startsWith('127.') && !r.includes(':'));
    const fwd = (await iptables.list(forwardChain)) ?? [];
    for (const r of resolvers) {
      expect(fwd).toContain(`-A ${forwardChain} -d ${r}/32 -p udp -m udp --dport 53 -j RETURN`);
      expect(fwd).toContain(`-A ${forwardChain} -d ${r}/32 -p tcp -m tcp --dport 53 -j RETURN`);
    }
  });
});

describe('containment with network.allowPrivate and network.allowEdge (its own network)', () => {
  let internet: FakeInternet;
  let host: { server: Server; port: number };
  let server: TestServer;
  let id: string;
  let networkId = '';
  let gateway: string;
  const network = `pvdct-net-${Date.now().toString(36)}`;

  beforeAll(async () => {
    internet = await startFakeInternet();
    host = await hostService(internet.tag);
    server = await startTestServer({
      'docker.network': network,
      edgeAddr: '0.0.0.0:0',
      'network.allowPrivate': [`${internet.privateAddrs.rfc1918a}/32`],
      'network.allowEdge': true,
      'network.checkIntervalSec': 0.5,
    });
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    id = created.body.id;
    await waitState(server, id, 'running');
    const net = await docker.getNetwork(network).inspect();
    networkId = net.Id;
    gateway = gatewayOf(net);
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    // This network and its chains are the test's own: remove both.
    if (networkId) await removeContainment(iptables, networkId);
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
    host?.server.close();
    await internet?.close();
  }, 60_000);

  it('reaches the allowed private address and the edge port; the rest stays refused', async () => {
    const edgePort = Number(new URL(server.edgeUrl).port);
    const results = await probeInSandbox(server, id, [
      { host: internet.privateAddrs.rfc1918a, port: internet.httpPort },
      { host: internet.privateAddrs.rfc1918b, port: internet.httpPort },
      { host: internet.privateAddrs.metadata, port: internet.httpPort },
      { host: gateway, port: edgePort },
      { host: gateway, port: host.port },
      { host: internet.publicAddr, port: internet.httpPort },
    ]);
    expect(results[0]).toBe(`ok:internet ${internet.tag} ${internet.privateAddrs.rfc1918a}`);
    expect(results.slice(1, 3)).toEqual([REFUSED, REFUSED]);
    expect(results[3]).toMatch(/^ok:/); // the edge answers (a 404 page for this Host)
    expect(results[4]).toBe(REFUSED);
    expect(results[5]).toBe(`ok:internet ${internet.tag} ${internet.publicAddr}`);
  });

  it('changes nothing when run again, and doctor finds it in place', async () => {
    // This network is the test's own: no other control plane writes its chains.
    const again = await server.app.containment.ensure();
    expect(again).toMatchObject({ state: 'ok', changed: false });
    // doctor reads the edge port from the configuration: the one this server bound
    const edgeAddr = `0.0.0.0:${new URL(server.edgeUrl).port}`;
    const doctor = await containmentCheck({ ...server.app.config, edgeAddr });
    expect(doctor, doctor.detail).toMatchObject({ check: 'network containment', status: 'ok' });
  });

  it('keeps one jump when two control planes inserted it, and removes the chains of a network that is gone', async () => {
    const { forwardChain } = chainNames(networkId);
    const jump = [
      '-i',
      `br-${networkId.slice(0, 12)}`,
      '-m',
      'comment',
      '--comment',
      'previewd sandbox containment',
      '-j',
      forwardChain,
    ];
    await iptables.run(['-I', 'DOCKER-USER', '1', ...jump]);
    const count = async () =>
      ((await iptables.list('DOCKER-USER')) ?? []).filter((l) => l.endsWith(`-j ${forwardChain}`)).length;
    expect(await count()).toBe(2);
    await server.app.containment.ensure();
    expect(await count()).toBe(1);

    // a sandbox network that another control plane contained, then removed
    const goneName = `${network}-gone`;
    const gone = await docker.createNetwork({ Name: goneName, Driver: 'bridge' });
    const goneChains = chainNames(gone.id);
    try {
      const other = new NetworkContainment({
        docker,
        config: { ...server.app.config, docker: { ...server.app.config.docker, network: goneName } },
        networkId: async () => gone.id,
      });
      expect((await other.ensure()).state).toBe('ok');
      expect(await iptables.list(goneChains.forwardChain)).toBeDefined();
    } finally {
      await gone.remove();
    }
    await server.app.containment.ensure();
    expect(await iptables.list(goneChains.inputChain)).toBeUndefined();
    expect(await iptables.list(goneChains.forwardChain)).toBeUndefined();
    const all = (await iptables.run(['-S'])).stdout;
    expect(all).not.toContain(gone.id.slice(0, 12));
  });

  it("keeps the host's HTTP proxy reachable at a private address, that port only", async () => {
    const proxy = internet.privateAddrs.rfc1918b;
    const targets = [
      { host: proxy, port: internet.httpPort },
      { host: proxy, port: internet.tlsPort, tls: true },
    ];
    await server.app.containment.stop(); // its own settings have no proxy: hold it meanwhile
    try {
      const withProxy = new NetworkContainment({
        docker,
        config: server.app.config,
        networkId: async () => networkId,
        edgePorts: () => [Number(new URL(server.edgeUrl).port)],
        env: { HTTP_PROXY: `http://${proxy}:${internet.httpPort}` },
      });
      expect((await withProxy.ensure()).state).toBe('ok');
      expect(await probeInSandbox(server, id, targets)).toEqual([
        `ok:internet ${internet.tag} ${proxy}`,
        REFUSED,
      ]);
    } finally {
      server.app.containment.start();
    }
    expect((await server.app.containment.ensure()).changed).toBe(true); // back to its own settings
    expect(await probeInSandbox(server, id, targets)).toEqual([REFUSED, REFUSED]);
  });

  it('puts back rules that were flushed or removed (an engine or firewall restart)', async () => {
    const { inputChain, forwardChain } = chainNames(networkId);
    await server.app.containment.stop(); // hold the re-assertion while the rules are broken
    await iptables.run(['-F', forwardChain]);
    const jump = ((await iptables.list('INPUT')) ?? []).find((l) => l.endsWith(`-j ${inputChain}`));
    expect(jump).toBeDefined();
    await iptables.run([
      '-D',
      'INPUT',
      '-i',
      `br-${networkId.slice(0, 12)}`,
      '-m',
      'comment',
      '--comment',
      'previewd sandbox containment',
      '-j',
      inputChain,
    ]);
    const broken = await containmentCheck(server.app.config);
    expect(broken).toMatchObject({ status: 'warn', detail: expect.stringContaining('not installed') });
    expect(broken.fix).toBeTruthy();
    server.app.containment.start();
    await waitFor(
      async () => ((await server.app.containment.check()).state === 'ok' ? true : undefined),
      20_000,
      'the containment to be re-asserted',
    );
    const results = await probeInSandbox(server, id, [
      { host: internet.privateAddrs.metadata, port: internet.httpPort },
      { host: gateway, port: host.port },
    ]);
    expect(results).toEqual([REFUSED, REFUSED]);
  });

  it('doctor names the fix when the rules are missing, and says when containment is off', async () => {
    const { config } = loadConfig({
      env: {},
      cwd: server.dataDir,
      overrides: { dataDir: server.dataDir, 'docker.network': 'pvdct-no-such-network' },
    });
    const missing = await containmentCheck(config);
    expect(missing.status).toBe('warn');
    expect(missing.fix).toBeTruthy();
    const off = await containmentCheck({ ...config, network: { ...config.network, containment: 'off' } });
    expect(off).toMatchObject({ status: 'warn', detail: expect.stringContaining('off') });
  });
});

describe('without iptables or without root: a warning, or a refusal in "required" mode', () => {
  const fixture = resolve('test/fixtures/containment-start.ts');
  const noIptablesPath = '/usr/local/bin:/usr/bin:/bin';
  let dataDir: string;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'previewd-containment-'));
    chmodSync(dataDir, 0o777); // the unprivileged run writes its key and store here
    // the premise: nothing on this PATH is an iptables binary
    for (const dir of noIptablesPath.split(':')) expect(existsSync(join(dir, 'iptables'))).toBe(false);
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const run = (args: string[], opts: { path?: string; asNobody?: boolean } = {}) => {
    const argv = [process.execPath, '--import', 'tsx', fixture, ...args];
    const [file, ...rest] = opts.asNobody
      ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv]
      : argv;
    const out = execFileSync(file!, rest, {
      encoding: 'utf8',
      env: { PATH: opts.path ?? process.env.PATH, HOME: dataDir, TMPDIR: dataDir },
      timeout: 120_000,
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  };

  it('"required" refuses to start when iptables is missing, naming the setting and the fix', () => {
    const res = run(['start', join(dataDir, 'required'), 'required'], { path: noIptablesPath });
    expect(res.started).toBe(false);
    expect(res.error).toContain('network.containment is "required" but iptables is not installed');
    expect(res.error).toContain('apt-get install iptables');
  });

  it('"auto" starts with a warning that names the fix', () => {
    const res = run(['start', join(dataDir, 'auto'), 'auto'], { path: noIptablesPath });
    expect(res.started).toBe(true);
    expect(res.warnings).toContainEqual({
      msg: 'sandbox network containment: iptables is not installed',
      fix: expect.stringContaining('apt-get install iptables'),
    });
  });

  it('doctor as an unprivileged user: warns in "auto", fails in "required", both with the fix', () => {
    const auto = run(['doctor', dataDir, 'auto'], { asNobody: true });
    expect(auto).toMatchObject({ status: 'warn', detail: expect.stringContaining('previewd is not root') });
    expect(auto.fix).toContain('root');
    const required = run(['doctor', dataDir, 'required'], { asNobody: true });
    expect(required).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('previewd is not root'),
    });
  });
});
