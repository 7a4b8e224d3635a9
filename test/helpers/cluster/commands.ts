import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Runs a program (no shell) and returns its stdout; fails with its stderr. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<string>((resolvePromise, reject) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20, env: opts.env },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr || err.message).trim()}`));
        } else {
          resolvePromise(stdout);
        }
      },
    );
  });
}

/** Like run, but a failure is an answer (undefined), not an error: for clean-up of what may be gone. */
export async function tryRun(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    return await run(cmd, args);
  } catch {
    return undefined;
  }
}

/** The docker CLI against one engine's socket. */
export function docker(socket: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return run('docker', ['-H', `unix://${socket}`, ...args], { timeoutMs });
}

/** A process that exists and is not a zombie (a killed one whose parent has not reaped it yet). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** PIDs of every process whose command line mentions `needle` (read from /proc). */
export function pidsWithCmdline(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** SIGKILLs every PID given and waits (up to 10 s) until none is left. */
export async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
