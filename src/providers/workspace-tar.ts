import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract, type Header, pack } from 'tar-stream';
import { PreviewdError } from '../domain/errors.js';
import type { FileEntry, WorkspaceFiles } from './workspace-fs.js';

/**
 * Streams a tar of a workspace directory (or one file). Entries are named relative to `path`;
 * symlinks are stored as links (never followed), so nothing outside the workspace is read.
 */
export async function packWorkspace(files: WorkspaceFiles, path: string): Promise<Readable> {
  // Like list: a link given as the path is followed (and refused when it leads outside).
  const { rel } = await files.resolve(path);
  const root = await files.stat(rel.join('/'));
  const tar = pack();
  const base = root.path;
  const nameOf = (entry: FileEntry) =>
    base === '' ? entry.path : posix.relative(base, entry.path) || posix.basename(entry.path);
  const entries =
    root.type === 'directory' ? await files.list(base, { recursive: true, limit: 1_000_000 }) : [root];
  void (async () => {
    for (const entry of entries) {
      const header = {
        name: nameOf(entry),
        mode: Number.parseInt(entry.mode, 8),
        mtime: new Date(entry.mtime),
      };
      if (entry.type === 'directory') {
        tar.entry({ ...header, type: 'directory' });
      } else if (entry.type === 'symlink') {
        tar.entry({ ...header, type: 'symlink', linkname: entry.target ?? '' });
      } else if (entry.type === 'file') {
        const opened = await files.openRead(entry.path, { noLinks: true }).catch(() => undefined);
        if (!opened) continue; // vanished or replaced meanwhile
        const sink = tar.entry({ ...header, type: 'file', size: opened.entry.size });
        await pipeline(opened.stream, sink);
      }
    }
    tar.finalize();
  })().catch((err) => tar.destroy(err as Error));
  return tar as unknown as Readable;
}

export interface ExtractReport {
  written: FileEntry[];
  /** Entries not written (links, devices), with the reason. */
  skipped: { path: string; reason: string }[];
}

export interface ExtractLimits {
  /** Most entries an archive may hold (default 100 000). */
  maxEntries?: number;
  /** Most bytes the archive may unpack to once gunzipped, tar headers included (default 1 GiB). */
  maxUnpackedBytes?: number;
  /**
   * Called for every entry in the checking pass, before anything is written, with the entry's
   * workspace path: throwing refuses the whole archive (a create refuses links that point out).
   */
  check?: (header: Header, target: string) => void;
}

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Writes a tar stream (plain or gzip-compressed, told apart by its first bytes) into the workspace
 * under `into`: regular files and directories only, each through WorkspaceFiles (so every path is
 * checked like a single write). Links are skipped.
 *
 * The upload is kept in a temporary file outside the workspace and read to its end once before
 * anything is written: a truncated or corrupt archive (`invalid_archive`), a name that leaves the
 * workspace (`invalid_path`) or too many entries (`payload_too_large`) leave the workspace as it
 * was. Only a file-system refusal while writing (a link in the way, a full disk) can stop an
 * extraction part-way; files not named in the archive are never touched.
 */
export async function extractIntoWorkspace(
  files: WorkspaceFiles,
  into: string,
  source: Readable,
  limits: ExtractLimits = {},
): Promise<ExtractReport> {
  const dir = await mkdtemp(join(tmpdir(), 'previewd-tar-'));
  try {
    const spool = join(dir, 'upload');
    await pipeline(source, createWriteStream(spool, { mode: 0o600 }));
    return await extractSpooledTar(files, into, spool, limits);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** extractIntoWorkspace over an archive already kept in a file outside the workspace (`spool`). */
export async function extractSpooledTar(
  files: WorkspaceFiles,
  into: string,
  spool: string,
  limits: ExtractLimits = {},
): Promise<ExtractReport> {
  const gzipped = await startsWith(spool, GZIP_MAGIC);
  const targetOf = (name: string) => {
    // Each name must stay inside `into` on its own (no "../" entries, no absolute names).
    const rel = files.segments(name.startsWith('/') ? `.${name}` : name).join('/');
    return into ? `${into}/${rel}` : rel;
  };
  // Pass 1: the whole archive parses and every name is acceptable; nothing is written.
  await readArchive(spool, gzipped, limits, true, async (header, entry) => {
    const target = targetOf(entryName(header));
    limits.check?.(header, target);
    for await (const _ of entry) {
      // drained: the data is read so that a cut inside it is seen
    }
  });
  // Pass 2: the same bytes again, written.
  const report: ExtractReport = { written: [], skipped: [] };
  await readArchive(spool, gzipped, limits, false, async (header, entry) => {
    const name = entryName(header);
    const target = targetOf(name);
    if (header.type === 'file' || header.type === 'contiguous-file') {
      const mode = header.mode !== undefined ? header.mode & 0o777 : undefined;
      report.written.push(await files.write(target, entry, mode ? { mode } : {}));
    } else if (header.type === 'directory') {
      if (files.relative(target) !== '') await files.mkdir(target);
    } else {
      report.skipped.push({ path: name, reason: `${header.type} entries are not extracted` });
    }
  });
  return report;
}

function entryName(header: Header): string {
  return header.name.replace(/^\.\//, '');
}

async function startsWith(file: string, bytes: number[]): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes.length);
    const { bytesRead } = await handle.read(buf, 0, bytes.length, 0);
    return bytesRead === bytes.length && bytes.every((b, i) => buf[i] === b);
  } finally {
    await handle.close();
  }
}

/** Fails with payload_too_large past `max` bytes. */
function unpackedLimit(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max)
        done(new PreviewdError('payload_too_large', `the archive unpacks to more than ${max} bytes`));
      else done(null, chunk);
    },
  });
}

/**
 * Reads the spooled archive entry by entry. While `validating` (the first pass, which writes
 * nothing), an error of the gzip or tar layers — a cut, a bad checksum, bytes that are no archive —
 * becomes `invalid_archive`; the second pass reads bytes that already parsed, so its errors are the
 * file system's and pass as they are. PreviewdErrors always pass unchanged.
 */
async function readArchive(
  spool: string,
  gzipped: boolean,
  limits: ExtractLimits,
  validating: boolean,
  onEntry: (header: Header, entry: AsyncIterable<Uint8Array>) => Promise<void>,
): Promise<void> {
  const maxEntries = limits.maxEntries ?? 100_000;
  const tar = extract();
  const stages: NodeJS.ReadWriteStream[] = gzipped ? [createGunzip()] : [];
  stages.push(unpackedLimit(limits.maxUnpackedBytes ?? 1024 ** 3));
  const feeding = pipeline([createReadStream(spool), ...stages, tar] as never);
  let count = 0;
  const consuming = (async () => {
    for await (const entry of tar) {
      try {
        if (++count > maxEntries) {
          throw new PreviewdError('payload_too_large', `the archive has more than ${maxEntries} entries`);
        }
        await onEntry(entry.header, entry as AsyncIterable<Uint8Array>);
      } finally {
        entry.resume();
      }
    }
  })();
  const [consumed, fed] = await Promise.allSettled([consuming, feeding]);
  // The consumer's own error (a bad name, a refused write) comes first; the feeder then only
  // reports the stream it was cut off from.
  const failure = consumed.status === 'rejected' ? consumed : fed.status === 'rejected' ? fed : undefined;
  if (!failure) return;
  const err = failure.reason as NodeJS.ErrnoException;
  if (err instanceof PreviewdError || !validating || err?.syscall) throw err;
  throw new PreviewdError('invalid_archive', `the body is not a complete tar archive: ${err?.message}`, {
    cause: err,
  });
}
