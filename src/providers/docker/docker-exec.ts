import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import type Docker from 'dockerode';
import { PreviewdError } from '../../domain/errors.js';
import type { ExecSession, ExecStartOptions, OutputChunk } from '../provider.js';
import { engineStatus, fromEngineError } from './errors.js';
import { DemuxStream } from './multiplex.js';

/** Environment marker every exec (and its children) carries, so all of them can be signalled. */
export const EXEC_MARKER = 'PREVIEWD_EXEC_ID';

/**
 * Who an exec runs as when the container's own user is not the sandbox's: a claimed warm pool
 * container (src/pool) runs its init as root until its waiter drops to the sandbox's user, so its
 * execs name the user and get the environment a normal container would have carried.
 */
export interface ExecAs {
  user: string;
  env: Record<string, string>;
}

/**
 * Starts a process in the sandbox. Every exec carries an environment marker
 * (PREVIEWD_EXEC_ID=<token>) that its children inherit; `signal` finds the marked processes
 * through /proc inside the container and signals each of them. The engine has no API to kill an
 * exec, and this works with a remote engine too (no host PIDs involved).
 */
export async function startContainerExec(
  container: Docker.Container,
  sandboxId: string,
  opts: ExecStartOptions,
  as?: ExecAs,
): Promise<ExecSession> {
  const token = randomBytes(9).toString('hex');
  const env = { ...(as?.env ?? {}), ...(opts.env ?? {}), [EXEC_MARKER]: token };
  let exec: Docker.Exec;
  try {
    // Engine API 1.41 has no ConsoleSize on exec create: the terminal gets its size before the
    // command runs (stty), and again through resize once started.
    const cmd = opts.tty
      ? [
          'sh',
          '-c',
          'stty cols "$1" rows "$2" 2>/dev/null; shift 2; exec "$@"',
          'sh',
          String(opts.tty.cols),
          String(opts.tty.rows),
          ...opts.cmd,
        ]
      : opts.cmd;
    exec = await container.exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: opts.stdin === true,
      Tty: opts.tty !== undefined,
      // No User: the engine runs an exec as the container's user, the sandbox's own uid.
      ...(as ? { User: as.user } : {}),
      ...(opts.cwd ? { WorkingDir: opts.cwd } : {}),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    });
  } catch (err) {
    if (engineStatus(err) === 409) {
      throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} is not running`, { cause: err });
    }
    throw fromEngineError(err, 'start a process in the sandbox');
  }
  let stream: NodeJS.ReadWriteStream;
  try {
    stream = (await exec.start({
      hijack: true,
      stdin: opts.stdin === true,
      Tty: opts.tty !== undefined,
    })) as NodeJS.ReadWriteStream;
  } catch (err) {
    if (engineStatus(err) === 409) {
      throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} is not running`, { cause: err });
    }
    throw fromEngineError(err, 'start a process in the sandbox');
  }
  if (opts.tty) await exec.resize({ w: opts.tty.cols, h: opts.tty.rows }).catch(() => undefined);
  const output = opts.tty
    ? stream.pipe(
        new Transform({
          readableObjectMode: true,
          transform(data: Buffer, _enc, done) {
            done(null, { stream: 'stdout', data } satisfies OutputChunk);
          },
        }),
      )
    : stream.pipe(new DemuxStream());
  // The hijacked socket may end without 'end' on the demuxer when the engine drops it.
  (stream as unknown as Readable).on('close', () => output.end());
  (stream as unknown as Readable).on('error', (err) => output.destroy(err));
  const exitCode = async (): Promise<number> => {
    for (let i = 0; i < 200; i++) {
      const info = await exec.inspect();
      if (!info.Running && info.ExitCode !== null) return info.ExitCode;
      await new Promise((r) => setTimeout(r, i < 20 ? 5 : 25));
    }
    return -1;
  };
  return {
    id: token,
    output: output as Readable & AsyncIterable<OutputChunk>,
    stdin: opts.stdin ? stream : undefined,
    exitCode,
    signal: (signal) => signalContainerExec(container, token, signal, as),
    resize: async (cols, rows) => {
      await exec.resize({ w: cols, h: rows }).catch(() => undefined);
    },
  };
}

/** Signals every process in the sandbox that carries the marker of one exec. */
export async function signalContainerExec(
  container: Docker.Container,
  token: string,
  signal: string,
  as?: ExecAs,
): Promise<void> {
  if (!/^[A-Z0-9]+$/.test(signal)) throw new PreviewdError('invalid_request', `unknown signal ${signal}`);
  const script =
    'for p in /proc/[0-9]*; do grep -qsxz "$1=$2" "$p/environ" && kill -s "$3" "$(basename "$p")" 2>/dev/null; done; exit 0';
  const exec = await container.exec({
    ...(as ? { User: as.user } : {}),
    Cmd: ['sh', '-c', script, 'sh', EXEC_MARKER, token, signal],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
  stream.resume();
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
}
