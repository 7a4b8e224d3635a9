import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { constants } from 'node:os';
import { Readable } from 'node:stream';
import type { SandboxIdentity } from '../../domain/sandbox.js';
import type { ExecSession, OutputChunk } from '../provider.js';

/** How a process of the in-memory provider runs on the host: where, with what, as whom. */
export interface HostProcessSpec {
  cmd: string[];
  cwd: string;
  env: Record<string, string>;
  /** Run as the sandbox's uid/gid when previewd runs as root (as its container would). */
  identity?: SandboxIdentity;
  stdin?: boolean;
  /** A pseudo-terminal of this size, through util-linux `script`. */
  tty?: { cols: number; rows: number };
}

/** The exit code a shell reports: the code, or 128 + the signal's number. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

/**
 * Starts a process in its own process group (so a signal reaches its children too), as the
 * sandbox's identity when this process may switch to it.
 */
export function spawnHostProcess(spec: HostProcessSpec): ChildProcess {
  if (spec.cmd.length === 0) throw new Error('an empty command');
  let [file, ...args] = spec.cmd as [string, ...string[]];
  if (spec.tty) {
    const { cols, rows } = spec.tty;
    const line = `stty cols ${Math.trunc(cols)} rows ${Math.trunc(rows)}; exec ${spec.cmd.map(quote).join(' ')}`;
    [file, args] = ['script', ['-qfec', line, '/dev/null']];
  }
  const asRoot = process.getuid?.() === 0;
  return spawn(file, args, {
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: [spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    ...(asRoot && spec.identity ? { uid: spec.identity.uid, gid: spec.identity.gid } : {}),
  });
}

/** Signals the process and every process of its group; nothing when it has ended. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals | number): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

/** Both pipes of a process as OutputChunks in arrival order; ends when both have closed. */
export function outputOf(child: ChildProcess): Readable & AsyncIterable<OutputChunk> {
  const out = new Readable({ objectMode: true, read() {} });
  let open = 2;
  for (const [stream, pipe] of [
    ['stdout', child.stdout],
    ['stderr', child.stderr],
  ] as const) {
    if (!pipe) {
      open -= 1;
      continue;
    }
    pipe.on('data', (data: Buffer) => out.push({ stream, data } satisfies OutputChunk));
    pipe.on('close', () => {
      open -= 1;
      if (open === 0) out.push(null);
    });
  }
  if (open === 0) out.push(null);
  return out;
}

/** The ExecSession of a host process. */
export function hostExecSession(child: ChildProcess): ExecSession {
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  exited.catch(() => undefined);
  return {
    id: randomUUID(),
    output: outputOf(child),
    stdin: child.stdin ?? undefined,
    exitCode: () => exited,
    signal: async (signal) =>
      signalGroup(
        child,
        signal.startsWith('SIG') ? (signal as NodeJS.Signals) : (`SIG${signal}` as NodeJS.Signals),
      ),
    resize: async () => undefined,
  };
}
