import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PreviewdError } from '../domain/errors.js';

export type ArchiveKind = 'tar' | 'zip';

/** The content types of a create whose body is the project as an archive (tar may be gzipped). */
const ARCHIVE_TYPES: Record<string, ArchiveKind> = {
  'application/x-tar': 'tar',
  'application/tar': 'tar',
  'application/gzip': 'tar',
  'application/x-gzip': 'tar',
  'application/x-tar+gzip': 'tar',
  'application/zip': 'zip',
  'application/x-zip-compressed': 'zip',
};

export const ARCHIVE_CONTENT_TYPES = Object.keys(ARCHIVE_TYPES);

/** The header that carries a create's options when the body is an archive. */
export const CREATE_HEADER = 'x-previewd-create';
/** Most characters of that header (its JSON, or base64url of it). */
export const MAX_CREATE_HEADER = 8192;

/** The kind of archive a Content-Type names, or undefined for anything else. */
export function archiveKindOf(contentType: string | undefined): ArchiveKind | undefined {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return ARCHIVE_TYPES[type];
}

/**
 * The create options of an archive create: `X-Previewd-Create` holds JSON, or base64url of it
 * (for values a header cannot carry as they are). Absent: no options (`{}`).
 */
export function parseCreateHeader(raw: string | string[] | undefined): unknown {
  if (raw === undefined) return {};
  if (Array.isArray(raw)) throw badHeader('is sent more than once');
  const value = raw.trim();
  if (value.length > MAX_CREATE_HEADER) throw badHeader(`is longer than ${MAX_CREATE_HEADER} characters`);
  if (value === '') return {};
  let json = value;
  if (!value.startsWith('{')) {
    if (!/^[A-Za-z0-9_-]+={0,2}$/.test(value)) throw badHeader('is neither JSON nor base64url of JSON');
    json = Buffer.from(value, 'base64url').toString('utf8');
  }
  try {
    return JSON.parse(json);
  } catch {
    throw badHeader('does not hold valid JSON');
  }
}

function badHeader(why: string): PreviewdError {
  return new PreviewdError('invalid_request', `the ${CREATE_HEADER} header ${why}`, {
    hint: 'Send the create options as JSON (or base64url of the JSON) in X-Previewd-Create, at most 8192 characters; the body is the archive.',
  });
}

/** An archive body kept in a file of its own outside any workspace until the create is done. */
export interface SpooledArchive {
  kind: ArchiveKind;
  path: string;
  bytes: number;
  remove(): Promise<void>;
}

/** Streams an archive body to a temporary file (never whole in memory), at most `maxBytes`. */
export async function spoolArchive(
  body: Readable,
  kind: ArchiveKind,
  maxBytes: number,
  contentLength?: number,
): Promise<SpooledArchive> {
  if (contentLength !== undefined && Number.isFinite(contentLength) && contentLength > maxBytes) {
    throw tooLarge(contentLength, maxBytes);
  }
  const dir = await mkdtemp(join(tmpdir(), 'previewd-create-'));
  const path = join(dir, kind === 'zip' ? 'upload.zip' : 'upload.tar');
  let bytes = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) done(tooLarge(bytes, maxBytes));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(body, limit, createWriteStream(path, { mode: 0o600 }));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if (err instanceof PreviewdError) throw err;
    throw new PreviewdError(
      'invalid_archive',
      `the archive body could not be read: ${(err as Error).message}`,
    );
  }
  if (bytes === 0) {
    await rm(dir, { recursive: true, force: true });
    throw new PreviewdError('invalid_archive', 'the archive body is empty');
  }
  return { kind, path, bytes, remove: () => rm(dir, { recursive: true, force: true }) };
}

function tooLarge(bytes: number, max: number): PreviewdError {
  return new PreviewdError('payload_too_large', `the archive is ${bytes} bytes or more, above ${max}`, {
    headers: { connection: 'close' },
  });
}
