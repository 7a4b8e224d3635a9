import type { FileBatchResult, FileEntries, FileEntry } from './generated/api-types.js';
import type { Http } from './http.js';

export type FileContent = string | Uint8Array | ArrayBuffer | Blob;

/** The workspace of one sandbox (paths relative to /workspace). Works while stopped, never wakes it. */
export class SandboxFiles {
  constructor(
    private readonly http: Http,
    private readonly base: string,
  ) {}

  /** Writes a file (parents created); `mode` octal like "0755". */
  write(path: string, content: FileContent, opts: { mode?: string | number } = {}): Promise<FileEntry> {
    const mode = typeof opts.mode === 'number' ? opts.mode.toString(8).padStart(4, '0') : opts.mode;
    return this.http.json('PUT', `${this.base}/files`, {
      query: { path, mode },
      body: content,
      headers: { 'content-type': 'application/octet-stream' },
    });
  }

  /** Several files at once (all paths checked before any write). */
  writeMany(
    files: Record<string, string>,
    opts: { encoding?: 'utf8' | 'base64' } = {},
  ): Promise<FileBatchResult> {
    return this.http.json('POST', `${this.base}/files/batch`, {
      body: { files, ...(opts.encoding ? { encoding: opts.encoding } : {}) },
    });
  }

  /** A file's content as text (UTF-8). */
  async read(path: string): Promise<string> {
    return (await this.http.send('GET', `${this.base}/files`, { query: { path } })).text();
  }

  /** A file's content as bytes. */
  async readBytes(path: string): Promise<Uint8Array> {
    const res = await this.http.send('GET', `${this.base}/files`, { query: { path } });
    return new Uint8Array(await res.arrayBuffer());
  }

  /** One page (at most `limit`, default 1 000); pass `cursor: page.nextCursor` for the next. */
  list(path = '', opts: { recursive?: boolean; limit?: number; cursor?: string } = {}): Promise<FileEntries> {
    return this.http.json('GET', `${this.base}/files/list`, { query: { path, ...opts } });
  }

  /** Every entry of a listing, page after page (a `depth`-truncated walk ends without a cursor). */
  async *listAll(path = '', opts: { recursive?: boolean; limit?: number } = {}): AsyncGenerator<FileEntry> {
    let cursor: string | undefined;
    do {
      const page = await this.list(path, { ...opts, ...(cursor ? { cursor } : {}) });
      yield* page.entries;
      cursor = page.nextCursor;
    } while (cursor);
  }

  stat(path: string): Promise<FileEntry> {
    return this.http.json('GET', `${this.base}/files/stat`, { query: { path } });
  }

  /** One page of the paths matching a glob (bounded patterns: docs/io.md); `cursor` as for list. */
  glob(pattern: string, opts: { limit?: number; cursor?: string } = {}): Promise<FileEntries> {
    return this.http.json('GET', `${this.base}/files/glob`, { query: { pattern, ...opts } });
  }

  /** Every match of a glob, page after page (walk-budget pages may be empty; they carry a cursor). */
  async *globAll(pattern: string, opts: { limit?: number } = {}): AsyncGenerator<FileEntry> {
    let cursor: string | undefined;
    do {
      const page = await this.glob(pattern, { ...opts, ...(cursor ? { cursor } : {}) });
      yield* page.entries;
      cursor = page.nextCursor;
    } while (cursor);
  }

  move(from: string, to: string): Promise<FileEntry> {
    return this.http.json('POST', `${this.base}/files/move`, { body: { from, to } });
  }

  chmod(path: string, mode: string | number): Promise<FileEntry> {
    return this.http.json('POST', `${this.base}/files/chmod`, { body: { path, mode } });
  }

  mkdir(path: string): Promise<FileEntry> {
    return this.http.json('POST', `${this.base}/files/mkdir`, { body: { path } });
  }

  /** Removes a file, an empty directory, or a tree with `recursive`. */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.http.json('DELETE', `${this.base}/files`, { query: { path, recursive: opts.recursive } });
  }
}
