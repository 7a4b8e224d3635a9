import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { newSandboxId } from '../../src/domain/ids.js';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { providerConformance } from '../conformance/provider.conformance.js';

function makeProvider(): { provider: DockerProvider; dataDir: string; image: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-provider-'));
  const { config } = loadConfig({ env: {}, cwd: dataDir, overrides: { dataDir } });
  return {
    provider: new DockerProvider({ docker: createDockerClient(config), config }),
    dataDir,
    image: config.images.node,
  };
}

providerConformance('docker', async () => {
  const { provider, dataDir, image } = makeProvider();
  return { provider, image, cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
});

describe('Docker provider isolation defaults', () => {
  const { provider, dataDir, image } = makeProvider();
  const id = newSandboxId();

  const identity = { uid: 150_001, gid: 150_001 };

  beforeAll(async () => {
    await provider.prepareWorkspace(id, { identity });
    await provider.spawn({
      sandboxId: id,
      identity,
      image,
      env: {},
      resources: { cpus: 0.5, memoryMb: 300, pids: 100 },
      labels: {},
      ports: [],
    });
    await provider.start(id);
  });
  afterAll(async () => {
    await provider.destroy(id);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const sh = async (script: string) =>
    (await provider.exec(id, { cmd: ['sh', '-c', script] })).stdout.toString().trim();

  it('runs as a non-root user with no-new-privileges and no effective capabilities', async () => {
    expect(await sh('id -u')).toBe('150001');
    expect(await sh("grep NoNewPrivs /proc/self/status | awk '{print $2}'")).toBe('1');
    expect(await sh("grep CapEff /proc/self/status | awk '{print $2}'")).toBe('0000000000000000');
    // the bounding set holds only what capAdd allows (NET_BIND_SERVICE = bit 10)
    expect(await sh("grep CapBnd /proc/self/status | awk '{print $2}'")).toBe('0000000000000400');
  });

  it('applies memory and pids limits', async () => {
    const mem = await sh(
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
    );
    expect(Number(mem)).toBe(300 * 1024 * 1024);
    const pids = await sh('cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max');
    expect(pids).toBe('100');
  });

  it('mounts the host CA bundle and points the usual variables at it', async () => {
    expect(await sh('echo $NODE_EXTRA_CA_CERTS $SSL_CERT_FILE $REQUESTS_CA_BUNDLE $PIP_CERT')).toBe(
      Array(4).fill('/etc/previewd/ca-certificates.crt').join(' '),
    );
    expect(await sh('head -c 27 "$NODE_EXTRA_CA_CERTS"')).toBe('-----BEGIN CERTIFICATE-----');
    expect(await sh('touch "$NODE_EXTRA_CA_CERTS" 2>&1 || echo read-only')).toContain('read-only');
  });

  it('sits on the previewd network with inter-container traffic disabled', async () => {
    const docker = createDockerClient({ docker: { network: 'previewd' } as never });
    const net = await docker.getNetwork('previewd').inspect();
    expect(net.Options?.['com.docker.network.bridge.enable_icc']).toBe('false');
    const info = await docker.getContainer(`previewd-${id}`).inspect();
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual(['previewd']);
    expect(info.HostConfig.Init).toBe(true);
    expect(info.Config.Labels).toMatchObject({ 'previewd.managed': 'true', 'previewd.sandbox': id });
    expect(info.HostConfig.Binds?.some((b) => b.includes('docker.sock'))).toBe(false);
  });
});

describe('Docker provider sandbox network', () => {
  it('settles on one network when two were made under the same name, and spawns on it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'previewd-provider-'));
    const network = `previewd-dup-${Date.now().toString(36)}`;
    const { config } = loadConfig({
      env: {},
      cwd: dataDir,
      overrides: { dataDir, 'docker.network': network },
    });
    const docker = createDockerClient(config);
    // What two control planes starting at the same moment can leave behind.
    await docker.createNetwork({ Name: network, Driver: 'bridge', CheckDuplicate: false });
    await docker.createNetwork({ Name: network, Driver: 'bridge', CheckDuplicate: false });
    const named = async () =>
      (await docker.listNetworks({ filters: { name: [network] } })).filter((n) => n.Name === network);
    expect((await named()).length).toBe(2);

    const provider = new DockerProvider({ docker, config });
    const id = newSandboxId();
    try {
      await provider.prepareWorkspace(id, { identity: { uid: 150_002, gid: 150_002 } });
      await provider.spawn({
        sandboxId: id,
        identity: { uid: 150_002, gid: 150_002 },
        image: config.images.node,
        env: {},
        resources: { cpus: 0.5, memoryMb: 256, pids: 100 },
        labels: {},
        ports: [],
      });
      await provider.start(id);
      expect((await named()).length).toBe(1);
      const info = await provider.inspect(id);
      expect(info.status).toBe('running');
      expect(info.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    } finally {
      await provider.destroy(id).catch(() => undefined);
      for (const n of await named())
        await docker
          .getNetwork(n.Id)
          .remove()
          .catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
