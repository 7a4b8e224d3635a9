import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterBed,
  type ClusterHost,
  removeClusterBed,
  startClusterHosts,
} from '../helpers/cluster-hosts.js';
import { waitFor } from '../helpers/server.js';

/**
 * The cluster test bed itself: two real Docker engines, each in its own network namespace on a
 * shared bridge, joined in a Swarm. What the previewd cluster suites build on.
 */

const IMAGE = 'previewd/runtime-node:22';
const SERVER = `require('node:http').createServer((q, r) => r.end('answer from ' + require('node:os').hostname())).listen(Number(process.argv[1]))`;

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

/** Everything of a bed that could outlive it, as text: empty when nothing is left. */
function leftovers(): string[] {
  const found: string[] = [];
  for (const l of sh('ip', ['netns', 'list']).split('\n')) if (l.includes('pvdc')) found.push(`netns ${l}`);
  for (const l of sh('ip', ['-o', 'link', 'show']).split('\n'))
    if (l.includes('pvdc')) found.push(`link ${l}`);
  for (const l of sh('iptables', ['-S', 'FORWARD']).split('\n'))
    if (l.includes('pvdc')) found.push(`rule ${l}`);
  // The bed's own mounts (other suites' data dirs may name a host, e.g. node-pvdc-1, in their paths).
  for (const l of sh('mount', []).split('\n')) {
    if (/ on (\/run\/netns\/pvdc-|\S*\/pvdc\/|\S*\/cluster-engines\/pvdc-)/.test(l)) found.push(`mount ${l}`);
  }
  for (const c of readdirSync('/sys/fs/cgroup')) {
    if (
      existsSync(`/sys/fs/cgroup/${c}`) &&
      readdirSync(`/sys/fs/cgroup/${c}`).some((d) => d.startsWith('pvdc-'))
    ) {
      found.push(`cgroup ${c}`);
    }
  }
  for (const p of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('/pvdc/') || cmd.includes('cluster-engines/pvdc-')) found.push(`process ${p} ${cmd}`);
    } catch {
      // exited
    }
  }
  return found;
}

async function nodes(
  manager: ClusterHost,
): Promise<Map<string, { status: string; labels: Record<string, string> }>> {
  const ids = (await manager.docker(['node', 'ls', '-q'])).split('\n').filter(Boolean);
  const out = new Map<string, { status: string; labels: Record<string, string> }>();
  const info = JSON.parse(await manager.docker(['node', 'inspect', ...ids])) as Array<{
    Description: { Hostname: string };
    Status: { State: string };
    Spec: { Labels: Record<string, string> };
  }>;
  for (const n of info) out.set(n.Description.Hostname, { status: n.Status.State, labels: n.Spec.Labels });
  return out;
}

describe('cluster test bed', () => {
  let bed: ClusterBed;
  let h1: ClusterHost;
  let h2: ClusterHost;

  beforeAll(async () => {
    bed = await startClusterHosts({ count: 2, images: [IMAGE], swarm: true, heartbeatSec: 2 });
    [h1, h2] = bed.hosts as [ClusterHost, ClusterHost];
    console.log('startClusterHosts({count: 2, swarm: true}) took (ms)', bed.timings);
  }, 300_000);

  afterAll(async () => {
    await bed?.stop();
  });

  it('runs one engine per host, each with its own name, data root and address', async () => {
    for (const h of bed.hosts) {
      const info = JSON.parse(await h.docker(['info', '--format', '{{json .}}'])) as {
        Name: string;
        DockerRootDir: string;
      };
      expect(info.Name).toBe(h.name);
      expect(info.DockerRootDir).toBe(h.dataRoot);
      const id = (await h.docker(['image', 'inspect', '--format', '{{.Id}}', IMAGE])).trim();
      expect(id).toBe(sh('docker', ['image', 'inspect', '--format', '{{.Id}}', IMAGE]).trim());
    }
    expect(h1.dockerSocket).not.toBe(h2.dockerSocket);
    expect([h1.address, h2.address]).toEqual(['198.51.100.11', '198.51.100.12']);
    const addr = await new Promise<string>((resolve) => {
      let out = '';
      const child = h2.spawnInNetns('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      child.stdout?.on('data', (d) => {
        out += String(d);
      });
      child.on('close', () => resolve(out));
    });
    expect(addr).toContain('inet 198.51.100.12/24');
  });

  it('joins both engines in a Swarm: Ready on the manager, with the node labels set there', async () => {
    await h1.docker(['node', 'update', '--label-add', 'zone=a', h1.name]);
    await h1.docker(['node', 'update', '--label-add', 'zone=b', h2.name]);
    const seen = await nodes(h1);
    expect(seen.get(h1.name)).toEqual({ status: 'ready', labels: { zone: 'a' } });
    expect(seen.get(h2.name)).toEqual({ status: 'ready', labels: { zone: 'b' } });
  });

  it("reaches a container on host 2 from host 1's namespace at host 2's address: a published port or host networking, not its bridge IP", async () => {
    await h2.docker([
      'run',
      '-d',
      '--init',
      '--name',
      'published',
      '-p',
      '18080:8080',
      IMAGE,
      'node',
      '-e',
      SERVER,
      '8080',
    ]);
    await h2.docker([
      'run',
      '-d',
      '--init',
      '--name',
      'hostnet',
      '--network',
      'host',
      IMAGE,
      'node',
      '-e',
      SERVER,
      '18081',
    ]);
    const published = await waitFor(
      async () => {
        const r = await h1.request(`http://${h2.address}:18080/`);
        return 'status' in r ? r : undefined;
      },
      20_000,
      'the published port on host 2',
    );
    expect(published.body).toMatch(/^answer from [0-9a-f]{12}$/);
    const hostnet = await waitFor(
      async () => {
        const r = await h1.request(`http://${h2.address}:18081/`);
        return 'status' in r ? r : undefined;
      },
      20_000,
      'the host-network server on host 2',
    );
    expect(hostnet.body).toBe(`answer from ${h2.name}`);
    const bridgeIp = (
      await h2.docker(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'published'])
    ).trim();
    expect(bridgeIp).toMatch(/^10\.230\.2\./);
    expect(await h1.request(`http://${bridgeIp}:8080/`, 1000)).toHaveProperty('error');
    // This machine reaches the hosts too (a PostgreSQL for the nodes listens on bed.bridgeAddress).
    expect(bed.bridgeAddress).toBe('198.51.100.1');
  });

  it('cutLink partitions a host and restoreLink heals it', async () => {
    await bed.cutLink(h2);
    expect(await h1.request(`http://${h2.address}:18081/`, 1000)).toEqual({ error: 'TimeoutError' });
    await bed.restoreLink(h2);
    const back = await waitFor(
      async () => {
        const r = await h1.request(`http://${h2.address}:18081/`, 1000);
        return 'status' in r ? r : undefined;
      },
      20_000,
      'host 2 to answer again',
    );
    expect(back.body).toBe(`answer from ${h2.name}`);
  });

  it('a killed host is Down on the manager within seconds, and comes back Ready when restarted', async () => {
    const t0 = Date.now();
    await h2.kill();
    expect(sh('ip', ['netns', 'pids', h2.netns]).trim()).toBe('');
    expect(await h1.request(`http://${h2.address}:18080/`, 1000)).toEqual({ error: 'ECONNREFUSED' });
    await waitFor(
      async () => ((await nodes(h1)).get(h2.name)?.status === 'down' ? true : undefined),
      30_000,
      'host 2 Down',
    );
    const downMs = Date.now() - t0;
    console.log(`killed host seen Down after ${downMs} ms (dispatcher heartbeat 2 s)`);
    expect(downMs).toBeLessThan(20_000);

    await h2.restart();
    await waitFor(
      async () => ((await nodes(h1)).get(h2.name)?.status === 'ready' ? true : undefined),
      60_000,
      'host 2 Ready',
    );
    expect((await nodes(h1)).get(h2.name)?.labels).toEqual({ zone: 'b' });
  });

  it('stop() leaves nothing behind, and a second stop() is a no-op', async () => {
    expect(leftovers().length).toBeGreaterThan(0);
    await bed.stop();
    expect(leftovers()).toEqual([]);
    await bed.stop();
    expect(leftovers()).toEqual([]);
  });
});

describe('cluster test bed after a crash', () => {
  afterAll(async () => {
    await removeClusterBed();
  });

  it('a bed left running (a crashed run) is removed by the next start', async () => {
    const first = await startClusterHosts({ count: 2, images: [IMAGE], swarm: false });
    await first.hosts[1]!.docker(['run', '-d', '--init', IMAGE, 'node', '-e', SERVER, '8080']);
    // No stop(): the next start finds it all.
    const second = await startClusterHosts({ count: 1, images: [IMAGE], swarm: false });
    expect(second.hosts.map((h) => h.name)).toEqual(['pvdc-1']);
    expect(sh('ip', ['netns', 'list'])).not.toContain('pvdc-2');
    expect(await second.hosts[0]!.docker(['ps', '-aq'])).toBe('');
    await second.stop();
    expect(leftovers()).toEqual([]);
  });
});
