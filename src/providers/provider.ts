import type { Readable } from 'node:stream';
import type { IsolationLevel } from '../domain/isolation.js';
import type { SandboxIdentity } from '../domain/sandbox.js';
import type { Resources } from '../domain/schemas.js';
import type { WorkspaceFiles } from './workspace-fs.js';

/** What a workspace is made with (storage options join `identity` here). */
export interface WorkspaceOptions {
  /** The sandbox's own uid/gid: the workspace and everything previewd makes in it belong to it. */
  identity: SandboxIdentity;
  /**
   * Read-only layers of the layer store (src/workspaces/layers.ts), top first, under the
   * workspace's own writable layer (a template's dependencies).
   */
  layers?: string[];
  /** The sandbox's disk: its writable layer, home, caches' writes and status folder (ENOSPC past it). */
  diskMb?: number;
  /** previewd's own template build (template-warm.ts): the host's download caches, writable. */
  build?: boolean;
}

/** What a provider needs to create a sandbox's container. */
export interface SpawnSpec {
  sandboxId: string;
  image: string;
  /** argv of the app; when absent the container idles until stopped. */
  cmd?: string[];
  env: Record<string, string>;
  resources: Resources;
  labels: Record<string, string>;
  ports: number[];
  /** The sandbox's own uid/gid (src/sandboxes/identity.ts): its processes run as it. */
  identity: SandboxIdentity;
  /**
   * Run the app under previewd's supervisor (install when dependencies changed, start, restart
   * with backoff after a crash) instead of `cmd`. Providers without a supervisor run `cmd`.
   */
  supervise?: { install?: string; start: string; maxRestarts: number };
  /** How the container is run (absent: `container`); see docs/isolation.md. */
  isolation?: IsolationLevel;
}

/** What the app supervisor reports (runtime/supervisor.sh). */
export interface AppStatus {
  state: 'installing' | 'running' | 'crashed' | 'failed' | 'stopped';
  exitCode?: number;
  /** Restarts since the last healthy run. */
  restarts: number;
  /** One more per exit of the app the supervisor did not ask for. */
  crashes: number;
  maxRestarts: number;
  updatedAt: string;
}

export type InstanceStatus =
  | 'created'
  | 'running'
  | 'paused'
  | 'exited'
  | 'restarting'
  | 'dead'
  | 'removing'
  | 'missing';

export interface InstanceInfo {
  sandboxId: string;
  status: InstanceStatus;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  /** Address on the sandbox network, when running. */
  ip?: string;
  /** Whether the engine killed the app for using too much memory. */
  oomKilled?: boolean;
}

export interface ManagedInstance {
  sandboxId: string;
  instanceId: string;
  status: InstanceStatus;
  createdAt: Date;
}

export interface ExecOptions {
  cmd: string[];
  cwd?: string;
  env?: Record<string, string>;
  stdin?: Buffer | string;
  /** Kills every process of the exec after this many seconds (buffered exec: throws exec_timeout). */
  timeoutSec?: number;
  /** Keeps at most this many bytes of stdout + stderr; the rest is dropped and `truncated` set. */
  maxOutputBytes?: number;
}

export interface ExecStartOptions {
  cmd: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Keep stdin open as a writable stream (interactive sessions). */
  stdin?: boolean;
  /** Allocate a pseudo-terminal (stdout and stderr then arrive merged as stdout). */
  tty?: { cols: number; rows: number };
}

/** A process started in a sandbox, with its output as it comes. */
export interface ExecSession {
  /** Marker shared by every process of this exec (used to signal them all). */
  readonly id: string;
  /** OutputChunk objects in order; ends when the process and its children closed their output. */
  readonly output: Readable & AsyncIterable<OutputChunk>;
  /** Present when started with `stdin: true`. */
  readonly stdin?: NodeJS.WritableStream;
  /** Resolves with the exit code once the process has ended (after `output` ended). */
  exitCode(): Promise<number>;
  /** Sends a signal to every process of this exec (children included). */
  signal(signal: string): Promise<void>;
  resize(cols: number, rows: number): Promise<void>;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  durationMs: number;
  /** Set when output past maxOutputBytes was dropped. */
  truncated?: boolean;
}

export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface LogOptions {
  follow?: boolean;
  /** Unix seconds. */
  since?: number;
  tail?: number;
}

/**
 * One interface, many runtimes. Every method takes the sandbox id; implementations find their own
 * instance from it (labels/names), so the control plane never depends on engine ids.
 * A conformance suite (test/conformance/provider.conformance.ts) runs against each implementation.
 */
export interface SandboxProvider {
  readonly name: string;
  /** Throws PreviewdError('engine_unavailable') when the engine does not answer. */
  health(): Promise<void>;
  /** Creates (does not start) the instance. Idempotent: an existing instance for the id is reused. */
  spawn(spec: SpawnSpec): Promise<{ instanceId: string }>;
  start(sandboxId: string): Promise<void>;
  stop(sandboxId: string, opts?: { timeoutSec?: number }): Promise<void>;
  pause(sandboxId: string): Promise<void>;
  unpause(sandboxId: string): Promise<void>;
  /** Removes the instance and its workspace. Idempotent. */
  destroy(sandboxId: string, opts?: { keepWorkspace?: boolean }): Promise<void>;
  inspect(sandboxId: string): Promise<InstanceInfo>;
  /** Every instance this previewd manages, whatever its state. */
  list(): Promise<ManagedInstance[]>;
  exec(sandboxId: string, opts: ExecOptions): Promise<ExecResult>;
  /** Starts a process and streams its output; the caller reads `output` and may signal it. */
  startExec(sandboxId: string, opts: ExecStartOptions): Promise<ExecSession>;
  /** The app's output (stdout/stderr of the instance's main process). */
  logs(sandboxId: string, opts?: LogOptions): Promise<Readable & AsyncIterable<OutputChunk>>;
  /**
   * Calls `listener` within moments when an instance's main process exits (the app crashed or was
   * stopped). Returns the function that stops watching. Optional: without it the reconciler notices.
   */
  watchExits?(listener: (exit: { sandboxId: string; exitCode: number }) => void): () => void;
  /**
   * The text of /proc/net/tcp and /proc/net/tcp6 as seen inside the sandbox (its listening
   * sockets). Throws sandbox_not_running when it is not running.
   */
  netTcp(sandboxId: string): Promise<string>;
  /** What the app supervisor last reported; undefined when the app is not supervised. */
  appStatus?(sandboxId: string): Promise<AppStatus | undefined>;
  /** Asks the supervisor to restart the app now (install check included). */
  restartApp?(sandboxId: string): Promise<void>;
  /** Where the edge reaches `port` of the sandbox. */
  address(sandboxId: string, port: number): Promise<{ host: string; port: number }>;
  /**
   * The sandbox's workspace files; usable whatever the instance's state. What they create belongs
   * to `identity` (the sandbox's own; without it, the uid of sandboxes made before identities).
   */
  files(sandboxId: string, identity?: SandboxIdentity): WorkspaceFiles;
  /** Creates the (empty) workspace, owned by `opts.identity`; called before spawn. */
  prepareWorkspace(sandboxId: string, opts: WorkspaceOptions): Promise<WorkspaceFiles>;
  /**
   * Mounts whatever of the sandbox's storage (overlay stack, disk) is not mounted: after a restart
   * of the host, before its container starts. Idempotent. Optional: providers without host storage.
   */
  ensureStorage?(sandboxId: string): Promise<void>;
  /** The isolation levels this provider can run now (absent: `container` only). */
  isolationLevels?(): Promise<IsolationLevel[]>;
}
