import { stripTokenParam } from './preview-tokens.js';

/** One request the front sent straight to a sandbox, from its log line (FRONT_LOG_FORMAT). */
export interface FrontLogEntry {
  host: string;
  method: string;
  path: string;
  status: number;
  bytes: number;
  durationMs: number;
  timeMs: number;
  /** The server that answered: `app`, or the built-in edge when the app refused the connection. */
  server: string;
}

/** Parses one line; undefined for anything that is not a request line (start-up notices). */
export function parseFrontLogLine(line: string): FrontLogEntry | undefined {
  const f = line.split('\t');
  if (f.length !== 8 || !f[0]) return undefined;
  const status = Number(f[3]);
  const timeMs = Number(f[6]);
  if (!Number.isInteger(status) || !Number.isFinite(timeMs)) return undefined;
  return {
    host: f[0],
    method: f[1] ?? '',
    path: stripTokenParam(f[2] ?? '/'),
    status,
    bytes: Number(f[4]) || 0,
    durationMs: Math.max(0, Number(f[5]) || 0),
    timeMs,
    server: f[7] ?? '',
  };
}

/**
 * True when the app refused the connection and the front handed the request to the built-in edge
 * (which records it itself), or found no server at all.
 */
export function appUnreachable(entry: FrontLogEntry): boolean {
  return entry.server !== 'app';
}

/**
 * Splits a byte stream into lines and hands each parsed entry on. Chunks arrive in any size; a
 * line split across two chunks is joined.
 */
export class FrontLogReader {
  private partial = '';

  constructor(private readonly onEntry: (entry: FrontLogEntry) => void) {}

  push(chunk: string): void {
    let text = this.partial ? this.partial + chunk : chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) break;
      const entry = parseFrontLogLine(text.slice(start, nl));
      if (entry) this.onEntry(entry);
      start = nl + 1;
    }
    text = text.slice(start);
    // A line without its end for 64 KiB is not one of ours.
    this.partial = text.length > 65_536 ? '' : text;
  }
}
