import { constants, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { PreviewdError } from '../domain/errors.js';

/**
 * Opening files a sandbox controls (its workspace, its supervisor's run directory) without letting
 * it block previewd. A FIFO opened for reading blocks in open(2) until a writer appears, holding one
 * of libuv's four threads for good; four of them stop every file operation of the process. So:
 *
 * - O_NONBLOCK: a FIFO opens at once (and a socket fails with ENXIO) instead of waiting;
 * - O_NOFOLLOW: a link planted at the last step is refused, not followed;
 * - O_CLOEXEC: no descriptor leaks into child processes (libuv adds it too);
 * - fstat on the opened handle (never a stat before the open: that would race with a swap) and
 *   anything but a regular file is refused with `not_a_regular_file`;
 * - reads stop at a size cap (`file_too_large`), whatever the file claims or grows to.
 *
 * O_NONBLOCK changes nothing for regular files on Linux, so the handle reads them normally.
 */

/** Linux's O_CLOEXEC (node:fs does not export it). */
const O_CLOEXEC = 0o2000000;

/** Flags of every read-only open of a sandbox-controlled file. */
export const SAFE_READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | O_CLOEXEC;
/** Flags added to every write open of a sandbox-controlled file (a FIFO without a reader fails with ENXIO). */
export const SAFE_WRITE_FLAGS = constants.O_NONBLOCK | constants.O_NOFOLLOW | O_CLOEXEC;

export type NodeKind = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'device' | 'other';

export function kindOf(st: Stats): NodeKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'device';
  return 'other';
}

const KIND_WORDS: Record<NodeKind, string> = {
  file: 'a regular file',
  directory: 'a directory',
  symlink: 'a symbolic link',
  fifo: 'a FIFO (named pipe)',
  socket: 'a socket',
  device: 'a device',
  other: 'not a regular file',
};

export function notRegularFile(label: string, kind: NodeKind): PreviewdError {
  return new PreviewdError('not_a_regular_file', `${label} is ${KIND_WORDS[kind]}, not a regular file`, {
    details: { path: label, type: kind },
  });
}

/**
 * Maps the errors of a safe open to PreviewdErrors: missing → `file_not_found`, a link at the last
 * step (ELOOP) or a socket/FIFO without a peer (ENXIO) → `not_a_regular_file`. Others are rethrown.
 */
export function openError(err: unknown, label: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new PreviewdError('file_not_found', `${label} does not exist`);
  if (code === 'ELOOP') return notRegularFile(label, 'symlink');
  if (code === 'ENXIO') return notRegularFile(label, 'other');
  return err;
}

/**
 * Opens `path` read-only with SAFE_READ_FLAGS and returns the handle with its fstat. Anything but
 * a regular file is closed again and refused. The caller owns (and closes) the handle.
 */
export async function openRegularFile(
  path: string,
  opts: { label?: string; allow?: (st: Stats) => void } = {},
): Promise<{ handle: FileHandle; stats: Stats }> {
  const label = opts.label ?? path;
  const handle = await open(path, SAFE_READ_FLAGS).catch((err) => {
    throw openError(err, label);
  });
  try {
    const stats = await handle.stat();
    opts.allow?.(stats);
    if (!stats.isFile()) throw notRegularFile(label, kindOf(stats));
    return { handle, stats };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function tooLarge(label: string, maxBytes: number): PreviewdError {
  return new PreviewdError('file_too_large', `${label} is larger than ${maxBytes} bytes`, {
    details: { path: label, maxBytes },
  });
}

/** Reads an open handle from its start, failing with `file_too_large` past `maxBytes`. */
export async function readCapped(handle: FileHandle, maxBytes: number, label: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    // One byte more than allowed tells "exactly the cap" from "above it" (the file may grow meanwhile).
    const want = Math.min(64 * 1024, maxBytes + 1 - total);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buf, 0, want, total);
    if (bytesRead === 0) break;
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > maxBytes) throw tooLarge(label, maxBytes);
  }
  return Buffer.concat(chunks, total);
}

/** The content of a regular file, opened safely and read up to `maxBytes`. */
export async function readRegularFile(
  path: string,
  opts: { maxBytes: number; label?: string },
): Promise<Buffer> {
  const label = opts.label ?? path;
  const { handle, stats } = await openRegularFile(path, { label });
  try {
    if (stats.size > opts.maxBytes) throw tooLarge(label, opts.maxBytes);
    return await readCapped(handle, opts.maxBytes, label);
  } finally {
    await handle.close();
  }
}

/**
 * Like readRegularFile, but a missing file gives undefined (the caller treats it as absent).
 * Every other refusal (FIFO, link, too large) is thrown.
 */
export async function readRegularFileIfExists(
  path: string,
  opts: { maxBytes: number; label?: string },
): Promise<Buffer | undefined> {
  try {
    return await readRegularFile(path, opts);
  } catch (err) {
    if (err instanceof PreviewdError && err.code === 'file_not_found') return undefined;
    throw err;
  }
}
