import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { mountsUnder, unmount } from '../../../src/workspaces/mounts.js';
import { alive, killAll, pidsWithCmdline, run, tryRun } from './commands.js';
import { engineBip, enginePool } from './network.js';

/**
 * Where one host's engine keeps its state: under `<root>/<name>/`, removed with the bed, except
 * its data root `<cache>/<name>`, kept between beds so its images need no second load (its
 * containers, volumes, networks and Swarm state are removed at the next start: resetEngine).
 */
export interface EngineDirs {
  dir: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
  pidfile: string;
  /** The host's UTS namespace, bind-mounted here (its own host name, so Swarm node names differ). */
  uts: string;
  config: string;
  log: string;
}

export function engineDirs(root: string, cache: string, name: string): EngineDirs {
  const dir = join(root, name);
  return {
    dir,
    dataRoot: join(cache, name),
    execRoot: join(dir, 'exec'),
    socket: join(dir, 'docker.sock'),
    pidfile: join(dir, 'dockerd.pid'),
    uts: join(dir, 'uts'),
    config: join(dir, 'daemon.json'),
    log: join(dir, 'dockerd.log'),
  };
}

/** The host engine's runtime registrations, gVisor left out (the cluster runs runc). */
function hostRuntimes(): Record<string, unknown> {
  try {
    const conf = JSON.parse(readFileSync('/etc/docker/daemon.json', 'utf8')) as {
      runtimes?: Record<string, unknown>;
    };
    return Object.fromEntries(Object.entries(conf.runtimes ?? {}).filter(([name]) => name !== 'runsc'));
  } catch {
    return {};
  }
}

/** nsenter into the host's network and UTS namespaces (not `ip netns exec`, which remounts /sys). */
export function nsenterArgs(netns: string, dirs: EngineDirs): string[] {
  return [`--net=/run/netns/${netns}`, `--uts=${dirs.uts}`, '--'];
}

/** Makes the host's UTS namespace (host name = `name`); persists as a bind mount at dirs.uts. */
export async function createUts(name: string, dirs: EngineDirs): Promise<void> {
  mkdirSync(dirs.dir, { recursive: true });
  writeFileSync(dirs.uts, '');
  await run('unshare', [`--uts=${dirs.uts}`, 'hostname', name]);
}

/**
 * Starts dockerd inside the host's namespaces with its own data root, exec root (its own
 * containerd), socket, bridge and address pools, containers under the cgroup `/<name>`; resolves
 * once the engine answers.
 */
export async function startEngine(
  i: number,
  name: string,
  netns: string,
  dirs: EngineDirs,
): Promise<ChildProcess> {
  const runtimes = hostRuntimes();
  writeFileSync(dirs.config, JSON.stringify(Object.keys(runtimes).length > 0 ? { runtimes } : {}));
  const log = openSync(dirs.log, 'a');
  const child = spawn(
    'nsenter',
    [
      ...nsenterArgs(netns, dirs),
      'dockerd',
      `--config-file=${dirs.config}`,
      `--data-root=${dirs.dataRoot}`,
      `--exec-root=${dirs.execRoot}`,
      `--pidfile=${dirs.pidfile}`,
      `--host=unix://${dirs.socket}`,
      `--bip=${engineBip(i)}`,
      `--default-address-pool=${enginePool(i)}`,
      `--cgroup-parent=/${name}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  // A test process that ends without stop() does not wait for its engines (the next start removes them).
  child.unref();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dockerd of ${name} exited (${child.exitCode ?? child.signalCode}): ${logTail(dirs)}`);
    }
    if (
      (await tryRun('docker', [
        '-H',
        `unix://${dirs.socket}`,
        'version',
        '--format',
        '{{.Server.Version}}',
      ])) !== undefined
    ) {
      return child;
    }
    if (Date.now() > deadline) throw new Error(`dockerd of ${name} did not answer in 60 s: ${logTail(dirs)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function logTail(dirs: EngineDirs): string {
  try {
    return readFileSync(dirs.log, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}

function cgroupDirs(name: string): string[] {
  let controllers: string[] = [];
  try {
    controllers = readdirSync('/sys/fs/cgroup');
  } catch {
    return [];
  }
  return controllers.map((c) => join('/sys/fs/cgroup', c, name)).filter((d) => existsSync(d));
}

/** PIDs in a cgroup tree (every controller: a process is in each hierarchy once). */
function cgroupPids(dir: string): number[] {
  const out: number[] = [];
  try {
    const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
    for (const p of procs.split('\n')) if (p.trim()) out.push(Number(p));
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) out.push(...cgroupPids(join(dir, entry.name)));
    }
  } catch {
    // removed meanwhile
  }
  return out;
}

/**
 * Node death: SIGKILL to everything of the host at once — dockerd, its containerd and shims,
 * every process in its network namespace (a previewd started there too) and every container
 * (its cgroup tree). Mounts and files stay, as after a power cut.
 */
export async function killHost(name: string, netns: string, dirs: EngineDirs): Promise<void> {
  const pids = new Set<number>();
  const inNetns = await tryRun('ip', ['netns', 'pids', netns]);
  for (const p of (inNetns ?? '').split('\n')) if (p.trim()) pids.add(Number(p));
  for (const d of cgroupDirs(name)) for (const p of cgroupPids(d)) pids.add(p);
  for (const p of pidsWithCmdline(`${dirs.dir}/`)) pids.add(p);
  for (const p of pidsWithCmdline(`${dirs.dataRoot}/`)) pids.add(p);
  for (const p of pidsWithCmdline(`--data-root=${dirs.dataRoot}`)) pids.add(p);
  pids.delete(process.pid);
  await killAll([...pids]);
}

function removeCgroupTree(dir: string): void {
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
    }
    rmdirSync(dir);
  } catch {
    // busy or gone: the next clean-up tries again
  }
}

/** After killHost: unmounts everything under the host's folder (overlays, netns files, its UTS) and removes its cgroups. */
export async function releaseHost(name: string, dirs: EngineDirs): Promise<void> {
  for (const m of [...(await mountsUnder(dirs.dir)), ...(await mountsUnder(dirs.dataRoot))]) {
    await unmount(m.target).catch(() => undefined);
  }
  for (const d of cgroupDirs(name)) removeCgroupTree(d);
}

/** The engine's PID (from its pidfile) if it is running. */
export function enginePid(dirs: EngineDirs): number | undefined {
  try {
    const pid = Number(readFileSync(dirs.pidfile, 'utf8').trim());
    return pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Drops a stopped engine's Swarm membership (faster than `swarm leave --force` on a running one). */
export function forgetSwarm(dirs: EngineDirs): void {
  rmSync(join(dirs.dataRoot, 'swarm'), { recursive: true, force: true });
}

/**
 * Empties an engine kept from an earlier bed down to its images: out of any Swarm, no container,
 * volume or network of its own. (The earlier bed's engine was killed, so its containers are exited;
 * its Swarm state was removed before it started: forgetSwarm.)
 */
export async function resetEngine(socket: string): Promise<void> {
  const cli = (args: string[]) => run('docker', ['-H', `unix://${socket}`, ...args], { timeoutMs: 120_000 });
  const containers = (await cli(['ps', '-aq'])).split('\n').filter(Boolean);
  if (containers.length > 0) await cli(['rm', '-f', '-v', ...containers]);
  await cli(['volume', 'prune', '-f']);
  await cli(['network', 'prune', '-f']);
}
