import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { docker, killAll, pidsWithCmdline, tryRun } from './cluster/commands.js';
import {
  createUts,
  type EngineDirs,
  engineDirs,
  forgetSwarm,
  killHost,
  nsenterArgs,
  releaseHost,
  resetEngine,
  startEngine,
} from './cluster/engines.js';
import { syncImages } from './cluster/images.js';
import {
  assertRangesFree,
  BRIDGE,
  createBridge,
  createHostNetns,
  ENGINE_RANGES,
  netnsName,
  PREFIX,
  removeNetwork,
  SWARM_POOL,
  setLink,
} from './cluster/network.js';
import { type ProbeResult, probe } from './cluster/probe.js';

/**
 * The cluster test bed: several real Docker engines on this one machine, each in its own network
 * namespace (and UTS namespace: its own host name) on a shared bridge, optionally joined in a
 * Docker Swarm (host 1 the manager). What previewd nodes see of each other is what separate
 * machines on one LAN would show: `http://<host.address>:<port>` reaches a port published on
 * that host (`-p`) or a process listening in its namespace (spawnInNetns, host-network
 * containers). Container bridge IPs (10.230.<i>.x) are routable only inside their own host.
 *
 * One bed at a time on a machine (fixed names `pvdc-*`, state under <tmpdir>/pvdc): the `cluster`
 * test project runs its files one by one. A bed a crashed run left behind is removed at start.
 */
export interface ClusterHost {
  /** Host name, network namespace and Swarm node name: `pvdc-<i>`. */
  name: string;
  /** 1-based position. */
  index: number;
  /** Its address on the bridge, e.g. 198.51.100.11. */
  address: string;
  netns: string;
  dockerSocket: string;
  dataRoot: string;
  /** Runs a command inside this host's network and UTS namespaces (nsenter), e.g. a previewd node process. */
  spawnInNetns(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** GET from inside this host's namespace: `{status, body}`, or `{error}` with the error's code (ECONNREFUSED, TimeoutError, …). */
  request(url: string, timeoutMs?: number): Promise<ProbeResult>;
  /** The docker CLI against this host's engine; resolves with its stdout. */
  docker(args: string[], timeoutMs?: number): Promise<string>;
  /**
   * Node death: SIGKILLs its dockerd, containerd, shims, containers and every process in its
   * namespace at once. Its link stays up (the address answers with refusals, as a rebooting
   * machine's would); cutLink as well for a machine that vanishes.
   */
  kill(): Promise<void>;
  /** Starts a killed host's engine again on the same data root (its Swarm membership comes back). */
  restart(): Promise<void>;
}

export interface ClusterHostsOptions {
  /** 1 to 8 hosts. */
  count: number;
  /** Images of this host's engine loaded into every host (e.g. previewd/runtime-node:22). */
  images: string[];
  /** Join the engines in a Swarm: host 1 manager, the others workers. */
  swarm: boolean;
  /** The bridge's address, `<net>.1` of a /24 from 198.51.100.0/24 or 203.0.113.0/24; hosts get `<net>.1<i>`. */
  bridgeAddress?: string;
  /** Start from empty engines (their kept data roots removed first, so every image is loaded again). */
  freshEngines?: boolean;
  /** The Swarm's dispatcher heartbeat (Docker's default 5 s); a dead node is Down after about 3 of them. */
  heartbeatSec?: number;
}

export interface ClusterBed {
  hosts: ClusterHost[];
  bridge: string;
  bridgeAddress: string;
  /** How long the start took, by phase (milliseconds). */
  timings: {
    network: number;
    engines: number;
    images: number;
    swarm: number;
    total: number;
    enginesLoaded: number;
  };
  /** Takes a host's link down (both ways): a network partition of that host. */
  cutLink(host: ClusterHost): Promise<void>;
  restoreLink(host: ClusterHost): Promise<void>;
  /** Removes everything the bed made (idempotent). */
  stop(): Promise<void>;
}

export const CLUSTER_ROOT = join(tmpdir(), PREFIX);
/** The engines' data roots (their images), kept between beds: the data dir's cache, like the image builder's. */
export const ENGINE_CACHE = resolve(process.env.PREVIEWD_DATA_DIR ?? './data', 'cache', 'cluster-engines');

const dirsOf = (name: string) => engineDirs(CLUSTER_ROOT, ENGINE_CACHE, name);

/**
 * Removes a bed, this run's or a crashed one's: processes, mounts, cgroups, namespaces, links,
 * rules, files; with `engines`, the kept data roots (images) too.
 */
export async function removeClusterBed(opts: { engines?: boolean } = {}): Promise<void> {
  const names: string[] = [];
  for (const dir of [CLUSTER_ROOT, ENGINE_CACHE]) {
    try {
      for (const n of readdirSync(dir)) if (/^pvdc-\d+$/.test(n) && !names.includes(n)) names.push(n);
    } catch {
      // nothing on disk
    }
  }
  for (const line of ((await tryRun('ip', ['netns', 'list'])) ?? '').split('\n')) {
    const name = new RegExp(`^(${PREFIX}-\\d+)\\b`).exec(line)?.[1];
    if (name && !names.includes(name)) names.push(name);
  }
  await Promise.all(names.map((name) => killHost(name, name, dirsOf(name))));
  await killAll([...pidsWithCmdline(`${CLUSTER_ROOT}/`), ...pidsWithCmdline(`${ENGINE_CACHE}/`)]);
  for (const name of names) await releaseHost(name, dirsOf(name));
  await removeNetwork();
  rmSync(CLUSTER_ROOT, { recursive: true, force: true });
  if (opts.engines) rmSync(ENGINE_CACHE, { recursive: true, force: true });
}

function checkOptions(opts: ClusterHostsOptions): string {
  if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 8)
    throw new Error('count must be 1 to 8');
  const bridgeAddress = opts.bridgeAddress ?? '198.51.100.1';
  if (!/^(198\.51\.100|203\.0\.113)\.[1-9]$/.test(bridgeAddress)) {
    throw new Error('bridgeAddress must be <net>.1 to <net>.9 of 198.51.100.0/24 or 203.0.113.0/24');
  }
  if (opts.heartbeatSec !== undefined && !(opts.heartbeatSec >= 1 && opts.heartbeatSec <= 60)) {
    throw new Error('heartbeatSec must be 1 to 60');
  }
  return bridgeAddress;
}

async function joinSwarm(hosts: ClusterHost[], heartbeatSec: number | undefined): Promise<void> {
  const [manager, ...workers] = hosts;
  await manager!.docker([
    'swarm',
    'init',
    `--advertise-addr=${manager!.address}`,
    `--listen-addr=${manager!.address}:2377`,
    `--default-addr-pool=${SWARM_POOL}`,
    ...(heartbeatSec ? [`--dispatcher-heartbeat=${heartbeatSec}s`] : []),
  ]);
  const token = (await manager!.docker(['swarm', 'join-token', '-q', 'worker'])).trim();
  await Promise.all(
    workers.map((w) =>
      w.docker([
        'swarm',
        'join',
        `--advertise-addr=${w.address}`,
        `--listen-addr=${w.address}:2377`,
        `--token=${token}`,
        `${manager!.address}:2377`,
      ]),
    ),
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = (await manager!.docker(['node', 'ls', '--format', '{{.Hostname}} {{.Status}}']))
      .split('\n')
      .filter((l) => l.endsWith(' Ready')).length;
    if (ready === hosts.length) return;
    if (Date.now() > deadline)
      throw new Error(`only ${ready} of ${hosts.length} Swarm nodes Ready after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function makeHost(
  index: number,
  net: string,
  engines: Map<string, ChildProcess>,
): ClusterHost & { dirs: EngineDirs } {
  const name = netnsName(index);
  const dirs = dirsOf(name);
  const host: ClusterHost & { dirs: EngineDirs } = {
    name,
    index,
    address: `${net}.${10 + index}`,
    netns: name,
    dockerSocket: dirs.socket,
    dataRoot: dirs.dataRoot,
    dirs,
    spawnInNetns: (cmd, args, opts = {}) =>
      spawn('nsenter', [...nsenterArgs(name, dirs), cmd, ...args], opts),
    request: (url, timeoutMs = 3000) => probe((cmd, args) => host.spawnInNetns(cmd, args), url, timeoutMs),
    docker: (args, timeoutMs) => docker(dirs.socket, args, timeoutMs),
    async kill() {
      await killHost(name, name, dirs);
      engines.delete(name);
    },
    async restart() {
      if (engines.has(name)) throw new Error(`${name} is running`);
      engines.set(name, await startEngine(index, name, name, dirs));
    },
  };
  return host;
}

/** Builds the bed (see ClusterHost); stop() removes all of it, and so does the next start after a crash. */
export async function startClusterHosts(opts: ClusterHostsOptions): Promise<ClusterBed> {
  const bridgeAddress = checkOptions(opts);
  const net = bridgeAddress.slice(0, bridgeAddress.lastIndexOf('.'));
  const t0 = Date.now();
  await removeClusterBed({ engines: opts.freshEngines });
  await assertRangesFree([`${net}.0/24`, ...ENGINE_RANGES]);
  const engines = new Map<string, ChildProcess>();
  const hosts = Array.from({ length: opts.count }, (_, k) => makeHost(k + 1, net, engines));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await removeClusterBed();
  };
  try {
    await createBridge(bridgeAddress);
    for (const h of hosts) {
      await createHostNetns(h.index, h.address);
      await createUts(h.name, h.dirs);
    }
    const t1 = Date.now();
    await Promise.all(
      hosts.map(async (h) => {
        const kept = existsSync(h.dataRoot);
        if (kept) forgetSwarm(h.dirs);
        engines.set(h.name, await startEngine(h.index, h.name, h.netns, h.dirs));
        if (kept) await resetEngine(h.dockerSocket);
      }),
    );
    const t2 = Date.now();
    const enginesLoaded = await syncImages(
      opts.images,
      hosts.map((h) => h.dockerSocket),
    );
    const t3 = Date.now();
    if (opts.swarm) await joinSwarm(hosts, opts.heartbeatSec);
    const t4 = Date.now();
    return {
      hosts,
      bridge: BRIDGE,
      bridgeAddress,
      timings: {
        network: t1 - t0,
        engines: t2 - t1,
        images: t3 - t2,
        swarm: t4 - t3,
        total: t4 - t0,
        enginesLoaded,
      },
      cutLink: (host) => setLink(host.index, false),
      restoreLink: (host) => setLink(host.index, true),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The forwarding a previewd node does to another's edge goes to this URL (the host's address, a port its process listens on). */
export function hostUrl(host: ClusterHost, port: number): string {
  return `http://${host.address}:${port}`;
}
