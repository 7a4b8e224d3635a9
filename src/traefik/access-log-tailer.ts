import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

const MAX_LINE_BYTES = 1024 * 1024;

/** One request of Traefik's JSON access log, as far as previewd reads it. */
export interface AccessLogEntry {
  host: string;
  at: Date;
  status?: number;
  router?: string;
}

/** Where reading stopped: the file (by inode) and the byte after the last complete line read. */
interface Position {
  dev: number;
  ino: number;
  offset: number;
}

export interface AccessLogTailerOptions {
  /** Traefik's access log (`accessLog.filePath`, `format: json`). */
  path: string;
  /** Where the position is kept across restarts, e.g. `<dataDir>/traefik-access-log.position.json`. */
  stateFile: string;
  /** Called once per complete log line that names a request host. */
  onEntry: (entry: AccessLogEntry) => void;
  /** Called after each step that handed on at least one entry (batch work such as writing activity). */
  onBatch?: () => void | Promise<void>;
  log?: Logger;
  pollMs?: number;
  /** Bytes per read. */
  chunkBytes?: number;
  /** Bytes read per poll at most (a large backlog is read over several polls). */
  maxBytesPerStep?: number;
}

/** Reads the fields previewd needs from one JSON access-log line; undefined for anything else. */
export function parseAccessLogLine(line: string): AccessLogEntry | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const host = record.RequestHost ?? record.request_Host;
  if (typeof host !== 'string' || host === '') return undefined;
  const started = typeof record.StartUTC === 'string' ? Date.parse(record.StartUTC) : Number.NaN;
  const entry: AccessLogEntry = { host, at: Number.isNaN(started) ? new Date() : new Date(started) };
  if (typeof record.DownstreamStatus === 'number') entry.status = record.DownstreamStatus;
  if (typeof record.RouterName === 'string') entry.router = record.RouterName;
  return entry;
}

/**
 * Follows Traefik's JSON access log for preview activity. Rotation-safe: when the path names a new
 * file (inode changed: rename + recreate) the old file is read to its end first; when the file
 * shrank (truncated in place, `copytruncate`) reading restarts at 0. The position is persisted
 * after each batch, so a restart resumes where it stopped; with no position it starts at the end.
 */
export class AccessLogTailer {
  private fd?: number;
  private position?: Position;
  private partial = Buffer.alloc(0);
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private savedJson = '';
  private waitedForFile = false;
  private readonly chunk: Buffer;

  constructor(private readonly opts: AccessLogTailerOptions) {
    this.chunk = Buffer.alloc(opts.chunkBytes ?? 64 * 1024);
  }

  /** Reads what was saved and starts polling. */
  async start(): Promise<void> {
    await this.pollOnce();
    const every = this.opts.pollMs ?? 500;
    this.timer = setInterval(() => {
      void this.pollOnce().catch((err) => this.opts.log?.warn({ err }, 'access log tailing failed'));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    this.closeFd();
  }

  /** One step: read everything new (following rotation and truncation), then persist the position. */
  pollOnce(): Promise<void> {
    const previous = this.running ?? Promise.resolve();
    const next = previous.then(() => this.step());
    this.running = next.catch(() => undefined);
    return next;
  }

  private async loadSaved(): Promise<Position | undefined> {
    try {
      const saved = JSON.parse(await readFile(this.opts.stateFile, 'utf8')) as Partial<Position>;
      if (
        typeof saved.ino === 'number' &&
        typeof saved.dev === 'number' &&
        typeof saved.offset === 'number'
      ) {
        return { dev: saved.dev, ino: saved.ino, offset: saved.offset };
      }
    } catch {
      // none yet, or unreadable: start fresh
    }
    return undefined;
  }

  private entriesThisStep = 0;

  private async step(): Promise<void> {
    this.entriesThisStep = 0;
    try {
      await this.follow();
    } finally {
      if (this.entriesThisStep > 0) await this.opts.onBatch?.();
    }
  }

  private async follow(): Promise<void> {
    if (this.fd === undefined) {
      const opened = this.open();
      if (opened === undefined) {
        // Created after we started looking: everything in it will be new.
        this.waitedForFile = true;
        return;
      }
      const saved = this.position ?? (await this.loadSaved());
      const stat = fstatSync(opened);
      this.fd = opened;
      this.partial = Buffer.alloc(0);
      if (saved && saved.ino === stat.ino && saved.dev === stat.dev) {
        this.position = {
          dev: stat.dev,
          ino: stat.ino,
          offset: saved.offset <= stat.size ? saved.offset : 0,
        };
      } else if (saved || this.waitedForFile) {
        // A different file than the one we read last: it is new since then, read it all.
        this.position = { dev: stat.dev, ino: stat.ino, offset: 0 };
      } else {
        this.position = { dev: stat.dev, ino: stat.ino, offset: stat.size };
      }
    }

    if (!this.drain()) {
      // A backlog: the rest next time (the event loop is not held for a whole large file).
      await this.save();
      return;
    }
    const current = this.statPath();
    const position = this.position!;
    if (current && (current.ino !== position.ino || current.dev !== position.dev)) {
      // Rotated: the old file is fully read above; continue with the new one from its start.
      this.closeFd();
      const opened = this.open();
      if (opened !== undefined) {
        const stat = fstatSync(opened);
        this.fd = opened;
        this.partial = Buffer.alloc(0);
        this.position = { dev: stat.dev, ino: stat.ino, offset: 0 };
        this.drain();
      }
    }
    await this.save();
  }

  /**
   * Reads from the position towards the end of the open file, handing complete lines on; at most
   * `maxBytesPerStep`. Returns whether it reached the end.
   */
  private drain(): boolean {
    if (this.fd === undefined || !this.position) return true;
    const size = fstatSync(this.fd).size;
    if (size < this.position.offset + this.partial.length) {
      // Truncated in place: whatever is there now was written after the truncation.
      this.position.offset = 0;
      this.partial = Buffer.alloc(0);
    }
    let budget = this.opts.maxBytesPerStep ?? 8 * 1024 * 1024;
    for (;;) {
      if (budget <= 0) return false;
      const at = this.position.offset + this.partial.length;
      const read = readSync(this.fd, this.chunk, 0, this.chunk.length, at);
      if (read <= 0) return true;
      budget -= read;
      let data = Buffer.concat([this.partial, this.chunk.subarray(0, read)]);
      let newline = data.indexOf(0x0a);
      while (newline !== -1) {
        this.handle(data.subarray(0, newline).toString('utf8'));
        this.position.offset += newline + 1;
        data = data.subarray(newline + 1);
        newline = data.indexOf(0x0a);
      }
      if (data.length > MAX_LINE_BYTES) {
        // Not an access-log line anyone wrote on purpose: skip it up to its end.
        this.position.offset += data.length;
        this.partial = Buffer.alloc(0);
      } else {
        this.partial = Buffer.from(data);
      }
    }
  }

  private handle(line: string): void {
    const entry = parseAccessLogLine(line);
    if (!entry) return;
    this.entriesThisStep += 1;
    try {
      this.opts.onEntry(entry);
    } catch (err) {
      this.opts.log?.warn({ err }, 'access log entry handler failed');
    }
  }

  private open(): number | undefined {
    try {
      return openSync(this.opts.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private statPath(): { dev: number; ino: number } | undefined {
    try {
      return statSync(this.opts.path);
    } catch {
      return undefined;
    }
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private async save(): Promise<void> {
    if (!this.position) return;
    const json = JSON.stringify(this.position);
    if (json === this.savedJson) return;
    await mkdir(dirname(this.opts.stateFile), { recursive: true });
    const tmp = `${this.opts.stateFile}.tmp`;
    await writeFile(tmp, json);
    await rename(tmp, this.opts.stateFile);
    this.savedJson = json;
  }
}
