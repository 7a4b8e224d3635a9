import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Previewd } from '@previewd/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsUnder } from '../../src/workspaces/mounts.js';
import { edge, previewHostOf } from '../helpers/edge.js';
import { releaseMounts } from '../helpers/mounts.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';
import { docker, freePort, ServerProcess } from '../helpers/server-process.js';

const run = promisify(execFile);
const NODE = 'previewd/runtime-node:22';
const PY = 'previewd/runtime-python:3';
const site = (text: string) => ({ template: 'static', files: { 'index.html': `<h1>${text}</h1>` } });

/** The unclaimed warm containers of a data dir's previewd (by their slot mounts). */
async function warmContainers(dataDir: string) {
  const all = await docker.listContainers({ all: true, filters: { label: ['previewd.pool'] } });
  return all.filter(
    (c) =>
      c.Names.some((n) => n.startsWith('/previewd-pool-')) &&
      c.Mounts.some((m) => m.Source.startsWith(dataDir)),
  );
}

/** Asks every 10 ms (the figures compare paths; a coarse poll would round them all up alike). */
async function firstAnswer(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (performance.now() > deadline) throw new Error('no answer in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('warm pool (real engine)', () => {
  let server: TestServer;
  const sh = async (id: string, script: string) => {
    const res = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', script] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as { exitCode: number; stdout: string; stderr: string };
  };
  const warmIds = async (n = 1) =>
    waitFor(
      async () => {
        const ids = (await warmContainers(server.dataDir))
          .filter((c) => c.State === 'running')
          .map((c) => c.Id);
        const warm = server.app.pool.state().images.find((i) => i.image === NODE)?.warm ?? 0;
        return ids.length >= n && warm >= n ? ids : undefined;
      },
      30_000,
      'a warm pool container',
    );
  const create = async (body: Record<string, unknown>) => {
    const res = await server.call('POST', '/v1/sandboxes', body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (await waitState(server, res.body.id, 'running')) as { id: string; containerId?: string };
  };
  const containerOf = async (id: string) => (await server.app.store.getSandbox(id))?.containerId;
  const serves = (id: string, text: string, port = 8080) =>
    waitFor(
      async () => {
        const res = await edge(server, previewHostOf(id, port));
        const body = await res.body.text();
        return res.statusCode === 200 && body.includes(text) ? body : undefined;
      },
      30_000,
      `preview of ${id}`,
    );

  beforeAll(async () => {
    server = await startTestServer({ pool: { [NODE]: 1 } });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  }, 60_000);

  it('a create claims the warm container: preview, files, exec and logs work, and the pool refills', async () => {
    const [warm] = await warmIds();
    const sb = await create(site('claimed from the pool'));
    expect(await containerOf(sb.id)).toBe(warm);
    await serves(sb.id, 'claimed from the pool');
    // Its own user, no capability left, its environment.
    const who = await sh(
      sb.id,
      'id -u; id -g; grep CapEff /proc/self/status; echo "$PREVIEWD_SANDBOX_ID"; pwd',
    );
    const record = await server.app.store.getSandbox(sb.id);
    const [uid, gid, capEff, envId, cwd] = who.stdout.trim().split('\n');
    expect(Number(uid)).toBe(record?.identity?.uid);
    expect(Number(gid)).toBeGreaterThan(0);
    expect(capEff).toMatch(/CapEff:\s+0+$/);
    expect(envId).toBe(sb.id);
    expect(cwd).toBe('/workspace');
    // The app runs as the sandbox's user too (the waiter dropped root for good).
    const app = await sh(
      sb.id,
      'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = node ] && grep -E "^(Uid|CapEff)" $p/status; done',
    );
    expect(app.stdout).toContain(`Uid:\t${uid}\t${uid}\t${uid}\t${uid}`);
    expect(app.stdout).not.toMatch(/CapEff:\s+0*[1-9a-f]/);
    // Its environment reached the app (applied after the drop to the sandbox's user).
    const appEnv = await sh(
      sb.id,
      'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = node ] && tr "\\0" "\\n" < $p/environ; done',
    );
    expect(appEnv.stdout).toContain(`PREVIEWD_SANDBOX_ID=${sb.id}`);
    expect(appEnv.stdout).toContain('HOME=/home/user');
    // Files written through the API are the app's.
    const put = await server.call('PUT', `/v1/sandboxes/${sb.id}/files?path=index.html`, '<h1>edited</h1>', {
      'content-type': 'application/octet-stream',
    });
    expect(put.status, JSON.stringify(put.body)).toBeLessThan(300);
    await serves(sb.id, 'edited');
    expect((await sh(sb.id, 'cat /workspace/index.html')).stdout).toContain('edited');
    const logs = await server.call('GET', `/v1/sandboxes/${sb.id}/logs`);
    expect(logs.status).toBe(200);
    expect(JSON.stringify(logs.body)).not.toContain('bad identity');
    // The pool made a new one.
    const [next] = await warmIds();
    expect(next).not.toBe(warm);
    const state = await server.call('GET', '/v1/pool');
    expect(state.status).toBe(200);
    expect(state.body.images).toEqual([{ image: NODE, target: 1, warm: 1, filling: 0 }]);
    expect(state.body.claimed).toBeGreaterThanOrEqual(1);
    const metrics = await server.call('GET', '/metrics');
    expect(String(metrics.body)).toMatch(
      /previewd_pool_containers\{image="previewd\/runtime-node:22",state="warm"\} 1/,
    );
    expect(String(metrics.body)).toMatch(
      /previewd_pool_claims_total\{image="previewd\/runtime-node:22",result="claimed"\} [1-9]/,
    );
  }, 90_000);

  it('no data carries over: the next claimed sandbox gets a fresh container without the first one’s /tmp or env', async () => {
    await warmIds();
    const a = await create({ ...site('first'), env: { FIRST_SECRET: 'alpha-123' } });
    const aContainer = await containerOf(a.id);
    expect((await warmContainers(server.dataDir)).map((c) => c.Id)).not.toContain(aContainer);
    expect((await sh(a.id, 'echo kept > /tmp/first-was-here; echo "$FIRST_SECRET"')).stdout.trim()).toBe(
      'alpha-123',
    );
    const [warm] = await warmIds();
    const b = await create(site('second'));
    const bContainer = await containerOf(b.id);
    expect(bContainer).toBe(warm);
    expect(bContainer).not.toBe(aContainer);
    const seen = await sh(b.id, 'ls /tmp; env; cat /workspace/index.html');
    expect(seen.stdout).not.toContain('first-was-here');
    expect(seen.stdout).not.toContain('FIRST_SECRET');
    expect(seen.stdout).not.toContain('alpha-123');
    expect(seen.stdout).toContain('second');
    expect((await sh(a.id, 'cat /tmp/first-was-here')).stdout.trim()).toBe('kept');
    // The apps' own environments (what the waiter handed over), not only the execs'.
    const appEnv =
      'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = node ] && tr "\\0" "\\n" < $p/environ; done';
    expect((await sh(a.id, appEnv)).stdout).toContain('FIRST_SECRET=alpha-123');
    expect((await sh(b.id, appEnv)).stdout).not.toContain('FIRST_SECRET');
    for (const id of [a.id, b.id])
      expect((await server.call('DELETE', `/v1/sandboxes/${id}`)).status).toBe(204);
  }, 90_000);

  it('a claimed sandbox gets its network policy: the egress rules name its address', async () => {
    const [warm] = await warmIds();
    const sb = await create({ ...site('with a policy'), network: { egress: 'deny' } });
    expect(await containerOf(sb.id)).toBe(warm);
    const ip = (await server.app.provider.inspect(sb.id)).ip;
    expect(ip).toBeTruthy();
    const rules = await server.app.egress.rules();
    expect(rules.forward.some((rule) => rule.includes(`${ip}/32`) || rule.includes(ip!))).toBe(true);
    expect((await server.call('DELETE', `/v1/sandboxes/${sb.id}`)).status).toBe(204);
  }, 60_000);

  it('a sandbox that does not fit (other resources, another image, gVisor) is created as usual', async () => {
    const [warm] = await warmIds();
    const levels = (await server.app.provider.isolationLevels?.()) ?? [];
    const bodies: Record<string, unknown>[] = [
      { ...site('other resources'), resources: { memoryMb: 512 } },
      {
        image: PY,
        files: { 'app.py': 'print(1)' },
        runtime: { start: 'python3 -m http.server 8000', port: 8000 },
      },
    ];
    if (levels.includes('gvisor')) bodies.push({ ...site('gvisor'), isolation: 'gvisor' });
    for (const body of bodies) {
      const sb = await create(body);
      const info = await docker.getContainer((await containerOf(sb.id))!).inspect();
      expect(info.Config.Labels['previewd.pool'], JSON.stringify(body)).toBeUndefined();
      expect(info.Config.User).not.toBe('0:0');
      expect((await server.call('DELETE', `/v1/sandboxes/${sb.id}`)).status).toBe(204);
    }
    // The warm one is still there, unclaimed.
    expect((await warmContainers(server.dataDir)).map((c) => c.Id)).toContain(warm);
  }, 120_000);

  it('stop then start of a claimed sandbox makes a normal container; delete leaves no mount and no loop device', async () => {
    const [warm] = await warmIds();
    const sb = await create(site('stop and start'));
    expect(await containerOf(sb.id)).toBe(warm);
    const slot = (await docker.getContainer(warm!).inspect()).Config.Labels['previewd.pool']!;
    const slotDir = join(server.dataDir, 'pool', slot);
    expect((await mountsUnder(slotDir)).length).toBeGreaterThan(0);
    expect((await server.call('POST', `/v1/sandboxes/${sb.id}/stop`)).status).toBeLessThan(300);
    await waitState(server, sb.id, 'stopped');
    // The claimed container and its slot are gone.
    await expect(docker.getContainer(warm!).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(existsSync(slotDir)).toBe(false);
    expect(await mountsUnder(slotDir)).toEqual([]);
    expect((await server.call('POST', `/v1/sandboxes/${sb.id}/start`)).status).toBeLessThan(300);
    await waitState(server, sb.id, 'running');
    const info = await docker.getContainer(`previewd-${sb.id}`).inspect();
    expect(info.Id).not.toBe(warm);
    expect(info.Config.Labels['previewd.pool']).toBeUndefined();
    await serves(sb.id, 'stop and start');
    expect(await containerOf(sb.id)).toBe(info.Id);

    // Delete a claimed one: nothing of it stays mounted, no loop device on its disk.
    const [warm2] = await warmIds();
    const other = await create(site('to delete'));
    expect(await containerOf(other.id)).toBe(warm2);
    const slot2 = (await docker.getContainer(warm2!).inspect()).Config.Labels['previewd.pool']!;
    expect((await server.call('DELETE', `/v1/sandboxes/${other.id}`)).status).toBe(204);
    expect(await mountsUnder(join(server.dataDir, 'pool', slot2))).toEqual([]);
    expect(await mountsUnder(join(server.dataDir, 'sandboxes', other.id))).toEqual([]);
    const loops = (await run('losetup', ['-a'])).stdout;
    expect(loops).not.toContain(other.id);
    expect(existsSync(join(server.dataDir, 'pool', slot2))).toBe(false);
    expect((await server.call('DELETE', `/v1/sandboxes/${sb.id}`)).status).toBe(204);
  }, 120_000);

  it('a create with the pool emptied makes a normal container; the CLI and SDK show the pool', async () => {
    // The figures (pool vs no pool vs docker run) are bench/preview.ts --part projects.
    const page = (t: string) => ({ template: 'static', files: { 'index.html': `<h1>${t}</h1>` } });
    const served = async (text: string) => {
      const res = await server.call('POST', '/v1/sandboxes', page(text));
      expect(res.status).toBe(201);
      await firstAnswer(async () => {
        const r = await edge(server, previewHostOf(res.body.id, 8080));
        const body = await r.body.text();
        return r.statusCode === 200 && body.includes(text);
      });
      return res.body.id as string;
    };
    const [warm] = await warmIds();
    const pooled = await served('pooled');
    expect(await containerOf(pooled)).toBe(warm);
    const target = server.app.config.pool[NODE];
    server.app.config.pool[NODE] = 0; // no claims from here
    let plain: string;
    try {
      plain = await served('not pooled');
      const info = await docker.getContainer((await containerOf(plain))!).inspect();
      expect(info.Config.Labels['previewd.pool']).toBeUndefined();
    } finally {
      server.app.config.pool[NODE] = target!;
    }
    for (const id of [pooled, plain]) await server.call('DELETE', `/v1/sandboxes/${id}`);
    // The same state through the SDK and `previewd pool`.
    const sdk = new Previewd({ url: server.url, apiKey: TEST_KEY });
    const viaSdk = await sdk.pool.state();
    expect(viaSdk.images.map((i) => i.image)).toEqual([NODE]);
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PREVIEWD_')));
    const cli = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'pool', '--json'], {
      env: { ...clean, NO_COLOR: '1', PREVIEWD_URL: server.url, PREVIEWD_API_KEY: TEST_KEY },
    });
    expect(JSON.parse(cli.stdout).images[0]).toMatchObject({ image: NODE, target: 1 });
    const table = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'pool'], {
      env: { ...clean, NO_COLOR: '1', PREVIEWD_URL: server.url, PREVIEWD_API_KEY: TEST_KEY },
    });
    expect(table.stdout).toMatch(/IMAGE\s+WARM\s+TARGET\s+FILLING/);
    expect(table.stdout).toContain(NODE);
  }, 120_000);
});

describe('warm pool of the Python image (real engine)', () => {
  it('a Python sandbox claims a warm Python container and serves', async () => {
    const server = await startTestServer({ pool: { [PY]: 1 } });
    try {
      const warm = await waitFor(async () => {
        const ids = (await warmContainers(server.dataDir)).filter((c) => c.State === 'running');
        return ids.length === 1 && server.app.pool.state().images[0]?.warm === 1 ? ids[0]!.Id : undefined;
      });
      const res = await server.call('POST', '/v1/sandboxes', {
        image: PY,
        files: { 'index.html': '<p>python from the pool</p>' },
        runtime: { start: 'python3 -m http.server 8000', port: 8000 },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      await waitState(server, res.body.id, 'running');
      expect((await server.app.store.getSandbox(res.body.id))?.containerId).toBe(warm);
      await waitFor(async () => {
        const r = await edge(server, previewHostOf(res.body.id, 8000));
        return (await r.body.text()).includes('python from the pool') ? true : undefined;
      });
      const who = await server.call('POST', `/v1/sandboxes/${res.body.id}/exec`, {
        cmd: [
          'sh',
          '-c',
          'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = python3 ] && awk \'/^Uid/{print $2}\' $p/status; done; id -u',
        ],
      });
      const uid = String((await server.app.store.getSandbox(res.body.id))?.identity?.uid);
      // The app and the exec: the sandbox's uid, each line.
      const lines = who.body.stdout.trim().split('\n');
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(new Set(lines)).toEqual(new Set([uid]));
    } finally {
      await server.close();
    }
  }, 90_000);
});

describe('warm pool and admission (real engine)', () => {
  it('the pool never passes the memory budget, and gives way to a create that does not fit it', async () => {
    const budget = 300;
    const server = await startTestServer({
      pool: { [NODE]: 4 },
      'admission.memoryBudgetMb': budget,
      'admission.startMemoryMb': 128,
      'admission.minFreeMemoryMb': 0,
    });
    try {
      await waitFor(
        async () => (server.app.pool.state().images[0]?.warm === 2 ? true : undefined),
        30_000,
        'two warm',
      );
      await server.app.pool.settled();
      // 2 × 128 MB fit in 300 MB, a third would not.
      expect(server.app.pool.state().reservedMb).toBe(256);
      expect((await warmContainers(server.dataDir)).length).toBe(2);
      const res = await server.call('POST', '/v1/sandboxes', {
        ...site('other'),
        resources: { memoryMb: 512 },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      await waitState(server, res.body.id, 'running');
      await server.app.pool.settled();
      // One warm container gave way; the sandbox's measured memory plus the pool stay in budget.
      const record = await server.app.store.getSandbox(res.body.id);
      const { containerMemoryMb } = await import('../../src/sandboxes/memory.js');
      const used = (await containerMemoryMb(record!.containerId!)) ?? 128;
      expect(server.app.pool.state().reservedMb + used).toBeLessThanOrEqual(budget);
      expect((await warmContainers(server.dataDir)).length).toBeLessThanOrEqual(
        Math.floor((budget - used) / 128),
      );
    } finally {
      await server.close();
    }
  }, 120_000);
});

describe('warm pool across a kill -9 of previewd (real engine)', () => {
  it('unclaimed pool containers are replaced, claimed sandboxes keep running', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'previewd-pool-kill-'));
    const configFile = join(dataDir, 'previewd.yaml');
    writeFileSync(configFile, `pool:\n  "${NODE}": 1\n`);
    let proc = new ServerProcess(dataDir, await freePort(), undefined, { PREVIEWD_CONFIG: configFile });
    try {
      await proc.start();
      const warmOf = () =>
        waitFor(
          async () => {
            const ids = (await warmContainers(dataDir)).filter((c) => c.State === 'running').map((c) => c.Id);
            return ids.length === 1 ? ids[0] : undefined;
          },
          30_000,
          'a warm container',
        );
      const first = await warmOf();
      const sb = await proc.call('POST', '/v1/sandboxes', site('survives a kill'));
      await waitFor(async () =>
        (await proc.call('GET', `/v1/sandboxes/${sb.id}`)).state === 'running' ? true : undefined,
      );
      expect((await docker.getContainer(`previewd-${sb.id}`).inspect()).Id).toBe(first);
      const unclaimed = await warmOf();
      proc.kill9();
      proc = proc.restarted();
      await proc.start();
      const replaced = await warmOf();
      expect(replaced).not.toBe(unclaimed);
      await expect(docker.getContainer(unclaimed!).inspect()).rejects.toMatchObject({ statusCode: 404 });
      const info = await docker.getContainer(`previewd-${sb.id}`).inspect();
      expect(info.Id).toBe(first);
      expect(info.State.Running).toBe(true);
      expect((await proc.call('GET', `/v1/sandboxes/${sb.id}`)).state).toBe('running');
      const exec = await proc.call('POST', `/v1/sandboxes/${sb.id}/exec`, {
        cmd: ['sh', '-c', 'id -u; cat index.html'],
      });
      expect(exec.stdout).toContain('survives a kill');
      expect(Number(exec.stdout.split('\n')[0])).toBeGreaterThan(0);
      await proc.call('DELETE', `/v1/sandboxes/${sb.id}`);
    } finally {
      proc.kill9();
      for (const c of await warmContainers(dataDir)) await docker.getContainer(c.Id).remove({ force: true });
      const all = await docker.listContainers({ all: true, filters: { label: ['previewd.managed=true'] } });
      for (const c of all.filter((x) => x.Mounts.some((m) => m.Source.startsWith(dataDir)))) {
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined);
      }
      await releaseMounts(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
