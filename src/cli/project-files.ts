import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { PreviewdError } from '@previewd/sdk';

/** Folders never uploaded: installed dependencies, VCS data and caches are rebuilt in the sandbox. */
const SKIPPED_DIRS = new Set(['node_modules', '.git', '.venv', 'venv', '__pycache__', '.next', '.cache']);
const MAX_FILES = 5000;
const MAX_BYTES = 48 * 1024 * 1024;

export interface ProjectFiles {
  /** UTF-8 files, sent with the create request (detection reads them). */
  text: Record<string, string>;
  /** Files that are not valid UTF-8, uploaded one by one after the create. */
  binary: Record<string, Buffer>;
  bytes: number;
}

/** Reads a local project folder for `create <dir>` (and `up`). */
export function readProjectFiles(dir: string): ProjectFiles {
  const out: ProjectFiles = { text: {}, binary: {}, bytes: 0 };
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let count = 0;
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(full);
        continue;
      }
      if (
        !entry.isFile() &&
        !(entry.isSymbolicLink() && statSync(full, { throwIfNoEntry: false })?.isFile())
      ) {
        continue;
      }
      const path = relative(dir, full).split(sep).join('/');
      const content = readFileSync(full);
      count++;
      out.bytes += content.length;
      if (count > MAX_FILES || out.bytes > MAX_BYTES) {
        throw new PreviewdError('payload_too_large', `${dir} holds more than ${MAX_FILES} files or 48 MiB`, {
          hint: 'Create the sandbox from a smaller folder, then add files with previewd files put.',
        });
      }
      try {
        out.text[path] = decoder.decode(content);
      } catch {
        out.binary[path] = content;
      }
    }
  };
  walk(dir);
  return out;
}
