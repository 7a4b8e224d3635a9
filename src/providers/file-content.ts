import type { FileHandle } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { PreviewdError } from '../domain/errors.js';

/** File content in and out of a workspace, as streams and pieces that keep the event loop free. */

/**
 * A string as UTF-8 in pieces of about 1 MiB, so a big file content (create bodies reach 64 MB) is
 * not encoded in one go on the event loop. A piece never ends between the halves of a surrogate pair.
 */
export function* utf8Pieces(text: string, size = 1024 * 1024): Generator<Buffer> {
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield Buffer.from(text.slice(start, end), 'utf8');
    start = end;
  }
}

/**
 * The first `size` bytes of an open file (its size when opened, as a Content-Length or tar header
 * announces), failing when the file ends sooner: sandbox code may grow or truncate it meanwhile,
 * and a download must then be cut off (the client sees an error) rather than send more than it
 * announced or leave the client waiting for bytes that never come.
 */
export function exactly(handle: FileHandle, size: number, label: string): Readable {
  if (size === 0) {
    void handle.close();
    return Readable.from([]);
  }
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      done(
        seen < size
          ? new PreviewdError('file_changed', `${label} became shorter while it was read`, {
              details: { path: label },
            })
          : null,
      );
    },
  });
  const source = handle.createReadStream({ autoClose: true, start: 0, end: size - 1 });
  source.on('error', (err) => counter.destroy(err));
  return source.pipe(counter);
}
