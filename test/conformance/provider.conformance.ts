import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSandboxId } from '../../src/domain/ids.js';
import type { OutputChunk, SandboxProvider, SpawnSpec } from '../../src/providers/provider.js';
import { waitFor } from '../helpers/server.js';

export interface ProviderFixture {
  provider: SandboxProvider;
  /** An image with sh, sleep, cat and id. */
  image: string;
  /**
   * Where an exec's working directory (the workspace) shows in `pwd`: `/workspace` in a container;
   * a provider running processes on the host gives the workspace's host path.
   */
  workspacePath?(sandboxId: string): string;
  cleanup(): Promise<void>;
}

/**
 * Durations no other test's sleeps have: the memory provider's processes run on the host, where
 * every container's processes are visible too, so a suite running beside this one must not count.
 */
const SLEEP_A = 200_000 + Math.floor(Math.random() * 400_000) * 2;
const SLEEP_B = SLEEP_A + 1;
/** Counts this suite's two sleep processes in the sandbox (without ps: the image may lack it). */
const SLEEPERS = `for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done | grep -c "^sleep \\(${SLEEP_A}\\|${SLEEP_B}\\) " || true`;

async function text(stream: AsyncIterable<OutputChunk>): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk.data.toString();
  return out;
}

/** The provider contract, written once against the interface; every provider runs it. */
export function providerConformance(name: string, make: () => Promise<ProviderFixture>): void {
  describe(`SandboxProvider conformance: ${name}`, () => {
    let fx: ProviderFixture;
    const ids: string[] = [];
    const spec = (overrides: Partial<SpawnSpec> = {}): SpawnSpec => {
      const sandboxId = newSandboxId();
      ids.push(sandboxId);
      return {
        sandboxId,
        image: fx.image,
        cmd: ['sh', '-c', 'echo app-started; echo app-err >&2; exec sleep infinity'],
        env: { GREETING: 'hello' },
        resources: { cpus: 0.5, memoryMb: 256, pids: 128 },
        labels: {},
        ports: [3000],
        // Each spawn its own uid, as the service allocates them.
        identity: { uid: 160_000 + ids.length, gid: 160_000 + ids.length },
        ...overrides,
      };
    };

    beforeAll(async () => {
      fx = await make();
    });
    afterAll(async () => {
      for (const id of ids) await fx.provider.destroy(id).catch(() => undefined);
      await fx.cleanup();
    });

    it('answers health', async () => {
      await expect(fx.provider.health()).resolves.toBeUndefined();
    });

    it('runs a full life: spawn, start, exec, files, logs, stop, start, pause, destroy', async () => {
      const s = spec();
      const { provider } = fx;
      const files = await provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await files.write('hello.txt', 'from the host\n');
      const first = await provider.spawn(s);
      const again = await provider.spawn(s);
      expect(again.instanceId).toBe(first.instanceId);
      expect((await provider.inspect(s.sandboxId)).status).toBe('created');

      await provider.start(s.sandboxId);
      await provider.start(s.sandboxId); // idempotent
      const info = await provider.inspect(s.sandboxId);
      expect(info.status).toBe('running');
      expect(info.ip).toBeTruthy();
      expect((await provider.address(s.sandboxId, 3000)).port).toBe(3000);
      expect((await provider.list()).map((i) => i.sandboxId)).toContain(s.sandboxId);

      // exec: cwd, env, user, stdin, exit codes
      const pwd = await provider.exec(s.sandboxId, {
        cmd: ['sh', '-c', 'pwd; echo $GREETING; id -u; cat hello.txt'],
      });
      expect(pwd.exitCode).toBe(0);
      const workspace = fx.workspacePath?.(s.sandboxId) ?? '/workspace';
      expect(pwd.stdout.toString()).toBe(`${workspace}\nhello\n${s.identity.uid}\nfrom the host\n`);
      const failing = await provider.exec(s.sandboxId, { cmd: ['sh', '-c', 'echo oops >&2; exit 7'] });
      expect(failing.exitCode).toBe(7);
      expect(failing.stderr.toString()).toBe('oops\n');
      const piped = await provider.exec(s.sandboxId, { cmd: ['cat'], stdin: 'via stdin' });
      expect(piped.stdout.toString()).toBe('via stdin');
      const env = await provider.exec(s.sandboxId, {
        cmd: ['sh', '-c', 'echo $X'],
        env: { X: 'y' },
        cwd: '/tmp',
      });
      expect(env.stdout.toString()).toBe('y\n');

      // files written inside are visible outside, and the reverse
      await provider.exec(s.sandboxId, {
        cmd: ['sh', '-c', 'mkdir -p sub && echo inside > sub/made-in.txt'],
      });
      expect((await files.read('sub/made-in.txt')).toString()).toBe('inside\n');

      const logs = await text(await provider.logs(s.sandboxId));
      expect(logs).toContain('app-started');
      expect(logs).toContain('app-err');

      await provider.stop(s.sandboxId, { timeoutSec: 1 });
      await provider.stop(s.sandboxId, { timeoutSec: 1 }); // idempotent
      expect((await provider.inspect(s.sandboxId)).status).toBe('exited');
      expect((await files.read('hello.txt')).toString()).toBe('from the host\n');

      await provider.start(s.sandboxId);
      expect((await provider.inspect(s.sandboxId)).status).toBe('running');
      const survived = await provider.exec(s.sandboxId, { cmd: ['cat', 'sub/made-in.txt', 'hello.txt'] });
      expect(survived.stdout.toString()).toBe('inside\nfrom the host\n');

      await provider.pause(s.sandboxId);
      expect((await provider.inspect(s.sandboxId)).status).toBe('paused');
      await provider.unpause(s.sandboxId);
      expect((await provider.inspect(s.sandboxId)).status).toBe('running');

      await provider.destroy(s.sandboxId);
      await provider.destroy(s.sandboxId); // idempotent
      expect((await provider.inspect(s.sandboxId)).status).toBe('missing');
      expect((await provider.list()).map((i) => i.sandboxId)).not.toContain(s.sandboxId);
      expect(
        await provider
          .files(s.sandboxId)
          .exists('hello.txt')
          .catch(() => false),
      ).toBe(false);
    });

    it('follows logs as the app writes them', async () => {
      const s = spec({
        cmd: ['sh', '-c', 'for i in 1 2 3; do echo line-$i; sleep 0.2; done; exec sleep infinity'],
      });
      await fx.provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await fx.provider.spawn(s);
      await fx.provider.start(s.sandboxId);
      const stream = await fx.provider.logs(s.sandboxId, { follow: true });
      let seen = '';
      for await (const chunk of stream) {
        seen += chunk.data.toString();
        if (seen.includes('line-3')) break;
      }
      stream.destroy();
      expect(seen).toMatch(/line-1\nline-2\nline-3/);
      await fx.provider.destroy(s.sandboxId);
    });

    it('reports an app that exits', async () => {
      const s = spec({ cmd: ['sh', '-c', 'exit 3'] });
      await fx.provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await fx.provider.spawn(s);
      await fx.provider.start(s.sandboxId);
      const info = await waitFor(async () => {
        const i = await fx.provider.inspect(s.sandboxId);
        return i.status === 'exited' ? i : undefined;
      });
      expect(info.exitCode).toBe(3);
      await fx.provider.destroy(s.sandboxId);
    });

    it('supervises the app when it can: status, restart after a crash, restart on demand', async () => {
      if (!fx.provider.appStatus || !fx.provider.restartApp) return;
      const s = spec({
        supervise: {
          install: 'echo installed >> installs.txt',
          start: 'echo started >> starts.txt; exec sleep infinity',
          maxRestarts: 1,
        },
      });
      await fx.provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await fx.provider.spawn(s);
      await fx.provider.start(s.sandboxId);
      await waitFor(async () =>
        (await fx.provider.appStatus?.(s.sandboxId))?.state === 'running' ? true : undefined,
      );
      await fx.provider.restartApp(s.sandboxId);
      const files = fx.provider.files(s.sandboxId);
      await waitFor(async () =>
        (await files.read('starts.txt')).toString() === 'started\nstarted\n' ? true : undefined,
      );
      // The install ran once: the dependency files did not change.
      expect((await files.read('installs.txt')).toString()).toBe('installed\n');
      // A crash (the app killed from inside): reported, then restarted after the backoff.
      await fx.provider.exec(s.sandboxId, { cmd: ['sh', '-c', 'pkill -x sleep'] });
      const crashed = await waitFor(async () => {
        const status = await fx.provider.appStatus?.(s.sandboxId);
        return status && status.crashes >= 1 ? status : undefined;
      });
      expect(crashed.exitCode).toBe(143);
      await waitFor(async () =>
        (await files.read('starts.txt')).toString().split('\n').length === 4 ? true : undefined,
      );
      expect((await fx.provider.inspect(s.sandboxId)).status).toBe('running');
      await fx.provider.destroy(s.sandboxId);
    });

    it('exec on a stopped sandbox fails with sandbox_not_running', async () => {
      const s = spec();
      await fx.provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await fx.provider.spawn(s);
      await expect(fx.provider.exec(s.sandboxId, { cmd: ['true'] })).rejects.toMatchObject({
        code: 'sandbox_not_running',
      });
      await fx.provider.destroy(s.sandboxId);
    });

    it('streams exec output in order, takes stdin, signals every process of an exec, and times out', async () => {
      const s = spec();
      const { provider } = fx;
      await provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await provider.spawn(s);
      await provider.start(s.sandboxId);

      const session = await provider.startExec(s.sandboxId, {
        cmd: ['sh', '-c', 'echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c; exit 4'],
      });
      const order: string[] = [];
      for await (const chunk of session.output) order.push(`${chunk.stream}:${chunk.data.toString()}`);
      expect(order).toEqual(['stdout:a\n', 'stderr:b\n', 'stdout:c\n']);
      expect(await session.exitCode()).toBe(4);

      const interactive = await provider.startExec(s.sandboxId, { cmd: ['cat'], stdin: true });
      interactive.stdin?.write('one ');
      interactive.stdin?.end('two');
      expect(await text(interactive.output)).toBe('one two');
      expect(await interactive.exitCode()).toBe(0);

      // A signal reaches the process and the children it started.
      const tree = await provider.startExec(s.sandboxId, {
        cmd: ['sh', '-c', `sleep ${SLEEP_A} & sleep ${SLEEP_B}; echo never`],
      });
      await waitFor(async () => {
        const ps = await provider.exec(s.sandboxId, {
          cmd: ['sh', '-c', SLEEPERS],
        });
        return ps.stdout.toString().trim() === '2' ? true : undefined;
      });
      await tree.signal('KILL');
      expect(await text(tree.output)).toBe('');
      expect(await tree.exitCode()).toBe(137);
      const left = await provider.exec(s.sandboxId, {
        cmd: ['sh', '-c', SLEEPERS],
      });
      expect(left.stdout.toString().trim()).toBe('0');

      await expect(
        provider.exec(s.sandboxId, { cmd: ['sh', '-c', 'echo partial; sleep 100'], timeoutSec: 1 }),
      ).rejects.toMatchObject({ code: 'exec_timeout', details: { stdout: 'partial\n' } });

      const capped = await provider.exec(s.sandboxId, {
        cmd: ['sh', '-c', 'head -c 100000 /dev/zero; echo tail'],
        maxOutputBytes: 1000,
      });
      expect(capped).toMatchObject({ exitCode: 0, truncated: true });
      expect(capped.stdout.length).toBe(1000);

      // A PTY: output arrives as stdout, the terminal has the asked size.
      const pty = await provider.startExec(s.sandboxId, {
        cmd: ['stty', 'size'],
        tty: { cols: 91, rows: 17 },
      });
      expect((await text(pty.output)).trim()).toBe('17 91');
      await provider.destroy(s.sandboxId);
    });

    it("reports the exit of an instance's main process when it can watch exits", async () => {
      if (!fx.provider.watchExits) return; // optional capability: the reconciler notices instead
      const s = spec({ cmd: ['sh', '-c', 'sleep 0.5; exit 6'] });
      const exits: { sandboxId: string; exitCode: number }[] = [];
      const stop = fx.provider.watchExits((exit) => exits.push(exit));
      try {
        await fx.provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
        await fx.provider.spawn(s);
        await fx.provider.start(s.sandboxId);
        const exit = await waitFor(async () => exits.find((e) => e.sandboxId === s.sandboxId));
        expect(exit.exitCode).toBe(6);
      } finally {
        stop();
        await fx.provider.destroy(s.sandboxId);
      }
    });

    it('shows the listening sockets inside the sandbox', async () => {
      const s = spec();
      const { provider } = fx;
      await provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await provider.spawn(s);
      await expect(provider.netTcp(s.sandboxId)).rejects.toMatchObject({ code: 'sandbox_not_running' });
      await provider.start(s.sandboxId);
      const server = await provider.startExec(s.sandboxId, {
        cmd: ['node', '-e', "require('net').createServer().listen(4000, () => console.log('up'))"],
      });
      // port 4000 = 0x0FA0, state 0A = LISTEN
      const listening = await waitFor(async () => {
        const text = await provider.netTcp(s.sandboxId);
        return /:0FA0 [0-9A-F:]+ 0A /.test(text) ? text : undefined;
      });
      expect(listening).toContain('local_address');
      await server.signal('KILL');
      await provider.destroy(s.sandboxId);
    });

    it('fails with image_not_found for an image the engine lacks', async () => {
      const s = spec({ image: 'previewd/does-not-exist:0' });
      await fx.provider.prepareWorkspace(s.sandboxId, { identity: s.identity });
      await expect(fx.provider.spawn(s)).rejects.toMatchObject({ code: 'image_not_found' });
      await fx.provider.destroy(s.sandboxId);
    });
  });
}
