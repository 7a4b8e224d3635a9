import { ConnectionError, errorFromBody, type PreviewdError } from './errors.js';

/** The part of the WebSocket API the terminal uses (the browser's, or the `ws` package's in Node 20). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(
    type: string,
    listener: (event: { data?: unknown; code?: number; reason?: string }) => void,
  ): void;
}
/**
 * A WebSocket class. The third argument is what the `ws` package takes (extra handshake headers:
 * the owner an admin key acts for); browsers and undici's global WebSocket ignore it.
 */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string[],
  options?: { headers?: Record<string, string> },
) => WebSocketLike;

export interface TerminalOptions {
  cmd: string | string[];
  cwd?: string;
  env?: Record<string, string>;
  /** A pseudo-terminal (stdout and stderr merged); `true` is 80×24. */
  tty?: boolean | { cols: number; rows: number };
  /** The WebSocket class: default the global one (browsers, Node ≥ 22); in Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
}

/** Who the session acts as. */
export interface TerminalAuth {
  apiKey?: string;
  /** X-Previewd-Owner on the handshake: only a WebSocket class that takes headers (`ws`) sends it. */
  owner?: string;
}

export type TerminalOutput = (data: string, stream: 'stdout' | 'stderr') => void;

/**
 * An interactive session over `GET /exec/ws`: write stdin, resize, signal, and get output as it
 * comes. Closing it kills the command. The key travels in the `Sec-WebSocket-Protocol` header
 * (subprotocols `previewd` and `previewd.key.<key>`: a browser cannot set other headers on a
 * WebSocket), never in the URL, so it does not end up in access logs.
 */
export class Terminal {
  /** The exit code, once the command ended; rejects with the session's error. */
  readonly exit: Promise<number>;
  private listeners: TerminalOutput[] = [];
  private pending: Array<[string, 'stdout' | 'stderr']> = [];

  private constructor(
    private readonly ws: WebSocketLike,
    exit: Promise<number>,
  ) {
    this.exit = exit;
    // Nobody may be waiting for the exit (a terminal closed by the user): never unhandled.
    exit.catch(() => undefined);
  }

  /** Opens the socket, starts the command and resolves once it runs. */
  static open(
    baseUrl: string,
    auth: string | TerminalAuth | undefined,
    sandboxId: string,
    opts: TerminalOptions,
  ): Promise<Terminal> {
    const { apiKey, owner } = typeof auth === 'string' ? { apiKey: auth, owner: undefined } : (auth ?? {});
    const Ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) {
      return Promise.reject(
        new ConnectionError('connection_failed', 'no WebSocket implementation', {
          hint: "Node 20 has no global WebSocket: pass { WebSocket } from the 'ws' package.",
        }),
      );
    }
    const url = new URL(`${baseUrl.replace(/^http/, 'ws')}/v1/sandboxes/${sandboxId}/exec/ws`);
    const ws = new Ctor(
      url.toString(),
      apiKey ? ['previewd', `previewd.key.${apiKey}`] : undefined,
      owner ? { headers: { 'x-previewd-owner': owner } } : undefined,
    );
    let started: (t: Terminal) => void = () => undefined;
    let failed: (err: PreviewdError) => void = () => undefined;
    let exited: (code: number) => void = () => undefined;
    let exitFailed: (err: PreviewdError) => void = () => undefined;
    const ready = new Promise<Terminal>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    const exit = new Promise<number>((resolve, reject) => {
      exited = resolve;
      exitFailed = reject;
    });
    const terminal = new Terminal(ws, exit);
    let isStarted = false;
    const fail = (err: PreviewdError) => {
      if (isStarted) exitFailed(err);
      else failed(err);
    };
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({ type: 'start', cmd: opts.cmd, cwd: opts.cwd, env: opts.env, tty: opts.tty }));
    });
    ws.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      const msg = JSON.parse(event.data) as {
        type: string;
        data?: string;
        exitCode?: number;
        error?: unknown;
      };
      if (msg.type === 'started') {
        isStarted = true;
        started(terminal);
      } else if ((msg.type === 'stdout' || msg.type === 'stderr') && msg.data !== undefined) {
        terminal.emit(msg.data, msg.type);
      } else if (msg.type === 'exit') exited(msg.exitCode ?? -1);
      else if (msg.type === 'error') fail(errorFromBody(200, msg));
    });
    ws.addEventListener('error', (event) => {
      // `ws` says why (e.g. "Unexpected server response: 404" for a refused upgrade); browsers do not.
      const why = (event as { message?: unknown }).message;
      fail(
        new ConnectionError(
          'connection_failed',
          `the exec WebSocket to ${baseUrl} failed${typeof why === 'string' && why ? `: ${why}` : ''}`,
        ),
      );
    });
    ws.addEventListener('close', (event) => {
      fail(
        new ConnectionError(
          'connection_failed',
          `the exec WebSocket closed (${event.code ?? '?'} ${event.reason ?? ''})`,
          {
            hint: 'Check the key and that the sandbox exists; the session ends with its socket.',
          },
        ),
      );
    });
    return ready;
  }

  /** Output as it comes (what arrived before the first listener is delivered to it). */
  onOutput(listener: TerminalOutput): void {
    this.listeners.push(listener);
    for (const [data, stream] of this.pending.splice(0)) listener(data, stream);
  }

  private emit(data: string, stream: 'stdout' | 'stderr'): void {
    if (this.listeners.length === 0) this.pending.push([data, stream]);
    for (const l of this.listeners) l(data, stream);
  }

  /** Sends input (text, or raw bytes). */
  write(data: string | Uint8Array): void {
    if (typeof data === 'string') this.ws.send(JSON.stringify({ type: 'stdin', data }));
    else this.ws.send(data);
  }
  /** Closes the command's stdin. */
  eof(): void {
    this.ws.send(JSON.stringify({ type: 'eof' }));
  }
  resize(cols: number, rows: number): void {
    this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }
  /** Signals the command and its children (INT, TERM, KILL, …). */
  signal(signal: string): void {
    this.ws.send(JSON.stringify({ type: 'signal', signal }));
  }
  /** Ends the session (the command is killed if still running). */
  close(): void {
    this.ws.close(1000);
  }
}
