import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmod, chown, mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { type Clock, systemClock } from '../../domain/clock.js';
import { PreviewdError } from '../../domain/errors.js';
import { isSandboxId } from '../../domain/ids.js';
import type { IsolationLevel } from '../../domain/isolation.js';
import type { SandboxIdentity } from '../../domain/sandbox.js';
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
import { exitCodeOf, hostExecSession, signalGroup, spawnHostProcess } from './host-process.js';

const WORKSPACE = '/workspace';
/** Log chunks kept per instance (the oldest go first). */
const MAX_LOG_CHUNKS = 10_000;

interface Instance {
  spec: SpawnSpec;
  instanceId: string;
  status: InstanceStatus;
  createdAt: Date;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  /** The app's process while it runs (none: the instance idles, as a container without cmd). */
  app?: ChildProcess;
  appExited?: Promise<void>;
  logs: OutputChunk[];
}

export interface MemoryProviderOptions {
  /** A directory of its own: each sandbox's workspace is `<root>/<id>/workspace`. */
  root: string;
  /** Images it "has" (spawn of any other fails with image_not_found). */
  images?: string[];
  clock?: Clock;
}

/**
 * A provider without an engine, for fast tests of the control plane: instances are records in
 * memory, the app and execs are host processes (a real `sh`) in the workspace, which is a real
 * directory so the files API works. No isolation at all: never for untrusted code.
 */
export class MemoryProvider implements SandboxProvider {
  readonly name = 'memory';
  private readonly instances = new Map<string, Instance>();
  private readonly identities = new Map<string, SandboxIdentity>();
  private readonly events = new EventEmitter();
  private readonly images: Set<string>;
  private readonly clock: Clock;
  private readonly root: string;
  private nextInstance = 1;

  constructor(opts: MemoryProviderOptions) {
    this.root = resolve(opts.root);
    this.images = new Set(opts.images ?? ['previewd/base:bookworm']);
    this.clock = opts.clock ?? systemClock;
    this.events.setMaxListeners(0);
  }

  async health(): Promise<void> {}

  async isolationLevels(): Promise<IsolationLevel[]> {
    return ['container'];
  }

  /** The host directory of a sandbox's /workspace. */
  workspaceDir(sandboxId: string): string {
    if (!isSandboxId(sandboxId)) throw new PreviewdError('invalid_id', `not a sandbox id: ${sandboxId}`);
    return join(this.root, sandboxId, 'workspace');
  }

  async prepareWorkspace(sandboxId: string, opts: WorkspaceOptions): Promise<WorkspaceFiles> {
    const dir = this.workspaceDir(sandboxId);
    await chmod(this.root, 0o755).catch(() => undefined);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(join(this.root, sandboxId), 0o755);
    if (process.getuid?.() === 0) await chown(dir, opts.identity.uid, opts.identity.gid);
    this.identities.set(sandboxId, opts.identity);
    return this.files(sandboxId, opts.identity);
  }

  files(sandboxId: string, identity?: SandboxIdentity): WorkspaceFiles {
    const owner = identity ??
      this.identities.get(sandboxId) ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    return new WorkspaceFiles(this.workspaceDir(sandboxId), owner, WORKSPACE);
  }

  async spawn(spec: SpawnSpec): Promise<{ instanceId: string }> {
    const existing = this.instances.get(spec.sandboxId);
    if (existing) return { instanceId: existing.instanceId };
    if (!this.images.has(spec.image)) {
      throw new PreviewdError('image_not_found', `image ${spec.image} is not on this host`);
    }
    this.workspaceDir(spec.sandboxId);
    const instanceId = `mem-${(this.nextInstance++).toString(16).padStart(8, '0')}`;
    this.instances.set(spec.sandboxId, {
      spec,
      instanceId,
      status: 'created',
      createdAt: new Date(this.clock.now()),
      logs: [],
    });
    return { instanceId };
  }

  private instance(sandboxId: string): Instance {
    const found = this.instances.get(sandboxId);
    if (!found) throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} has no container`);
    return found;
  }

  private env(instance: Instance, extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: this.workspaceDir(instance.spec.sandboxId),
      ...instance.spec.env,
      ...extra,
    };
  }

  async start(sandboxId: string): Promise<void> {
    const instance = this.instance(sandboxId);
    if (instance.status === 'running' || instance.status === 'paused') return;
    instance.status = 'running';
    instance.startedAt = new Date(this.clock.now()).toISOString();
    instance.exitCode = undefined;
    instance.finishedAt = undefined;
    const { cmd } = instance.spec;
    if (!cmd || cmd.length === 0) return;
    const app = spawnHostProcess({
      cmd,
      cwd: this.workspaceDir(sandboxId),
      env: this.env(instance),
      identity: instance.spec.identity,
    });
    instance.app = app;
    const keep = (stream: OutputChunk['stream']) => (data: Buffer) => {
      const chunk = { stream, data };
      instance.logs.push(chunk);
      if (instance.logs.length > MAX_LOG_CHUNKS) instance.logs.shift();
      this.events.emit(`log:${sandboxId}`, chunk);
    };
    app.stdout?.on('data', keep('stdout'));
    app.stderr?.on('data', keep('stderr'));
    instance.appExited = new Promise((done) => {
      const settle = (exitCode: number) => {
        if (instance.app !== app) return done();
        instance.app = undefined;
        instance.status = 'exited';
        instance.exitCode = exitCode;
        instance.finishedAt = new Date(this.clock.now()).toISOString();
        this.events.emit(`end:${sandboxId}`);
        this.events.emit('exit', { sandboxId, exitCode });
        done();
      };
      app.once('error', () => settle(127));
      app.once('close', (code, signal) => settle(exitCodeOf(code, signal)));
    });
  }

  async stop(sandboxId: string, opts: { timeoutSec?: number } = {}): Promise<void> {
    const instance = this.instances.get(sandboxId);
    if (!instance || (instance.status !== 'running' && instance.status !== 'paused')) return;
    const app = instance.app;
    if (!app) {
      instance.status = 'exited';
      instance.exitCode = 0;
      instance.finishedAt = new Date(this.clock.now()).toISOString();
      this.events.emit(`end:${sandboxId}`);
      return;
    }
    signalGroup(app, 'SIGCONT');
    signalGroup(app, 'SIGTERM');
    const graceMs = (opts.timeoutSec ?? 10) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((done) => {
      timer = setTimeout(() => {
        signalGroup(app, 'SIGKILL');
        done();
      }, graceMs);
    });
    await Promise.race([instance.appExited, killed]);
    clearTimeout(timer);
    await instance.appExited;
  }

  async pause(sandboxId: string): Promise<void> {
    const instance = this.instance(sandboxId);
    if (instance.status === 'paused') return;
    if (instance.status !== 'running') {
      throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} is not running`);
    }
    if (instance.app) signalGroup(instance.app, 'SIGSTOP');
    instance.status = 'paused';
  }

  async unpause(sandboxId: string): Promise<void> {
    const instance = this.instance(sandboxId);
    if (instance.status !== 'paused') return;
    if (instance.app) signalGroup(instance.app, 'SIGCONT');
    instance.status = 'running';
  }

  async destroy(sandboxId: string, opts: { keepWorkspace?: boolean } = {}): Promise<void> {
    const dir = this.workspaceDir(sandboxId);
    const instance = this.instances.get(sandboxId);
    if (instance?.app) {
      const app = instance.app;
      signalGroup(app, 'SIGCONT');
      signalGroup(app, 'SIGKILL');
      await instance.appExited;
    }
    this.instances.delete(sandboxId);
    this.events.emit(`end:${sandboxId}`);
    if (!opts.keepWorkspace) {
      this.identities.delete(sandboxId);
      await rm(join(dir, '..'), { recursive: true, force: true });
    }
  }

  async inspect(sandboxId: string): Promise<InstanceInfo> {
    const instance = this.instances.get(sandboxId);
    if (!instance) return { sandboxId, status: 'missing' };
    const info: InstanceInfo = { sandboxId, status: instance.status };
    if (instance.exitCode !== undefined) info.exitCode = instance.exitCode;
    if (instance.startedAt) info.startedAt = instance.startedAt;
    if (instance.finishedAt) info.finishedAt = instance.finishedAt;
    if (instance.status === 'running' || instance.status === 'paused') info.ip = '127.0.0.1';
    return info;
  }

  async list(): Promise<ManagedInstance[]> {
    return [...this.instances.values()].map((i) => ({
      sandboxId: i.spec.sandboxId,
      instanceId: i.instanceId,
      status: i.status,
      createdAt: i.createdAt,
    }));
  }

  /** The labels an instance was spawned with (the engine's container labels). */
  labels(sandboxId: string): Record<string, string> | undefined {
    return this.instances.get(sandboxId)?.spec.labels;
  }

  private running(sandboxId: string): Instance {
    const instance = this.instances.get(sandboxId);
    if (instance?.status !== 'running') {
      throw new PreviewdError('sandbox_not_running', `sandbox ${sandboxId} is not running`);
    }
    return instance;
  }

  /** An exec's cwd: /workspace paths map to the workspace directory, others are the host's. */
  private cwdOf(sandboxId: string, cwd?: string): string {
    const workspace = this.workspaceDir(sandboxId);
    if (!cwd || cwd === WORKSPACE) return workspace;
    if (cwd.startsWith(`${WORKSPACE}/`)) return join(workspace, cwd.slice(WORKSPACE.length + 1));
    if (!cwd.startsWith('/')) return join(workspace, cwd);
    return cwd;
  }

  async startExec(sandboxId: string, opts: ExecStartOptions): Promise<ExecSession> {
    const instance = this.running(sandboxId);
    if (opts.cmd.length === 0) throw new PreviewdError('invalid_request', 'cmd is empty');
    const child = spawnHostProcess({
      cmd: opts.cmd,
      cwd: this.cwdOf(sandboxId, opts.cwd),
      env: this.env(instance, opts.env),
      identity: instance.spec.identity,
      stdin: opts.stdin,
      tty: opts.tty,
    });
    return hostExecSession(child);
  }

  exec(sandboxId: string, opts: ExecOptions): Promise<ExecResult> {
    return collectExec((o) => this.startExec(sandboxId, o), opts);
  }

  async logs(sandboxId: string, opts: LogOptions = {}): Promise<Readable & AsyncIterable<OutputChunk>> {
    const instance = this.instance(sandboxId);
    const past = opts.tail !== undefined ? instance.logs.slice(-Math.max(0, opts.tail)) : [...instance.logs];
    const out = new Readable({ objectMode: true, read() {} });
    for (const chunk of past) out.push(chunk);
    if (!opts.follow || instance.status !== 'running') {
      out.push(null);
      return out;
    }
    const onLog = (chunk: OutputChunk) => out.push(chunk);
    const onEnd = () => out.push(null);
    const off = () => {
      this.events.off(`log:${sandboxId}`, onLog);
      this.events.off(`end:${sandboxId}`, onEnd);
    };
    this.events.on(`log:${sandboxId}`, onLog);
    this.events.once(`end:${sandboxId}`, onEnd);
    out.once('close', off);
    out.once('end', off);
    return out;
  }

  watchExits(listener: (exit: { sandboxId: string; exitCode: number }) => void): () => void {
    this.events.on('exit', listener);
    return () => this.events.off('exit', listener);
  }

  /** The host's socket tables: the instance's processes share the host's network. */
  async netTcp(sandboxId: string): Promise<string> {
    this.running(sandboxId);
    const tables = await Promise.all(
      ['/proc/net/tcp', '/proc/net/tcp6'].map((p) => readFile(p, 'utf8').catch(() => '')),
    );
    return tables.join('');
  }

  async address(sandboxId: string, port: number): Promise<{ host: string; port: number }> {
    this.running(sandboxId);
    return { host: '127.0.0.1', port };
  }

  /** Tests: the engine loses the instance (removed from outside); its app is killed. */
  async vanish(sandboxId: string): Promise<void> {
    await this.destroy(sandboxId, { keepWorkspace: true });
  }

  /** Tests: the app exits on its own with `exitCode` (an instance without an app too). */
  async exitApp(sandboxId: string, exitCode: number): Promise<void> {
    const instance = this.instance(sandboxId);
    if (instance.app) {
      const app = instance.app;
      instance.app = undefined;
      signalGroup(app, 'SIGCONT');
      signalGroup(app, 'SIGKILL');
    }
    instance.status = 'exited';
    instance.exitCode = exitCode;
    instance.finishedAt = new Date(this.clock.now()).toISOString();
    this.events.emit(`end:${sandboxId}`);
    this.events.emit('exit', { sandboxId, exitCode });
  }
}
