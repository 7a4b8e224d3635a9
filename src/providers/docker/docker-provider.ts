import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Config } from '../../config/schema.js';
import { PreviewdError } from '../../domain/errors.js';
import type { IsolationLevel } from '../../domain/isolation.js';
import { LEGACY_IDENTITY, type SandboxIdentity } from '../../domain/sandbox.js';
import { claimRequest, fitsPool } from '../../pool/pool-claim.js';
import type { PoolContainerContext } from '../../pool/pool-container.js';
import type { WarmPool } from '../../pool/warm-pool.js';
import { LayerStore } from '../../workspaces/layers.js';
import { type CacheMode, SandboxStorage } from '../../workspaces/sandbox-storage.js';
import { collectExec } from '../exec-collect.js';
import type {
  ExecOptions,
  ExecResult,
  ExecSession,
  ExecStartOptions,
  InstanceInfo,
  InstanceStatus,
  LogOptions,
  ManagedInstance,
  OutputChunk,
  SandboxProvider,
  SpawnSpec,
  WorkspaceOptions,
} from '../provider.js';
import { WorkspaceFiles } from '../workspace-fs.js';
import { readAppStatus, runDir, SUPERVISOR_PATH, supervisedContainer } from './app-supervisor.js';
import { watchContainerExits } from './container-exits.js';
import { type ExecAs, startContainerExec } from './docker-exec.js';
import { engineStatus, fromEngineError } from './errors.js';
import { caEnv, proxyEnv, resolveCaBundle, SANDBOX_CA_PATH } from './host-trust.js';
import { EngineRuntimes, isolationUnavailable, isUnknownRuntime } from './isolation.js';
import {
  containerName,
  LABEL_INSTANCE,
  LABEL_MANAGED,
  LABEL_POOL,
  managedLabels,
  sandboxIdOf,
} from './labels.js';
import { DemuxStream } from './multiplex.js';
import { SANDBOX_HOME, sandboxHomeBinds } from './sandbox-home.js';

export const WORKSPACE_MOUNT = '/workspace';
export { EXEC_MARKER } from './docker-exec.js';
export { SANDBOX_HOME } from './sandbox-home.js';

export interface DockerProviderOptions {
  docker: Docker;
  config: Pick<Config, 'dataDir' | 'docker' | 'caBundle' | 'instanceId'> &
    Partial<Pick<Config, 'dependencyCache' | 'edge' | 'isolation'>>;
  /** Sandbox storage: overlay stacks and disks (src/workspaces); default: plain directories. */
  storage?: SandboxStorage;
}

/** The engine's answer when the OCI runtime failed to start an exec's process (its only output). */
function runtimeRefusedExec(result: ExecResult): boolean {
  const out = `${result.stdout.toString('utf8')}${result.stderr.toString('utf8')}`.trim();
  return result.exitCode !== 0 && /^OCI runtime exec failed: [^\n]*$/.test(out);
}

/** Docker Desktop: publish each declared port on a random loopback port of the host. */
function loopbackPortBindings(ports: number[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const port of ports) bindings[`${port}/tcp`] = [{ HostIp: '127.0.0.1', HostPort: '' }];
  return bindings;
}

function parseUser(user: string): { uid: number; gid: number } {
  const [uid, gid] = user.split(':').map(Number);
  if (!Number.isInteger(uid) || !Number.isInteger(gid ?? uid)) {
    throw new Error(`docker.sandboxUser must be numeric uid:gid, got "${user}"`);
  }
  return { uid: uid!, gid: gid ?? uid! };
}

/** Runs each sandbox as one container on a dedicated bridge network, workspace bind-mounted from the data dir. */
export class DockerProvider implements SandboxProvider {
  readonly name = 'docker';
  private readonly docker: Docker;
  private readonly config: DockerProviderOptions['config'];
  /** Whom files of a sandbox without an identity of its own belong to (docker.sandboxUser, or uid 1000). */
  private readonly fallbackIdentity: SandboxIdentity;
  readonly caBundle?: string;
  /** The warm pool (src/pool/), when previewd runs one: spawn claims from it. */
  private pool?: WarmPool;
  private networkReady?: Promise<void>;
  /** The id of the sandbox network (names can be ambiguous, ids cannot). */
  private networkId?: string;
  /** Host PIDs of running sandboxes' main processes, for reading their /proc/net from the host. */
  private readonly hostPids = new Map<string, { pid: number; containerId: string }>();
  /** Identifies this control plane's containers (derived from the data dir unless configured). */
  readonly instance: string;
  /** Workspaces, disks and caches of sandboxes on the host (src/workspaces/sandbox-storage.ts). */
  readonly storage: SandboxStorage;

  /** The engine's runtimes: which isolation levels it can run (src/providers/docker/isolation.ts). */
  readonly runtimes: EngineRuntimes;

  constructor(opts: DockerProviderOptions) {
    this.docker = opts.docker;
    this.config = opts.config;
    const user = opts.config.docker.sandboxUser;
    this.fallbackIdentity = user ? parseUser(user) : LEGACY_IDENTITY;
    this.caBundle = resolveCaBundle(opts.config.caBundle);
    this.runtimes = new EngineRuntimes(opts.docker, opts.config.isolation?.gvisorRuntime);
    this.storage =
      opts.storage ??
      new SandboxStorage({
        dataDir: opts.config.dataDir,
        layers: new LayerStore(opts.config.dataDir),
        mounts: false,
      });
    this.instance =
      opts.config.instanceId ??
      createHash('sha256').update(resolve(opts.config.dataDir)).digest('hex').slice(0, 12);
  }

  /** Lets spawn claim warm containers (src/pool/warm-pool.ts). */
  usePool(pool: WarmPool): void {
    this.pool = pool;
  }

  /** What the pool needs to make containers like this provider's. */
  poolContext(): PoolContainerContext {
    const { PREVIEWD_SANDBOX_ID: _id, ...baseEnv } = Object.fromEntries(
      this.env({ sandboxId: '', env: {} } as unknown as SpawnSpec).map((kv) => {
        const eq = kv.indexOf('=');
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    );
    return {
      docker: this.docker,
      instance: this.instance,
      networkId: () => this.sandboxNetworkId(),
      caBundle: this.caBundle,
      baseEnv,
    };
  }

  get network(): string {
    return this.config.docker.network;
  }

  private workspaceDir(sandboxId: string): string {
    return join(this.config.dataDir, 'sandboxes', sandboxId, 'workspace');
  }

  private container(sandboxId: string): Docker.Container {
    return this.docker.getContainer(containerName(sandboxId));
  }

  isolationLevels(): Promise<IsolationLevel[]> {
    return this.runtimes.levels().catch((err) => {
      throw fromEngineError(err, 'list the engine runtimes');
    });
  }

  async health(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new PreviewdError(
        'engine_unavailable',
        `Docker engine does not answer: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * The sandbox network: a bridge with inter-container traffic disabled. The engine lets two
   * control planes that create it at the same moment make two networks of one name (and then
   * refuses the name as ambiguous), so every process keeps the same one — the oldest, then the
   * lowest id — removes the others, and attaches containers by id.
   */
  ensureNetwork(): Promise<void> {
    this.networkReady ??= (async () => {
      const named = async () =>
        (await this.docker.listNetworks({ filters: { name: [this.network] } })).filter(
          (n) => n.Name === this.network,
        );
      let existing = await named();
      if (existing.length === 0) {
        try {
          await this.docker.createNetwork({
            Name: this.network,
            Driver: 'bridge',
            CheckDuplicate: true,
            Labels: { [LABEL_MANAGED]: 'true' },
            Options: { 'com.docker.network.bridge.enable_icc': 'false' },
          });
        } catch (err) {
          if (engineStatus(err) !== 409) throw fromEngineError(err, 'create the sandbox network');
        }
        existing = await named();
      }
      const [keep, ...extra] = existing.sort(
        (a, b) => a.Created.localeCompare(b.Created) || a.Id.localeCompare(b.Id),
      );
      if (!keep) throw new PreviewdError('engine_error', `the sandbox network ${this.network} vanished`);
      for (const net of extra) {
        await this.docker
          .getNetwork(net.Id)
          .remove()
          .catch(() => undefined); // in use or already gone: whoever made it removes it
      }
      this.networkId = keep.Id;
    })().catch((err) => {
      this.networkReady = undefined;
      throw err;
    });
    return this.networkReady;
  }

  /** The sandbox network's id, creating the network when missing (its containment rules are keyed by it). */
  async sandboxNetworkId(): Promise<string> {
    await this.ensureNetwork();
    return this.networkId!;
  }

  /** Creates a directory owned by a sandbox's uid; a data dir previewd may not hand over is a clear error. */
  private async ownedDir(dir: string, identity: SandboxIdentity): Promise<void> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await chown(dir, identity.uid, identity.gid);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'EACCES') throw err;
      throw new PreviewdError(
        'data_dir_permission',
        `cannot give ${dir} to the sandbox user ${identity.uid}:${identity.gid}: ${code}`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * How a sandbox gets the download caches: an overlay over the current cache layers, builds
   * included (template-cache.ts publishes a build's downloads as a new layer).
   */
  private cacheMode(_build?: boolean): CacheMode {
    if (this.config.dependencyCache === false) return 'none';
    return 'overlay';
  }

  async prepareWorkspace(sandboxId: string, opts: WorkspaceOptions): Promise<WorkspaceFiles> {
    try {
      await this.storage.prepare(sandboxId, opts.identity, {
        layers: opts.layers,
        diskMb: opts.diskMb,
        caches: this.cacheMode(opts.build),
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'EACCES') throw err;
      throw new PreviewdError(
        'data_dir_permission',
        `cannot give the storage of ${sandboxId} to ${opts.identity.uid}:${opts.identity.gid}: ${code}`,
        { cause: err },
      );
    }
    return this.files(sandboxId, opts.identity);
  }

  ensureStorage(sandboxId: string): Promise<void> {
    return this.storage.ensureMounted(sandboxId);
  }

  files(sandboxId: string, identity?: SandboxIdentity): WorkspaceFiles {
    return new WorkspaceFiles(
      this.workspaceDir(sandboxId),
      identity ?? this.fallbackIdentity,
      WORKSPACE_MOUNT,
    );
  }

  private env(spec: SpawnSpec): string[] {
    const env: Record<string, string> = {
      HOME: SANDBOX_HOME,
      // npm writes debug logs into its cache; keep them out of the cache other sandboxes share.
      ...(this.config.dependencyCache !== false
        ? { npm_config_logs_dir: `${SANDBOX_HOME}/.cache/npm-logs` }
        : {}),
      PREVIEWD_SANDBOX_ID: spec.sandboxId,
      ...proxyEnv(),
      ...(this.caBundle ? caEnv() : {}),
      ...spec.env,
    };
    return Object.entries(env).map(([k, v]) => `${k}=${v}`);
  }

  async spawn(spec: SpawnSpec): Promise<{ instanceId: string }> {
    await this.ensureNetwork();
    const existing = await this.container(spec.sandboxId)
      .inspect()
      .catch((err) => {
        if (engineStatus(err) === 404) return undefined;
        throw fromEngineError(err, 'inspect the sandbox container');
      });
    if (existing?.Config.Labels?.[LABEL_POOL] && !existing.State.Running) {
      // A claimed warm container serves its sandbox once: after it stopped, a new one is made.
      await this.releaseClaim(spec.sandboxId, existing.Id);
    } else if (existing) return { instanceId: existing.Id };

    // Workspace and caches, mounted on the host first (src/workspaces/sandbox-storage.ts).
    const storage = await this.storage.containerMounts(spec.sandboxId, {
      owner: spec.identity,
      caches: this.cacheMode(),
      memoryMb: spec.resources.memoryMb,
      home: SANDBOX_HOME,
    });
    const binds = [...storage.binds];
    binds.push(
      ...(await sandboxHomeBinds(this.config.dataDir, spec.sandboxId, spec.identity, (dir, id) =>
        this.ownedDir(dir, id),
      )),
    );
    if (this.caBundle) binds.push(`${this.caBundle}:${SANDBOX_CA_PATH}:ro`);
    let cmd = spec.cmd ?? ['sleep', 'infinity'];
    let env = this.env(spec);
    if (spec.supervise) {
      const supervised = await supervisedContainer(
        { ...spec, supervise: spec.supervise },
        this.config.dataDir,
        spec.identity,
      );
      binds.push(...supervised.binds);
      cmd = supervised.cmd;
      env = this.env({ ...spec, env: { ...spec.env, ...supervised.env } });
    }
    // Only a sandbox whose app never ran claims one (a restart after a stop gets a new container as
    // before): nothing of its own is under the mount points the claim makes in its home.
    const ranBefore = existsSync(join(runDir(this.config.dataDir, spec.sandboxId), 'status'));
    if (
      this.pool &&
      !ranBefore &&
      fitsPool(this.pool, spec, { loopbackPorts: !!this.config.edge?.useLoopbackPorts })
    ) {
      const request = await claimRequest(spec, binds, env);
      const claimed = request ? await this.pool.claim(request) : undefined;
      if (claimed) return { instanceId: claimed };
    }
    const memory = spec.resources.memoryMb * 1024 * 1024;
    const exposed: Record<string, object> = {};
    for (const port of spec.ports) exposed[`${port}/tcp`] = {};
    try {
      const container = await this.docker.createContainer({
        name: containerName(spec.sandboxId),
        Image: spec.image,
        Cmd: cmd,
        Env: env,
        User: `${spec.identity.uid}:${spec.identity.gid}`,
        WorkingDir: WORKSPACE_MOUNT,
        Hostname: 'sandbox',
        Labels: { ...spec.labels, ...managedLabels(spec.sandboxId, this.instance) },
        ExposedPorts: exposed,
        StopSignal: 'SIGTERM',
        HostConfig: {
          ...(this.config.edge?.useLoopbackPorts ? { PortBindings: loopbackPortBindings(spec.ports) } : {}),
          Init: true,
          Binds: binds,
          // Nothing is written to the container's own layer (unbounded on overlay2): writes go to
          // the sandbox's disk (binds above) or to the size-limited /tmp.
          ReadonlyRootfs: true,
          Tmpfs: storage.tmpfs,
          NetworkMode: this.networkId ?? this.network,
          Memory: memory,
          MemorySwap: memory,
          NanoCpus: Math.round(spec.resources.cpus * 1e9),
          PidsLimit: spec.resources.pids,
          SecurityOpt: ['no-new-privileges:true'],
          CapDrop: ['ALL'],
          CapAdd: this.config.docker.capAdd,
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
          ...(spec.isolation === 'gvisor' ? this.runtimes.gvisorHostConfig(spec.resources.pids) : {}),
        },
      });
      return { instanceId: container.id };
    } catch (err) {
      if (engineStatus(err) === 409) {
        const info = await this.container(spec.sandboxId).inspect();
        return { instanceId: info.Id };
      }
      if (spec.isolation === 'gvisor' && isUnknownRuntime(err)) {
        this.runtimes.invalidate();
        throw isolationUnavailable(this.runtimes.gvisorRuntime, 'the engine refused the runtime');
      }
      throw fromEngineError(err, `create the container from image ${spec.image}`);
    }
  }

  /** Ends the claim of a sandbox on a warm container (removed with its slot); false: it had none. */
  private async releaseClaim(sandboxId: string, _containerId?: string): Promise<boolean> {
    if (!this.pool) return false;
    return this.pool.release(sandboxId);
  }

  appStatus(sandboxId: string) {
    return readAppStatus(this.config.dataDir, sandboxId);
  }

  async restartApp(sandboxId: string): Promise<void> {
    const result = await this.exec(sandboxId, { cmd: ['sh', SUPERVISOR_PATH, 'restart'], timeoutSec: 10 });
    if (result.exitCode !== 0) {
      throw new PreviewdError('invalid_state', `sandbox ${sandboxId} has no app supervisor running`, {
        hint: 'Only sandboxes with a start command run supervised; sandboxes created before may need a delete and re-create.',
      });
    }
  }

  async start(sandboxId: string): Promise<void> {
    // After a reboot the container's bind sources are empty mount points until remounted.
    await this.storage.ensureMounted(sandboxId);
    try {
      await this.container(sandboxId).start();
    } catch (err) {
      if (engineStatus(err) === 304) return; // already running
      throw fromEngineError(err, 'start the sandbox container');
    }
  }

  async stop(sandboxId: string, opts: { timeoutSec?: number } = {}): Promise<void> {
    try {
      const info = await this.container(sandboxId).inspect();
      if (info.State.Paused) await this.container(sandboxId).unpause();
      await this.container(sandboxId).stop({ t: opts.timeoutSec ?? this.config.docker.stopTimeoutSec });
      // A warm pool container served this sandbox once: it goes now, the next start makes a new one.
      if (info.Config.Labels?.[LABEL_POOL]) await this.releaseClaim(sandboxId);
    } catch (err) {
      const status = engineStatus(err);
      if (status === 304) return; // already stopped
      if (status === 404) return; // nothing to stop
      throw fromEngineError(err, 'stop the sandbox container');
    }
  }

  async pause(sandboxId: string): Promise<void> {
    try {
      await this.container(sandboxId).pause();
    } catch (err) {
      const info = await this.inspect(sandboxId);
      if (info.status === 'paused') return;
      throw fromEngineError(err, 'pause the sandbox container');
    }
  }

  async unpause(sandboxId: string): Promise<void> {
    try {
      await this.container(sandboxId).unpause();
    } catch (err) {
      const info = await this.inspect(sandboxId);
      if (info.status === 'running') return;
      throw fromEngineError(err, 'unpause the sandbox container');
    }
    // The engine records a pause from the runtime's event too: one delivered late (a loaded host,
    // gVisor) marks the resumed container paused again until the resume's own event arrives. The
    // caller is told "running" only once the engine says so as well (bounded).
    for (let i = 0; i < 40 && (await this.inspect(sandboxId)).status === 'paused'; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async destroy(sandboxId: string, opts: { keepWorkspace?: boolean } = {}): Promise<void> {
    this.hostPids.delete(sandboxId);
    // Before the storage is released: the slot's binds of the workspace would keep it busy.
    await this.releaseClaim(sandboxId);
    try {
      await this.container(sandboxId).remove({ force: true, v: true });
    } catch (err) {
      const status = engineStatus(err);
      // 404: already gone; 409: removal already in progress.
      if (status !== 404 && status !== 409) throw fromEngineError(err, 'remove the sandbox container');
    }
    if (!opts.keepWorkspace) {
      await this.storage.remove(sandboxId);
    }
  }

  async inspect(sandboxId: string): Promise<InstanceInfo> {
    try {
      const info = await this.container(sandboxId).inspect();
      const net = info.NetworkSettings.Networks?.[this.network];
      return {
        sandboxId,
        status: info.State.Status as InstanceStatus,
        exitCode: info.State.Running ? undefined : info.State.ExitCode,
        startedAt: info.State.StartedAt,
        finishedAt: info.State.FinishedAt,
        ip: net?.IPAddress || undefined,
        oomKilled: info.State.OOMKilled,
      };
    } catch (err) {
      if (engineStatus(err) === 404) return { sandboxId, status: 'missing' };
      throw fromEngineError(err, 'inspect the sandbox container');
    }
  }

  async list(): Promise<ManagedInstance[]> {
    try {
      const containers = await this.docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${this.instance}`] },
      });
      // Claimed warm containers by their name; unclaimed ones are the pool's, never a sandbox's.
      return containers
        .filter((c) => sandboxIdOf(c.Labels, c.Names))
        .map((c) => ({
          sandboxId: sandboxIdOf(c.Labels, c.Names)!,
          instanceId: c.Id,
          status: c.State as InstanceStatus,
          createdAt: new Date(c.Created * 1000),
        }));
    } catch (err) {
      throw fromEngineError(err, 'list sandbox containers');
    }
  }

  async exec(sandboxId: string, opts: ExecOptions): Promise<ExecResult> {
    const once = () => collectExec((o) => this.startExec(sandboxId, o), opts);
    const result = await once();
    // The runtime could not start the process at all (runsc on a loaded host: "OCI runtime exec
    // failed: … did not terminate successfully"): nothing ran, so once more.
    return runtimeRefusedExec(result) ? once() : result;
  }

  /**
   * Starts a process in the sandbox (docker-exec.ts): every exec carries an environment marker
   * its children inherit, by which `signal` finds and signals them all through /proc.
   */
  startExec(sandboxId: string, opts: ExecStartOptions): Promise<ExecSession> {
    return startContainerExec(
      this.container(sandboxId),
      sandboxId,
      { ...opts, cwd: opts.cwd ?? WORKSPACE_MOUNT },
      this.execAs(sandboxId),
    );
  }

  /** A claimed warm container's execs run as the sandbox's user with its environment. */
  private execAs(sandboxId: string): ExecAs | undefined {
    const claim = this.pool?.claimOf(sandboxId);
    return claim ? { user: `${claim.identity.uid}:${claim.identity.gid}`, env: claim.env } : undefined;
  }

  async logs(sandboxId: string, opts: LogOptions = {}): Promise<Readable & AsyncIterable<OutputChunk>> {
    const base = {
      stdout: true,
      stderr: true,
      since: opts.since,
      ...(opts.tail !== undefined ? { tail: opts.tail } : {}),
    };
    try {
      const container = this.container(sandboxId);
      const demux = new DemuxStream();
      if (opts.follow) {
        const stream = await container.logs({ ...base, follow: true });
        stream.pipe(demux);
      } else {
        const buf = await container.logs({ ...base, follow: false });
        Readable.from([buf]).pipe(demux);
      }
      return demux;
    } catch (err) {
      if (engineStatus(err) === 404) return Readable.from([]).pipe(new PassThrough({ objectMode: true }));
      throw fromEngineError(err, 'read the sandbox logs');
    }
  }

  /**
   * Reads the sandbox's /proc/net/tcp{,6}. With a local engine and a shared PID namespace (the
   * usual deployment) it reads them from the host through the container's main PID, checked
   * against the container id in its cgroup: no exec, no process in the sandbox. Otherwise (remote
   * engine, previewd in a container) it runs `cat` inside.
   */
  async netTcp(sandboxId: string): Promise<string> {
    const cached = this.hostPids.get(sandboxId);
    if (cached) {
      const text = await this.readHostNetTcp(cached.pid, cached.containerId);
      if (text !== undefined) return text;
      this.hostPids.delete(sandboxId);
    }
    const info = await this.container(sandboxId)
      .inspect()
      .catch((err) => {
        if (engineStatus(err) === 404)
          throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} has no container`);
        throw fromEngineError(err, 'inspect the sandbox container');
      });
    if (!info.State.Running)
      throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} is not running`);
    if (info.State.Pid > 0) {
      const text = await this.readHostNetTcp(info.State.Pid, info.Id);
      if (text !== undefined) {
        this.hostPids.set(sandboxId, { pid: info.State.Pid, containerId: info.Id });
        return text;
      }
    }
    const result = await this.exec(sandboxId, {
      cmd: ['cat', '/proc/net/tcp', '/proc/net/tcp6'],
      timeoutSec: 5,
    });
    return result.stdout.toString('utf8');
  }

  private async readHostNetTcp(pid: number, containerId: string): Promise<string | undefined> {
    try {
      const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8');
      if (!cgroup.includes(containerId)) return undefined;
      const [v4, v6] = await Promise.all([
        readFile(`/proc/${pid}/net/tcp`, 'utf8'),
        readFile(`/proc/${pid}/net/tcp6`, 'utf8').catch(() => ''),
      ]);
      return v4 + v6;
    } catch {
      return undefined;
    }
  }

  /** The engine's exits of this previewd's containers, as they happen (container-exits.ts). */
  watchExits(listener: (exit: { sandboxId: string; exitCode: number }) => void): () => void {
    return watchContainerExits(this.docker, this.instance, listener);
  }

  async address(sandboxId: string, port: number): Promise<{ host: string; port: number }> {
    if (this.config.edge?.useLoopbackPorts) return this.loopbackAddress(sandboxId, port);
    const info = await this.inspect(sandboxId);
    if (!info.ip)
      throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} has no address (is it running?)`);
    return { host: info.ip, port };
  }

  /** Where a port published on the host's loopback answers (useLoopbackPorts, for Docker Desktop). */
  private async loopbackAddress(sandboxId: string, port: number): Promise<{ host: string; port: number }> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.container(sandboxId).inspect();
    } catch (err) {
      throw fromEngineError(err, 'inspect the sandbox container');
    }
    if (!info.State.Running) {
      throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} has no address (is it running?)`);
    }
    const published = info.NetworkSettings.Ports?.[`${port}/tcp`]?.find((b) => b.HostIp === '127.0.0.1');
    if (!published?.HostPort) {
      throw new PreviewdError(
        'port_not_exposed',
        `port ${port} of sandbox ${sandboxId} is not published on loopback`,
        {
          hint: 'With useLoopbackPorts, ports are published when the container is created; declare them at create.',
        },
      );
    }
    return { host: '127.0.0.1', port: Number(published.HostPort) };
  }
}
