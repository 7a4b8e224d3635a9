import { PreviewdError } from '../domain/errors.js';
import type { CreateFileContent } from '../domain/schemas.js';

const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard base64 with padding: a multiple of 4 characters of the alphabet, "=" only at the end. */
function isBase64(text: string): boolean {
  return text.length % 4 === 0 && BASE64_CHARS.test(text);
}

/**
 * The `files` of a create as bytes to write: strings as UTF-8, `{ base64 }` decoded. Every entry is
 * checked before any is written: malformed base64 is `invalid_base64` (naming the path), more than
 * `maxBytes` decoded in all is `payload_too_large`.
 */
export function decodeInlineFiles(
  files: Readonly<Record<string, CreateFileContent>> | undefined,
  maxBytes: number,
): Map<string, string | Buffer> {
  const out = new Map<string, string | Buffer>();
  let total = 0;
  for (const [path, content] of Object.entries(files ?? {})) {
    let value: string | Buffer;
    if (typeof content === 'string') {
      value = content;
      total += Buffer.byteLength(content);
    } else {
      if (!isBase64(content.base64)) {
        throw new PreviewdError(
          'invalid_base64',
          `files[${JSON.stringify(path)}].base64 is not valid base64`,
          {
            details: { path },
          },
        );
      }
      value = Buffer.from(content.base64, 'base64');
      total += value.length;
    }
    if (total > maxBytes) {
      throw new PreviewdError('payload_too_large', `the files decode to more than ${maxBytes} bytes`, {
        details: { maxBytes },
      });
    }
    out.set(path, value);
  }
  return out;
}

/** The text of a file for runtime detection: strings as they are, bytes when they are UTF-8. */
export function textForDetection(content: string | Buffer): string {
  if (typeof content === 'string') return content;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    return '';
  }
}
