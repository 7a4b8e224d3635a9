import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containmentCheck } from '../../src/cli/commands/doctor.js';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { removeContainment } from '../../src/providers/docker/containment.js';
import { Iptables } from '../../src/providers/docker/iptables.js';
import { type FakeWeb, NAMED_PROBE, startFakeWeb } from '../helpers/fake-web.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

/**
 * The per-sandbox egress policy against the real engine, real iptables and the real egress proxy.
 * Every destination is in a network namespace the test makes (fake-web.ts):
 * `allowed.test` → the internet address, `denied.test` → a second documentation address,
 * `rebind.test` → a private address inside the namespace; the proxy resolves through the
 * namespace's DNS stub (network.egressResolver). Each refusal has its control: the same
 * destination answering a sandbox whose policy is `allow`.
 */

const REFUSED = 'EHOSTUNREACH';
const docker = createDockerClient({ docker: { network: 'previewd' } } as never);
const iptables = new Iptables();

interface Target {
  addr: string;
  port: number;
  name: string;
  tls?: boolean;
}

async function probe(server: TestServer, id: string, targets: Target[]): Promise<string[]> {
  const res = await server.call('POST', `/v1/sandboxes/${id}/exec`, {
    cmd: ['node', '-e', NAMED_PROBE, JSON.stringify(targets)],
    timeoutSec: 30,
  });
  expect(res.status).toBe(200);
  expect(res.body.exitCode, res.body.stderr).toBe(0);
  return JSON.parse(res.body.stdout);
}

async function deniedEvents(server: TestServer, id: string): Promise<unknown[]> {
  const events = await server.app.bus.history({ afterId: 0, sandboxId: id, limit: 1000 });
  return events.filter((e) => e.type === 'egress.denied').map((e) => e.data);
}

async function deniedCounter(server: TestServer, reason: string, port: number): Promise<number> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
  const line = (await res.text())
    .split('\n')
    .find(
      (l) =>
        l.startsWith('previewd_egress_denied_total{') &&
        l.includes(`reason="${reason}"`) &&
        l.includes(`port="${port}"`),
    );
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('egress policy per sandbox (real engine, iptables, egress proxy; the outside in a namespace)', () => {
  let web: FakeWeb;
  let server: TestServer;
  let open: string; // policy allow: the control
  let listed: string; // policy list: allowed.test and rebind.test
  let alices: string; // alice's: her owner's policy (network.egressByOwner)
  let networkId = '';
  const network = `pvdeg-net-${Date.now().toString(36)}`;

  beforeAll(async () => {
    web = await startFakeWeb((w) => ({
      'allowed.test': w.publicAddr,
      'denied.test': w.otherAddr,
      'rebind.test': w.privateAddr,
    }));
    server = await startTestServer({
      'docker.network': network,
      'network.egressResolver': web.resolver,
      'network.egressByOwner': { alice: { egress: 'list', allow: ['denied.test'] } },
    });
    const sleep = { runtime: { start: 'exec sleep infinity' } };
    const [a, b, c] = await Promise.all([
      server.call('POST', '/v1/sandboxes', sleep),
      server.call('POST', '/v1/sandboxes', {
        ...sleep,
        network: { egress: 'list', allow: ['allowed.test', 'rebind.test'] },
      }),
      server.call('POST', '/v1/sandboxes', sleep, { 'x-previewd-owner': 'alice' }),
    ]);
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    open = a.body.id;
    listed = b.body.id;
    alices = c.body.id;
    await Promise.all([open, listed, alices].map((id) => waitState(server, id, 'running')));
    networkId = (await docker.getNetwork(network).inspect()).Id;
    // the rules follow the sandboxes' start (an event away)
    await waitFor(
      async () => {
        const nat = (await iptables.list(`PREVIEWD-EGR-${networkId.slice(0, 12)}`, 'nat')) ?? [];
        return nat.some((l) => l.includes('REDIRECT')) ? true : undefined;
      },
      20_000,
      'the redirect of the listed sandbox',
    );
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    if (networkId) await removeContainment(iptables, networkId);
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
    await web?.close();
  }, 60_000);

  const A = () => web.publicAddr;
  const B = () => web.otherAddr;
  const answer = (addr: string) => `ok:web ${addr}`;

  it('shows the sandbox its policy: its own, or the default', async () => {
    const [o, l] = await Promise.all([
      server.call('GET', `/v1/sandboxes/${open}`),
      server.call('GET', `/v1/sandboxes/${listed}`),
    ]);
    expect(o.body.network).toEqual({ egress: 'allow', allow: [], deny: [] });
    expect(l.body.network).toEqual({ egress: 'list', allow: ['allowed.test', 'rebind.test'], deny: [] });
  });

  it('writes the egress rules once (running again changes nothing); doctor finds the containment in place', async () => {
    expect(await server.app.containment.ensure()).toMatchObject({ state: 'ok', changed: false });
    const fwd = (await iptables.list(`PREVIEWD-FWD-${networkId.slice(0, 12)}`)) ?? [];
    expect(fwd.some((l) => l.includes('"previewd egress"'))).toBe(true); // the listed sandbox's CIDR rules
    const doctor = await containmentCheck(server.app.config);
    expect(doctor, doctor.detail).toMatchObject({ check: 'network containment', status: 'ok' });
  });

  it('control: with egress allow, both hosts answer over HTTP and TLS, on 80/443 and other ports', async () => {
    expect(
      await probe(server, open, [
        { addr: A(), port: 443, name: 'allowed.test', tls: true },
        { addr: B(), port: 443, name: 'denied.test', tls: true },
        { addr: B(), port: 80, name: 'denied.test' },
        { addr: A(), port: web.otherPort, name: 'x' },
      ]),
    ).toEqual([answer(A()), answer(B()), answer(B()), answer(A())]);
  });

  it('list: the allowed name answers over TLS (SNI) and HTTP (Host); the denied one does not, with an event and a counter', async () => {
    const before = await deniedCounter(server, 'not_listed', 443);
    const results = await probe(server, listed, [
      { addr: A(), port: 443, name: 'allowed.test', tls: true },
      { addr: A(), port: 80, name: 'allowed.test' },
      { addr: B(), port: 443, name: 'denied.test', tls: true },
      { addr: B(), port: 80, name: 'denied.test' },
    ]);
    expect(results.slice(0, 2)).toEqual([answer(A()), answer(A())]);
    expect(results[2]).not.toMatch(/^ok:/);
    expect(results[3]).toBe('ok:egress refused by previewd (not_listed)');
    expect(await deniedCounter(server, 'not_listed', 443)).toBeGreaterThan(before);
    const events = await waitFor(
      async () => {
        const e = await deniedEvents(server, listed);
        return e.some((d) => (d as { host?: string }).host === 'denied.test') ? e : undefined;
      },
      10_000,
      'the egress.denied event',
    );
    expect(events).toContainEqual({ host: 'denied.test', port: 443, rule: 'not_listed' });
    expect(events).toContainEqual({ host: 'denied.test', port: 80, rule: 'not_listed' });
  });

  it("SNI spoofing: SNI allowed.test sent to the denied host's address reaches allowed.test", async () => {
    expect(
      await probe(server, listed, [
        { addr: B(), port: 443, name: 'allowed.test', tls: true },
        { addr: B(), port: 80, name: 'allowed.test' },
      ]),
    ).toEqual([answer(A()), answer(A())]);
  });

  it('a connection that names no host is refused (no SNI, no Host)', async () => {
    const results = await probe(server, listed, [
      { addr: A(), port: 443, name: '', tls: true },
      { addr: A(), port: 80, name: '' },
    ]);
    expect(results[0]).not.toMatch(/^ok:/);
    expect(results[1]).toBe('ok:egress refused by previewd (no_name)');
    expect(await deniedEvents(server, listed)).toContainEqual({ port: 443, rule: 'no_name' });
    // a Host that is no name (16 KiB of junk, a URL) is no name either, and never reaches an event
    const junk = await probe(server, listed, [
      { addr: A(), port: 80, name: 'x'.repeat(8000) },
      { addr: A(), port: 80, name: 'allowed.test/../evil' },
    ]);
    expect(junk).toEqual([
      'ok:egress refused by previewd (no_name)',
      'ok:egress refused by previewd (no_name)',
    ]);
    const hosts = (await deniedEvents(server, listed)).map((e) => (e as { host?: string }).host ?? '');
    expect(Math.max(...hosts.map((h) => h.length))).toBeLessThan(254);
  });

  it('a listed name that resolves to a private address is refused (DNS rebinding)', async () => {
    const results = await probe(server, listed, [
      { addr: A(), port: 443, name: 'rebind.test', tls: true },
      { addr: A(), port: 80, name: 'rebind.test' },
    ]);
    expect(results[0]).not.toMatch(/^ok:/);
    expect(results[1]).toBe('ok:egress refused by previewd (private_address)');
    expect(await deniedEvents(server, listed)).toContainEqual({
      host: 'rebind.test',
      port: 443,
      rule: 'private_address',
    });
  });

  it('list: other ports by CIDR only', async () => {
    const other = { addr: A(), port: web.otherPort, name: 'x' };
    expect(await probe(server, listed, [other])).toEqual([REFUSED]);
    const put = await server.call('PUT', `/v1/sandboxes/${listed}/network`, {
      egress: 'list',
      allow: ['allowed.test', `${A()}/32`],
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(await probe(server, listed, [other])).toEqual([answer(A())]);
  });

  it('a change while running takes effect for new connections; deny blocks everything but DNS', async () => {
    const put = await server.call('PUT', `/v1/sandboxes/${open}/network`, { egress: 'deny' });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.network).toEqual({ egress: 'deny', allow: [], deny: [] });
    const results = await probe(server, open, [
      { addr: A(), port: 443, name: 'allowed.test', tls: true },
      { addr: B(), port: 80, name: 'denied.test' },
      { addr: A(), port: web.otherPort, name: 'x' },
    ]);
    expect(results[0]).not.toMatch(/^ok:/);
    expect(results[1]).toBe('ok:egress refused by previewd (deny)');
    expect(results[2]).toBe(REFUSED);
    // DNS still answers (Docker's embedded DNS and the resolvers it forwards to): a look-up only
    const dns = await server.call('POST', `/v1/sandboxes/${open}/exec`, {
      cmd: [
        'node',
        '-e',
        "require('dns').promises.resolve4('registry.npmjs.org').then((a) => console.log(a.length > 0))",
      ],
      timeoutSec: 30,
    });
    expect(dns.body.stdout.trim(), dns.body.stderr).toBe('true');
    // and back: allow again, the same targets answer
    await server.call('PUT', `/v1/sandboxes/${open}/network`, { egress: 'allow' });
    expect(
      await probe(server, open, [
        { addr: A(), port: 443, name: 'allowed.test', tls: true },
        { addr: A(), port: web.otherPort, name: 'x' },
      ]),
    ).toEqual([answer(A()), answer(A())]);
  });

  it("an owner's sandbox without a policy of its own gets the owner's (network.egressByOwner)", async () => {
    const info = await server.call('GET', `/v1/sandboxes/${alices}`);
    expect(info.body.network).toEqual({ egress: 'list', allow: ['denied.test'], deny: [] });
    const results = await probe(server, alices, [
      { addr: B(), port: 443, name: 'denied.test', tls: true },
      { addr: A(), port: 80, name: 'allowed.test' },
    ]);
    expect(results).toEqual([answer(B()), 'ok:egress refused by previewd (not_listed)']);
  });

  it('the CLI shows and sets the policy: previewd network <id> --egress list --allow …', async () => {
    // asynchronously: the server answers from this process
    const cli = async (args: string[]) =>
      JSON.parse(
        (
          await promisify(execFile)(
            process.execPath,
            ['--import', 'tsx', 'src/cli/main.ts', 'network', open, ...args, '--json'],
            {
              encoding: 'utf8',
              env: {
                PATH: process.env.PATH,
                HOME: process.env.HOME,
                NO_COLOR: '1',
                PREVIEWD_URL: server.url,
                PREVIEWD_API_KEY: TEST_KEY,
              },
            },
          )
        ).stdout,
      );
    expect(await cli([])).toEqual({ egress: 'allow', allow: [], deny: [] });
    expect(await cli(['--egress', 'list', '--allow', 'allowed.test', '--allow', '*.npmjs.org'])).toEqual({
      egress: 'list',
      allow: ['allowed.test', '*.npmjs.org'],
      deny: [],
    });
    const results = await probe(server, open, [
      { addr: A(), port: 443, name: 'allowed.test', tls: true },
      { addr: B(), port: 80, name: 'denied.test' },
    ]);
    expect(results).toEqual([answer(A()), 'ok:egress refused by previewd (not_listed)']);
    expect(await cli(['--egress', 'allow'])).toEqual({ egress: 'allow', allow: [], deny: [] });
  });

  it('one sandbox holds at most 256 connections through the proxy', async () => {
    const before = await deniedCounter(server, 'connection_limit', 80);
    // 300 connections held open without a request: past the limit each is closed at once
    const script = `
      const net = require('net'); let closed = 0; const socks = [];
      for (let i = 0; i < 300; i++) {
        const s = net.connect({ host: process.argv[1], port: 80 });
        s.on('close', () => closed++); s.on('error', () => {}); socks.push(s);
      }
      setTimeout(() => { console.log(closed); socks.forEach((s) => s.destroy()); }, 2000);`;
    const res = await server.call('POST', `/v1/sandboxes/${alices}/exec`, {
      cmd: ['node', '-e', script, A()],
      timeoutSec: 30,
    });
    expect(res.body.exitCode, res.body.stderr).toBe(0);
    expect(Number(res.body.stdout.trim())).toBe(300 - 256);
    // every refusal counted; events at most 30 a minute per sandbox (the rest are `suppressed`)
    expect((await deniedCounter(server, 'connection_limit', 80)) - before).toBe(44);
    const events = (await deniedEvents(server, alices)).filter(
      (e) => (e as { rule: string }).rule === 'connection_limit',
    );
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(30);
  });

  it('refuses a bad policy with 400, naming the entry', async () => {
    const res = await server.call('PUT', `/v1/sandboxes/${open}/network`, {
      egress: 'list',
      allow: ['not a host!'],
    });
    expect(res.status).toBe(400);
  });
});
