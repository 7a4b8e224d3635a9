import { unzipSync } from 'fflate';
import { ApiError } from './api-client';
import type { Sandbox } from './types';

/** Files read from a dropped folder or zip, ready for `files` of a create request. */
export interface CollectedFiles {
  files: Record<string, string>;
  /** Skipped: binary (the create request carries UTF-8 text), or tool folders such as node_modules. */
  skipped: string[];
}

const skippedDirs = new Set(['node_modules', '.git', '__pycache__', '.venv', 'dist', '.next']);
const decoder = new TextDecoder('utf-8', { fatal: true });

function keep(path: string): boolean {
  return !path.split('/').some((part) => skippedDirs.has(part) || part === '');
}

function addBytes(out: CollectedFiles, path: string, bytes: Uint8Array): void {
  if (!keep(path)) return;
  try {
    out.files[path] = decoder.decode(bytes);
  } catch {
    out.skipped.push(path);
  }
}

/** Drops a folder prefix every file shares (a zip of `my-app/` or a dropped `my-app` folder). */
function stripCommonRoot(out: CollectedFiles): CollectedFiles {
  const paths = Object.keys(out.files);
  const first = paths[0]?.split('/')[0];
  if (!first || !paths.every((p) => p.startsWith(`${first}/`))) return out;
  const files: Record<string, string> = {};
  for (const [p, content] of Object.entries(out.files)) files[p.slice(first.length + 1)] = content;
  return {
    files,
    skipped: out.skipped.map((p) => (p.startsWith(`${first}/`) ? p.slice(first.length + 1) : p)),
  };
}

export async function filesFromZip(file: File): Promise<CollectedFiles> {
  const entries = unzipSync(new Uint8Array(await file.arrayBuffer()), {
    filter: (entry) => !entry.name.endsWith('/') && keep(entry.name),
  });
  const out: CollectedFiles = { files: {}, skipped: [] };
  for (const [name, bytes] of Object.entries(entries)) addBytes(out, name.replace(/^\.\//, ''), bytes);
  return stripCommonRoot(out);
}

/** Files chosen with `<input webkitdirectory>` (each carries its `webkitRelativePath`). */
export async function filesFromList(list: FileList | File[]): Promise<CollectedFiles> {
  const out: CollectedFiles = { files: {}, skipped: [] };
  for (const file of Array.from(list)) {
    const path = file.webkitRelativePath || file.name;
    if (!keep(path)) continue;
    addBytes(out, path, new Uint8Array(await file.arrayBuffer()));
  }
  return stripCommonRoot(out);
}

function readEntries(dir: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = dir.createReader();
  const all: FileSystemEntry[] = [];
  return new Promise((resolve, reject) => {
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) return resolve(all);
        all.push(...batch);
        next();
      }, reject);
    next();
  });
}

async function walk(entry: FileSystemEntry, prefix: string, out: CollectedFiles): Promise<void> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isDirectory) {
    if (skippedDirs.has(entry.name)) return;
    for (const child of await readEntries(entry as FileSystemDirectoryEntry)) await walk(child, path, out);
  } else if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject),
    );
    addBytes(out, path, new Uint8Array(await file.arrayBuffer()));
  }
}

/** A drop: one zip, or folders and files (walked through the entries API). */
export async function filesFromDrop(data: DataTransfer): Promise<CollectedFiles> {
  const items = Array.from(data.items).filter((i) => i.kind === 'file');
  const only = data.files[0];
  if (data.files.length === 1 && only && /\.zip$/i.test(only.name)) return filesFromZip(only);
  const out: CollectedFiles = { files: {}, skipped: [] };
  const entries = items.map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  for (const entry of entries) await walk(entry, '', out);
  return stripCommonRoot(out);
}

/**
 * One `POST /v1/sandboxes` through XMLHttpRequest, for its upload progress (fetch has none).
 * `onProgress` gets 0..1.
 */
export function createWithProgress(
  body: Record<string, unknown>,
  onProgress: (ratio: number) => void,
): Promise<Sandbox> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/sandboxes');
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/json');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(xhr.response as Sandbox);
        return;
      }
      const err = (xhr.response as { error?: { code: string; message: string; hint?: string } } | null)
        ?.error;
      reject(
        new ApiError(xhr.status, err?.code ?? 'http_error', err?.message ?? `HTTP ${xhr.status}`, err?.hint),
      );
    };
    xhr.onerror = () =>
      reject(new ApiError(0, 'network', 'The upload failed: the server could not be reached.'));
    xhr.send(JSON.stringify(body));
  });
}
