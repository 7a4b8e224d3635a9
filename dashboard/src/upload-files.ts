import { unzipSync } from 'fflate';

/**
 * Files read from a dropped folder or zip. `files` is UTF-8 text, for `files` of the create
 * request; `binary` is everything else (images, fonts), uploaded after through `files/batch`.
 * Tool folders such as node_modules are left out.
 */
export interface CollectedFiles {
  files: Record<string, string>;
  binary: Record<string, Uint8Array>;
}

const skippedDirs = new Set(['node_modules', '.git', '__pycache__', '.venv', 'dist', '.next']);
// ignoreBOM: a BOM stays in the text (else the file would lose its first three bytes).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function keep(path: string): boolean {
  return !path.split('/').some((part) => skippedDirs.has(part) || part === '');
}

function addBytes(out: CollectedFiles, path: string, bytes: Uint8Array): void {
  if (!keep(path)) return;
  try {
    out.files[path] = decoder.decode(bytes);
  } catch {
    out.binary[path] = bytes;
  }
}

const empty = (): CollectedFiles => ({ files: {}, binary: {} });

/** Drops a folder prefix every file shares (a zip of `my-app/` or a dropped `my-app` folder). */
function stripCommonRoot(out: CollectedFiles): CollectedFiles {
  const paths = [...Object.keys(out.files), ...Object.keys(out.binary)];
  const first = paths[0]?.split('/')[0];
  if (!first || !paths.every((p) => p.startsWith(`${first}/`))) return out;
  const strip = <T>(map: Record<string, T>) =>
    Object.fromEntries(Object.entries(map).map(([p, v]) => [p.slice(first.length + 1), v]));
  return { files: strip(out.files), binary: strip(out.binary) };
}

export async function filesFromZip(file: File): Promise<CollectedFiles> {
  const entries = unzipSync(new Uint8Array(await file.arrayBuffer()), {
    filter: (entry) => !entry.name.endsWith('/') && keep(entry.name),
  });
  const out = empty();
  for (const [name, bytes] of Object.entries(entries)) addBytes(out, name.replace(/^\.\//, ''), bytes);
  return stripCommonRoot(out);
}

/** Files chosen with `<input webkitdirectory>` (each carries its `webkitRelativePath`). */
export async function filesFromList(list: FileList | File[]): Promise<CollectedFiles> {
  const out = empty();
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
  const out = empty();
  const entries = items.map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  for (const entry of entries) await walk(entry, '', out);
  return stripCommonRoot(out);
}
