import type Docker from 'dockerode';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { buildImages, imageStatus } from '../../src/runtimes/images/build.js';

const config: Config = loadConfig().config;
const docker = createDockerClient(config);

interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Splits a non-TTY container log buffer (8-byte frame headers) into stdout and stderr. */
function demux(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const kind = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    const chunk = buffer.subarray(offset + 8, offset + 8 + size);
    (kind === 2 ? err : out).push(chunk);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

async function runIn(image: string, cmd: string[], user = '1000:1000'): Promise<RunOutput> {
  const container: Docker.Container = await docker.createContainer({
    Image: image,
    Cmd: cmd,
    User: user,
    Labels: { 'previewd.test': 'images' },
    HostConfig: { Init: true, NetworkMode: 'none' },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return { code: StatusCode, ...demux(logs) };
  } finally {
    await container.remove({ force: true });
  }
}

describe('runtime images', () => {
  beforeAll(async () => {
    const states = await imageStatus(docker, config);
    if (states.every((s) => s.present && s.upToDate)) return;
    await buildImages({ docker, config });
  }, 600_000);

  it('node image has Node 22 and npm, and runs as uid 1000 with a writable /workspace', async () => {
    const script = [
      'set -e',
      'node -v',
      'npm -v',
      'id -u',
      'pwd',
      'echo ok > /workspace/probe && cat /workspace/probe',
      "node -e \"require('fs').writeFileSync('/workspace/n.txt', process.version)\"",
      'test -d /home/user',
    ].join('\n');
    const result = await runIn(config.images.node, ['bash', '-c', script]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [nodeVersion, npmVersion, uid, cwd, probe] = result.stdout.trim().split('\n');
    expect(nodeVersion).toMatch(/^v22\.\d+\.\d+$/);
    expect(npmVersion).toMatch(/^10\.\d+\.\d+$/);
    expect(uid).toBe('1000');
    expect(cwd).toBe('/workspace');
    expect(probe).toBe('ok');
  }, 60_000);

  it('node image has git, and corepack-managed pnpm/yarn shims', async () => {
    const result = await runIn(config.images.node, [
      'bash',
      '-c',
      'git --version && command -v corepack pnpm yarn',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^git version /);
    expect(result.stdout).toContain('/usr/local/bin/pnpm');
  }, 60_000);

  it('python image imports fastapi, flask and uvicorn as uid 1000', async () => {
    const code = [
      'import fastapi, flask, uvicorn, os, sys',
      'open("/workspace/p.txt", "w").write("ok")',
      'print(sys.version_info.major, os.getuid(), os.getcwd())',
    ].join('; ');
    const result = await runIn(config.images.python, ['python3', '-c', code]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe('3 1000 /workspace');
  }, 60_000);

  it('python image can make a virtual environment', async () => {
    const result = await runIn(config.images.python, [
      'bash',
      '-c',
      'python3 -m venv --system-site-packages /workspace/.venv && /workspace/.venv/bin/python -c "import flask"',
    ]);
    expect(result.code).toBe(0);
  }, 60_000);

  it('a second build with nothing changed builds nothing', async () => {
    const phases: string[] = [];
    const results = await buildImages({ docker, config, onProgress: (p) => phases.push(p.phase) });
    expect(results.map((r) => r.name)).toEqual([
      config.images.base,
      config.images.node,
      config.images.python,
    ]);
    for (const r of results) {
      expect(r.built).toBe(false);
      expect(r.inputs).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(phases).not.toContain('build');
    expect(phases).not.toContain('bootstrap');
    const states = await imageStatus(docker, config);
    expect(states.every((s) => s.present && s.upToDate)).toBe(true);
  }, 60_000);
});
