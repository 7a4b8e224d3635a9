import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { PreviewdError } from '../domain/errors.js';
import type { EventBus } from '../events/bus.js';
import type { ExecSession, OutputChunk, SandboxProvider } from '../providers/provider.js';

export interface ProcessInfo {
  /** PID inside the sandbox. */
  pid: number;
  cmd: string[];
  cwd?: string;
  startedAt: string;
  running: boolean;
  exitCode?: number;
  endedAt?: string;
}

interface Tracked {
  info: ProcessInfo;
  session: ExecSession;
  chunks: OutputChunk[];
  bytes: number;
  /** Bytes dropped from the front of the log to stay within the cap. */
  dropped: number;
  events: EventEmitter;
}

/** The argv that prints the shell's PID on the first stdout line and then becomes the command. */
function withPidLine(cmd: string[]): string[] {
  return ['sh', '-c', 'echo "$$"; exec "$@"', 'sh', ...cmd];
}

function lastLines(chunks: OutputChunk[], n: number): string[] {
  const text = Buffer.concat(chunks.slice(-64).map((c) => c.data)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .slice(-n);
}

/**
 * Background processes of sandboxes: started through the provider, owned by the control plane
 * (they keep running when the client that started them goes away), with a bounded in-memory log
 * that clients can read and follow. They do not survive a restart of previewd itself: the
 * processes keep running in the sandbox, but their output and exit code are no longer collected.
 */
export class ProcessRegistry {
  private readonly bySandbox = new Map<string, Map<number, Tracked>>();

  constructor(
    private readonly deps: { provider: SandboxProvider; bus: EventBus; log: Logger; logBytes: number },
  ) {}

  async start(
    sandboxId: string,
    opts: { cmd: string[]; cwd?: string; env?: Record<string, string> },
  ): Promise<ProcessInfo> {
    const session = await this.deps.provider.startExec(sandboxId, {
      cmd: withPidLine(opts.cmd),
      cwd: opts.cwd,
      env: opts.env,
    });
    const iterator = session.output[Symbol.asyncIterator]();
    // The first stdout line is the PID; whatever follows it is the command's own output.
    let head = Buffer.alloc(0);
    const early: OutputChunk[] = [];
    let pid: number | undefined;
    while (pid === undefined) {
      const next = await iterator.next();
      if (next.done) throw new PreviewdError('engine_error', 'the process ended before it reported its PID');
      const chunk = next.value as OutputChunk;
      if (chunk.stream === 'stderr') {
        early.push(chunk);
        continue;
      }
      head = Buffer.concat([head, chunk.data]);
      const nl = head.indexOf(10);
      if (nl === -1) continue;
      pid = Number(head.subarray(0, nl).toString());
      const rest = head.subarray(nl + 1);
      if (rest.length > 0) early.push({ stream: 'stdout', data: rest });
    }
    const tracked: Tracked = {
      info: { pid, cmd: opts.cmd, startedAt: new Date().toISOString(), running: true },
      session,
      chunks: [],
      bytes: 0,
      dropped: 0,
      events: new EventEmitter(),
    };
    tracked.events.setMaxListeners(0);
    if (opts.cwd) tracked.info.cwd = opts.cwd;
    let procs = this.bySandbox.get(sandboxId);
    if (!procs) {
      procs = new Map();
      this.bySandbox.set(sandboxId, procs);
    }
    procs.set(pid, tracked);
    for (const chunk of early) this.append(tracked, chunk);
    void this.collect(sandboxId, tracked, iterator);
    return { ...tracked.info };
  }

  private append(tracked: Tracked, chunk: OutputChunk): void {
    tracked.chunks.push(chunk);
    tracked.bytes += chunk.data.length;
    while (tracked.bytes > this.deps.logBytes && tracked.chunks.length > 1) {
      const old = tracked.chunks.shift()!;
      tracked.bytes -= old.data.length;
      tracked.dropped += old.data.length;
    }
    tracked.events.emit('chunk', chunk);
  }

  private async collect(
    sandboxId: string,
    tracked: Tracked,
    iterator: AsyncIterator<OutputChunk>,
  ): Promise<void> {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        this.append(tracked, next.value);
      }
    } catch (err) {
      this.deps.log.debug({ err, sandboxId }, 'process output ended with an error');
    }
    const exitCode = await tracked.session.exitCode().catch(() => -1);
    tracked.info.running = false;
    tracked.info.exitCode = exitCode;
    tracked.info.endedAt = new Date().toISOString();
    tracked.events.emit('end');
    await this.deps.bus
      .publish({
        type: 'process.exit',
        sandboxId,
        data: { pid: tracked.info.pid, exitCode, lastLines: lastLines(tracked.chunks, 20) },
      })
      .catch((err) => this.deps.log.warn({ err, sandboxId }, 'could not publish process.exit'));
  }

  private find(sandboxId: string, pid: number): Tracked {
    const tracked = this.bySandbox.get(sandboxId)?.get(pid);
    if (!tracked) {
      throw new PreviewdError('process_not_found', `sandbox ${sandboxId} has no background process ${pid}`);
    }
    return tracked;
  }

  list(sandboxId: string): ProcessInfo[] {
    return [...(this.bySandbox.get(sandboxId)?.values() ?? [])].map((t) => ({ ...t.info }));
  }

  get(sandboxId: string, pid: number): ProcessInfo {
    return { ...this.find(sandboxId, pid).info };
  }

  async kill(sandboxId: string, pid: number, signal = 'TERM'): Promise<ProcessInfo> {
    const tracked = this.find(sandboxId, pid);
    if (tracked.info.running) await tracked.session.signal(signal);
    return { ...tracked.info };
  }

  /** The kept output; with `follow`, then what comes until the process ends or `signal` aborts. */
  async *logs(
    sandboxId: string,
    pid: number,
    opts: { follow?: boolean; signal?: AbortSignal } = {},
  ): AsyncGenerator<OutputChunk> {
    const tracked = this.find(sandboxId, pid);
    const queue: (OutputChunk | null)[] = [];
    let wake: (() => void) | undefined;
    const onChunk = (chunk: OutputChunk) => {
      queue.push(chunk);
      wake?.();
    };
    const onEnd = () => {
      queue.push(null);
      wake?.();
    };
    const onAbort = () => onEnd();
    const following = opts.follow && tracked.info.running;
    if (following) {
      tracked.events.on('chunk', onChunk);
      tracked.events.on('end', onEnd);
      opts.signal?.addEventListener('abort', onAbort);
    }
    try {
      for (const chunk of [...tracked.chunks]) yield chunk;
      if (!following) return;
      for (;;) {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const next = queue.shift()!;
        if (next === null) return;
        yield next;
      }
    } finally {
      tracked.events.off('chunk', onChunk);
      tracked.events.off('end', onEnd);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Forgets a sandbox's processes (deleted sandbox). */
  forget(sandboxId: string): void {
    this.bySandbox.delete(sandboxId);
  }
}
