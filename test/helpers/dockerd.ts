import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { waitFor } from './server.js';

function dockerdPid(): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-x', 'dockerd'], { encoding: 'utf8' }).trim();
    const pid = Number(out.split('\n')[0]);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function engineAnswers(): Promise<boolean> {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Restarts the local Docker engine the way scripts/ensure-docker.sh runs it: SIGTERM to the
 * running dockerd (found by its exact name, ended by its PID), wait for it to exit, then `dockerd`
 * again in the background (detached, log appended to <dataDir>/dockerd.log), until `docker info`
 * answers. Every container with RestartPolicy "no" is stopped by this, on the whole machine.
 */
export async function restartDockerd(): Promise<void> {
  const pid = dockerdPid();
  if (!pid) throw new Error('no dockerd process to restart (the engine is not local?)');
  process.kill(pid, 'SIGTERM');
  await waitFor(async () => (alive(pid) ? undefined : true), 60_000, 'dockerd to exit');
  const log = resolve(process.env.PREVIEWD_DATA_DIR ?? './data', 'dockerd.log');
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  spawn('dockerd', [], { detached: true, stdio: ['ignore', fd, fd] }).unref();
  await waitFor(async () => ((await engineAnswers()) ? true : undefined), 60_000, 'dockerd to answer');
}
