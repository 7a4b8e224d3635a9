import { PreviewdError } from '../domain/errors.js';
import type { ExecOptions, ExecResult, ExecSession, ExecStartOptions } from './provider.js';

/**
 * Runs a command to its end (stdin given whole, output collected up to `maxOutputBytes`, killed
 * after `timeoutSec`): the buffered exec, over `start` (a streaming exec).
 */
export async function collectExec(
  start: (opts: ExecStartOptions) => Promise<ExecSession>,
  opts: ExecOptions,
): Promise<ExecResult> {
  const started = performance.now();
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const session = await start({
    cmd: opts.cmd,
    cwd: opts.cwd,
    env: opts.env,
    stdin: opts.stdin !== undefined,
  });
  if (opts.stdin !== undefined) session.stdin?.end(opts.stdin);
  let timedOut = false;
  const timer =
    opts.timeoutSec !== undefined
      ? setTimeout(() => {
          timedOut = true;
          void session.signal('KILL').catch(() => undefined);
        }, opts.timeoutSec * 1000)
      : undefined;
  // Output past the cap is dropped (the command keeps running); `truncated` says so.
  const cap = opts.maxOutputBytes ?? Number.POSITIVE_INFINITY;
  let kept = 0;
  let truncated = false;
  try {
    for await (const chunk of session.output) {
      const room = cap - kept;
      if (room <= 0) {
        truncated = true;
        continue;
      }
      const data = chunk.data.length > room ? chunk.data.subarray(0, room) : chunk.data;
      if (data.length < chunk.data.length) truncated = true;
      kept += data.length;
      (chunk.stream === 'stderr' ? stderr : stdout).push(data);
    }
  } finally {
    clearTimeout(timer);
  }
  const durationMs = Math.round(performance.now() - started);
  if (timedOut) {
    throw new PreviewdError(
      'exec_timeout',
      `the command ran longer than ${opts.timeoutSec}s and was killed`,
      {
        details: {
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          durationMs,
        },
      },
    );
  }
  return {
    ...(truncated ? { truncated } : {}),
    exitCode: await session.exitCode(),
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr),
    durationMs,
  };
}
