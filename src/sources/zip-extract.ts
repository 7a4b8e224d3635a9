import type { Readable } from 'node:stream';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { PreviewdError } from '../domain/errors.js';
import type { WorkspaceFiles } from '../providers/workspace-fs.js';
import { leavesWorkspace, linkLeavesWorkspace } from './link-policy.js';

export interface ZipLimits {
  maxEntries: number;
  maxUnpackedBytes: number;
}

export interface ZipReport {
  written: string[];
  skipped: { path: string; reason: string }[];
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const MAX_LINK_TARGET = 4096;

function openZip(path: string): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(
      path,
      { lazyEntries: true, autoClose: true, strictFileNames: true, validateEntrySizes: true },
      (err, zip) => (err || !zip ? reject(err ?? new Error('no zip file')) : resolve(zip)),
    );
  });
}

function openEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) =>
      err || !stream ? reject(err ?? new Error('no stream')) : resolve(stream),
    );
  });
}

/** Every entry of a zip in order; `onEntry` runs for one before the next is read. */
async function eachEntry(
  path: string,
  limits: ZipLimits,
  onEntry: (zip: ZipFile, entry: Entry) => Promise<void>,
): Promise<void> {
  const zip = await openZip(path);
  if (zip.entryCount > limits.maxEntries) {
    zip.close();
    throw new PreviewdError('payload_too_large', `the archive has more than ${limits.maxEntries} entries`);
  }
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      zip.close();
      reject(err);
    };
    zip.on('error', fail);
    zip.on('end', () => {
      if (!failed) resolve();
    });
    zip.on('entry', (entry: Entry) => {
      onEntry(zip, entry).then(
        () => zip.readEntry(),
        (err) => fail(err),
      );
    });
    zip.readEntry();
  });
}

async function readAll(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      stream.destroy();
      throw new PreviewdError('invalid_archive', `a link target is longer than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function kindOf(entry: Entry): 'directory' | 'symlink' | 'file' {
  if (entry.fileName.endsWith('/')) return 'directory';
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
  return (mode & S_IFMT) === S_IFLNK ? 'symlink' : 'file';
}

function modeOf(entry: Entry): number | undefined {
  const mode = (entry.externalFileAttributes >>> 16) & 0o777;
  return mode === 0 ? undefined : mode;
}

/**
 * Writes a zip kept in a file outside the workspace into `files`, like the tar extractor: a first
 * pass reads every entry to its end and checks it — names that leave the workspace (`..`,
 * absolute; yauzl refuses them too), links that point outside, encrypted entries, the entry count
 * and the unpacked size — and writes nothing; only then a second pass writes regular files and
 * directories. Links that stay inside are skipped (the files API makes no links).
 */
export async function extractZip(files: WorkspaceFiles, path: string, limits: ZipLimits): Promise<ZipReport> {
  let unpacked = 0;
  try {
    await eachEntry(path, limits, async (zip, entry) => {
      const name = entry.fileName;
      if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw leavesWorkspace(name, 'the entry');
      let target: string;
      try {
        target = files.relative(name);
      } catch {
        throw leavesWorkspace(name, 'the entry');
      }
      if (entry.isEncrypted()) throw new PreviewdError('invalid_archive', `${name} is encrypted`);
      unpacked += entry.uncompressedSize;
      if (unpacked > limits.maxUnpackedBytes) {
        throw new PreviewdError(
          'payload_too_large',
          `the archive unpacks to more than ${limits.maxUnpackedBytes} bytes`,
        );
      }
      const kind = kindOf(entry);
      if (kind === 'directory') return;
      const stream = await openEntry(zip, entry);
      if (kind === 'symlink') {
        const link = (await readAll(stream, MAX_LINK_TARGET)).toString('utf8');
        if (linkLeavesWorkspace(target, link)) throw leavesWorkspace(name, 'the link');
        return;
      }
      for await (const _ of stream) {
        // drained: a corrupt or cut entry is seen before anything is written
      }
    });
  } catch (err) {
    if (err instanceof PreviewdError) throw err;
    const message = (err as Error).message ?? String(err);
    if (/invalid relative path|absolute path/i.test(message)) throw leavesWorkspace(message, 'an entry');
    throw new PreviewdError('invalid_archive', `the body is not a complete zip archive: ${message}`, {
      hint: 'Send a complete zip file (e.g. made by "zip -r - ."), or a tar with Content-Type application/x-tar.',
    });
  }
  const report: ZipReport = { written: [], skipped: [] };
  await eachEntry(path, limits, async (zip, entry) => {
    const target = files.relative(entry.fileName);
    const kind = kindOf(entry);
    if (kind === 'directory') {
      if (target !== '') await files.mkdir(target);
      return;
    }
    if (kind === 'symlink') {
      report.skipped.push({ path: target, reason: 'symlink entries are not extracted' });
      return;
    }
    const stream = await openEntry(zip, entry);
    const mode = modeOf(entry);
    report.written.push((await files.write(target, stream, mode ? { mode } : {})).path);
  });
  return report;
}
