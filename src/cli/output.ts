/**
 * Human and machine output of the CLI: colour only on a terminal (and never with NO_COLOR),
 * aligned tables, a spinner on stderr for long work, `--json` for scripts, and errors with their
 * code, hint and a documented exit code (docs/cli.md).
 */
import type { PreviewdError } from '@previewd/sdk';

/** A previewd error by shape (a copy of the SDK loaded from elsewhere is still recognised). */
function isApiError(err: unknown): err is PreviewdError {
  return (
    err instanceof Error &&
    typeof (err as { code?: unknown }).code === 'string' &&
    typeof (err as { status?: unknown }).status === 'number'
  );
}

export const exitCodes = {
  ok: 0,
  /** Anything not listed below (a server-side failure, an engine error). */
  failure: 1,
  /** Bad usage or configuration. */
  usage: 2,
  /** The sandbox, file, port or process does not exist. */
  notFound: 3,
  /** The sandbox is not in a state that allows it (start it first, wait). */
  conflict: 4,
  /** The server cannot be reached, or the engine is down. */
  unavailable: 5,
  /** A wait or a command ran out of time. */
  timeout: 6,
  /** The key is missing or refused. */
  auth: 7,
} as const;

/** The exit code of an error, by its code first and its HTTP status second. */
export function exitCodeOf(err: unknown): number {
  const name = (err as { name?: string; code?: string } | undefined)?.name;
  if (name === 'ConfigError' || (err as { code?: string })?.code === 'commander.invalidArgument') {
    return exitCodes.usage;
  }
  if (!isApiError(err)) return exitCodes.failure;
  switch (err.code) {
    case 'connection_failed':
    case 'engine_unavailable':
    case 'capacity_exhausted':
      return exitCodes.unavailable;
    case 'wait_timeout':
    case 'exec_timeout':
    case 'app_not_ready':
      return exitCodes.timeout;
    case 'invalid_request':
    case 'invalid_id':
    case 'invalid_path':
    case 'invalid_json':
    case 'resource_limit':
      return exitCodes.usage;
  }
  if (err.status === 401 || err.status === 403) return exitCodes.auth;
  if (err.status === 404) return exitCodes.notFound;
  if (err.status === 409) return exitCodes.conflict;
  return exitCodes.failure;
}

const useColour = (stream: NodeJS.WriteStream): boolean =>
  Boolean(stream.isTTY) && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';

const paint =
  (open: number, close: number) =>
  (text: string, stream: NodeJS.WriteStream = process.stdout): string =>
    useColour(stream) ? `\x1b[${open}m${text}\x1b[${close}m` : text;

export const colour = {
  bold: paint(1, 22),
  dim: paint(2, 22),
  red: paint(31, 39),
  green: paint(32, 39),
  yellow: paint(33, 39),
  cyan: paint(36, 39),
};

export function stateColour(state: string): string {
  if (state === 'running') return colour.green(state);
  if (state === 'error') return colour.red(state);
  if (state === 'stopped' || state === 'deleted') return colour.dim(state);
  return colour.yellow(state);
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function writeLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: strips the colour codes for widths
const ANSI = /\x1b\[[0-9;]*m/g;
const width = (s: string) => s.replace(ANSI, '').length;

/** An aligned table with a dim header; `rows` may contain coloured cells. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - width(c))))
      .join('  ')
      .trimEnd();
  return [colour.dim(line(headers)), ...rows.map(line)].join('\n');
}

/** "3m ago" style ages. */
export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const sec = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (sec < 60) return `${sec}s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m ago`;
  if (sec < 86_400) return `${Math.floor(sec / 3600)}h ago`;
  return `${Math.floor(sec / 86_400)}d ago`;
}

/** Prints an error (code, message, hint) to stderr and sets the exit code; JSON with --json. */
export function reportError(err: unknown, json: boolean): void {
  const code = exitCodeOf(err);
  if (isApiError(err)) {
    if (json) {
      process.stderr.write(
        `${JSON.stringify({ error: { code: err.code, message: err.message, hint: err.hint, status: err.status } })}\n`,
      );
    } else {
      process.stderr.write(
        `${colour.red('error', process.stderr)} ${colour.bold(err.code, process.stderr)}: ${err.message}\n`,
      );
      if (err.hint) process.stderr.write(`  ${colour.dim('hint:', process.stderr)} ${err.hint}\n`);
    }
  } else {
    const message = err instanceof Error ? err.message : String(err);
    if (json) process.stderr.write(`${JSON.stringify({ error: { code: 'cli_error', message } })}\n`);
    else process.stderr.write(`${colour.red('error', process.stderr)}: ${message}\n`);
  }
  process.exitCode = code;
}

/** A progress bar for a spinner's text: `[#####-----] 3/6`. */
export function progressBar(done: number, total: number, width = 20): string {
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : width;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}

export interface Spinner {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
  stop(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * A one-line spinner with elapsed seconds on stderr when it is a terminal (and not --json);
 * otherwise only the final line is written, so logs and pipes stay clean.
 */
export function spinner(text: string, opts: { enabled?: boolean } = {}): Spinner {
  const out = process.stderr;
  const live = (opts.enabled ?? true) && Boolean(out.isTTY);
  const quiet = opts.enabled === false;
  const since = Date.now();
  let current = text;
  let frame = 0;
  const render = () => {
    frame = (frame + 1) % FRAMES.length;
    const elapsed = Math.floor((Date.now() - since) / 1000);
    out.write(
      `\r\x1b[2K${colour.cyan(FRAMES[frame] ?? '', out)} ${current} ${colour.dim(`${elapsed}s`, out)}`,
    );
  };
  const timer = live ? setInterval(render, 80) : undefined;
  timer?.unref();
  if (live) render();
  const end = (mark: string, final: string) => {
    if (timer) clearInterval(timer);
    if (live) out.write('\r\x1b[2K');
    if (!quiet) out.write(`${mark} ${final}\n`);
  };
  return {
    update: (t) => {
      current = t;
      if (live) render();
    },
    succeed: (t) => end(colour.green('✓', out), t),
    fail: (t) => end(colour.red('✗', out), t),
    stop: () => {
      if (timer) clearInterval(timer);
      if (live) out.write('\r\x1b[2K');
    },
  };
}

/** Runs `fn` with the spinner; the spinner fails with the error's code and rethrows. */
export async function withSpinner<T>(
  text: string,
  json: boolean,
  fn: (s: Spinner) => Promise<T>,
): Promise<T> {
  const s = spinner(text, { enabled: !json });
  try {
    return await fn(s);
  } catch (err) {
    if (json) s.stop();
    else s.fail(`${text}: ${isApiError(err) ? err.code : 'failed'}`);
    throw err;
  }
}

/** Wraps a command's action: errors are reported (code, hint, exit code) instead of thrown. */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const opts = args.find((a) => a && typeof a === 'object' && 'json' in (a as object)) as
      | { json?: boolean }
      | undefined;
    try {
      await fn(...args);
    } catch (err) {
      reportError(err, Boolean(opts?.json));
    }
  };
}
