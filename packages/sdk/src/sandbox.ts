import { errorFromBody, isErrorCode, WaitTimeoutError } from './errors.js';
import { SandboxFiles } from './files.js';
import type {
  CreateSandboxRequest,
  EgressPolicy,
  ExecRequest,
  ExecResult,
  PreviewToken,
  PreviewTokenRequest,
  ProcessInfo,
  ProcessStartRequest,
  SandboxInfo,
} from './generated/api-types.js';
import type { Http } from './http.js';
import type { CreateSnapshotRequest, Snapshot } from './snapshots.js';
import { readNdjson } from './streams.js';
import { Terminal, type TerminalOptions } from './terminal.js';

export type SandboxState = SandboxInfo['state'];
export type Command = string | string[];
export type ExecOptions = Omit<ExecRequest, 'cmd'> & { signal?: AbortSignal };

/** One piece of output; `stream` says which. */
export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: string;
}
/** What execStream yields: output in order, then the exit. */
export type ExecStreamItem = OutputChunk | { exitCode: number };

/** An event of the bus (see docs/io.md for the table). */
export interface PreviewdEvent {
  id: number;
  type: string;
  sandboxId?: string;
  at: string;
  data: Record<string, unknown>;
}

export interface WaitOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

async function* streamItems<T>(body: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  for await (const item of readNdjson<T & { error?: unknown; exitCode?: number }>(body)) {
    if (item && typeof item === 'object' && 'error' in item && item.error) {
      throw errorFromBody(200, item);
    }
    yield item as T;
  }
}

function deadlineSignal(opts: WaitOptions): { signal: AbortSignal; timeoutMs: number } {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  return { signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout, timeoutMs };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** Background processes of a sandbox: they keep running when the client goes away. */
export class SandboxProcesses {
  constructor(
    private readonly http: Http,
    private readonly base: string,
  ) {}

  start(cmd: Command, opts: Omit<ProcessStartRequest, 'cmd'> = {}): Promise<ProcessInfo> {
    return this.http.json('POST', `${this.base}/processes`, { body: { cmd, ...opts } });
  }

  async list(): Promise<ProcessInfo[]> {
    return (await this.http.json<{ processes: ProcessInfo[] }>('GET', `${this.base}/processes`)).processes;
  }

  get(pid: number): Promise<ProcessInfo> {
    return this.http.json('GET', `${this.base}/processes/${pid}`);
  }

  kill(pid: number, signal = 'TERM'): Promise<ProcessInfo> {
    return this.http.json('POST', `${this.base}/processes/${pid}/kill`, { body: { signal } });
  }

  /** Kept output; with `follow` until the process ends (then `{ exitCode }`). */
  async *logs(
    pid: number,
    opts: { follow?: boolean; signal?: AbortSignal } = {},
  ): AsyncGenerator<OutputChunk | { exitCode: number }> {
    const body = await this.http.stream('GET', `${this.base}/processes/${pid}/logs`, 'application/x-ndjson', {
      query: { follow: opts.follow },
      signal: opts.signal,
    });
    yield* streamItems(body);
  }
}

/** What a fork may set on the new sandbox; the rest comes from the forked one. */
export type ForkRequest = Partial<
  Pick<
    CreateSandboxRequest,
    | 'runtime'
    | 'env'
    | 'ports'
    | 'resources'
    | 'visibility'
    | 'idleTimeoutSec'
    | 'pauseAfterSec'
    | 'ttlSec'
    | 'idlePolicy'
    | 'metadata'
    | 'labels'
  >
>;

/** A sandbox: its last known state in `info`, and everything you can do with it. */
export class Sandbox {
  readonly files: SandboxFiles;
  readonly processes: SandboxProcesses;
  private readonly base: string;

  constructor(
    private readonly http: Http,
    public info: SandboxInfo,
  ) {
    this.base = `/v1/sandboxes/${info.id}`;
    this.files = new SandboxFiles(http, this.base);
    this.processes = new SandboxProcesses(http, this.base);
  }

  get id(): string {
    return this.info.id;
  }
  get state(): SandboxState {
    return this.info.state;
  }
  get previews(): SandboxInfo['previews'] {
    return this.info.previews;
  }

  private async update(p: Promise<SandboxInfo>): Promise<this> {
    this.info = await p;
    return this;
  }

  /** Reads the sandbox again. */
  refresh(): Promise<this> {
    return this.update(this.http.json('GET', this.base));
  }
  start(): Promise<this> {
    return this.update(this.http.json('POST', `${this.base}/start`));
  }
  stop(): Promise<this> {
    return this.update(this.http.json('POST', `${this.base}/stop`));
  }
  pause(): Promise<this> {
    return this.update(this.http.json('POST', `${this.base}/pause`));
  }
  /** Records activity; with `untilSec`, holds the sandbox awake that long. */
  keepalive(untilSec?: number): Promise<this> {
    return this.update(
      this.http.json('POST', `${this.base}/keepalive`, { body: untilSec === undefined ? {} : { untilSec } }),
    );
  }
  /**
   * Freezes the sandbox's files as they are now (a running sandbox is paused for the copy); start
   * sandboxes from it with `sandboxes.create({ snapshot: snap.id })`. Process memory is not kept.
   */
  snapshot(opts: CreateSnapshotRequest = {}): Promise<Snapshot> {
    return this.http.json('POST', `${this.base}/snapshots`, { body: opts });
  }

  /** A new sandbox from this one's files as they are now, its app started fresh. */
  async fork(opts: ForkRequest = {}): Promise<Sandbox> {
    return new Sandbox(
      this.http,
      await this.http.json<SandboxInfo>('POST', `${this.base}/fork`, { body: opts }),
    );
  }

  /** Deletes the sandbox, its container and its files. */
  async delete(): Promise<void> {
    await this.http.json('DELETE', this.base);
    this.info = { ...this.info, state: 'deleted' };
  }

  /** Adds a routable port (a preview URL); nothing restarts. */
  exposePort(port: number): Promise<this> {
    return this.update(this.http.json('POST', `${this.base}/ports`, { body: { port } }));
  }
  unexposePort(port: number): Promise<this> {
    return this.update(this.http.json('DELETE', `${this.base}/ports/${port}`));
  }

  /**
   * Sets the egress policy (`allow`, `deny` nothing but DNS, or `list` of CIDRs, hosts and
   * `*.domain` wildcards, minus `deny`); in force for new connections when this resolves.
   */
  setNetwork(policy: { egress: EgressPolicy['egress']; allow?: string[]; deny?: string[] }): Promise<this> {
    return this.update(this.http.json('PUT', `${this.base}/network`, { body: policy }));
  }

  /**
   * The preview URL of `port` as the server reports it. With `token: true` (private sandboxes) a
   * fresh preview token is minted and the URL carries it (it becomes a cookie on first visit).
   */
  async getPreviewUrl(port: number, opts: { token?: boolean; ttlSec?: number } = {}): Promise<string> {
    if (opts.token) return (await this.previewTokens.create({ port, ttlSec: opts.ttlSec })).url;
    let preview = this.info.previews.find((p) => p.port === port);
    if (!preview) preview = (await this.refresh()).info.previews.find((p) => p.port === port);
    if (!preview) {
      throw errorFromBody(404, {
        error: { code: 'port_not_exposed', message: `port ${port} of sandbox ${this.id} is not exposed` },
      });
    }
    return preview.url;
  }

  readonly previewTokens = {
    /** Mints a token (private previews): `{ token, url, expiresAt }`. */
    create: (opts: PreviewTokenRequest = {}): Promise<PreviewToken> =>
      this.http.json('POST', `${this.base}/preview-tokens`, { body: opts }),
    /** Revokes every token issued so far. */
    revokeAll: async (): Promise<void> => {
      await this.http.json('DELETE', `${this.base}/preview-tokens`);
    },
  };

  /** Runs a command and waits for it; a non-zero exit is a result, not an error. */
  exec(cmd: Command, opts: ExecOptions = {}): Promise<ExecResult> {
    const { signal, ...rest } = opts;
    return this.http.json('POST', `${this.base}/exec`, { body: { cmd, ...rest }, signal });
  }

  /** Runs a command, yielding its output as it comes, then `{ exitCode }`. Breaking out kills it. */
  async *execStream(cmd: Command, opts: ExecOptions = {}): AsyncGenerator<ExecStreamItem> {
    const { signal, ...rest } = opts;
    const body = await this.http.stream('POST', `${this.base}/exec`, 'application/x-ndjson', {
      body: { cmd, ...rest },
      signal,
    });
    yield* streamItems<ExecStreamItem>(body);
  }

  /**
   * An interactive session (WebSocket): stdin, PTY resize, signals; output as it comes.
   * In Node 20 pass `{ WebSocket }` from the `ws` package.
   */
  terminal(opts: TerminalOptions): Promise<Terminal> {
    return Terminal.open(
      this.http.baseUrl,
      { apiKey: this.http.apiKey, owner: this.http.owner },
      this.id,
      opts,
    );
  }

  /** The app's own output (install and dev server); `follow` keeps streaming. */
  async *logs(
    opts: { follow?: boolean; tail?: number; since?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<OutputChunk> {
    const { signal, ...query } = opts;
    const body = await this.http.stream('GET', `${this.base}/logs`, 'application/x-ndjson', {
      query,
      signal,
    });
    yield* streamItems<OutputChunk>(body);
  }

  /**
   * The sandbox's events, live; with `lastEventId` stored ones after it first (0: all of them).
   * Runs until you break out or the signal aborts.
   */
  async *events(
    opts: { types?: string[]; lastEventId?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<PreviewdEvent> {
    const body = await this.http.stream('GET', `${this.base}/events`, 'application/x-ndjson', {
      query: { types: opts.types?.join(','), lastEventId: opts.lastEventId },
      signal: opts.signal,
    });
    yield* streamItems<PreviewdEvent>(body);
  }

  /**
   * Waits until the sandbox is in `state` (polling). Reaching `error` (or `deleted`) instead
   * throws the sandbox's error.
   */
  async waitUntil(state: SandboxState, opts: WaitOptions & { intervalMs?: number } = {}): Promise<this> {
    const { signal, timeoutMs } = deadlineSignal(opts);
    for (;;) {
      await this.refresh();
      if (this.state === state) return this;
      if ((this.state === 'error' || this.state === 'deleted') && state !== this.state) {
        const code = this.info.error?.code ?? 'sandbox_error';
        throw errorFromBody(409, {
          error: {
            code: isErrorCode(code) ? code : 'sandbox_error',
            message: `sandbox ${this.id} is ${this.state}${this.info.error ? `: ${this.info.error.message}` : ''}`,
          },
        });
      }
      if (signal.aborted) break;
      await sleep(opts.intervalMs ?? 250, signal);
      if (signal.aborted) break;
    }
    throw new WaitTimeoutError(
      'wait_timeout',
      `sandbox ${this.id} is ${this.state}, not ${state}, after ${timeoutMs} ms`,
      {
        hint: 'Read its logs (sandbox.logs()) and events; raise timeoutMs for slow installs.',
      },
    );
  }

  /**
   * Waits until something listens on `port` inside the sandbox (the server's port.open /
   * port.closed events, replayed from the start, then live).
   */
  async waitForPort(port: number, opts: WaitOptions = {}): Promise<this> {
    const { signal, timeoutMs } = deadlineSignal(opts);
    let open = false;
    try {
      for await (const event of this.events({
        types: ['port.open', 'port.closed'],
        lastEventId: 0,
        signal,
      })) {
        if (event.data.port !== port) continue;
        open = event.type === 'port.open';
        if (open) return this;
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
    throw new WaitTimeoutError(
      'wait_timeout',
      `port ${port} of sandbox ${this.id} did not open within ${timeoutMs} ms`,
      {
        hint: 'Check that the app listens on 0.0.0.0 and this port; read sandbox.logs().',
      },
    );
  }
}
