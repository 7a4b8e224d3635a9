/**
 * A read-only view of a project for runtime detection: every path, plus the content of the few
 * files detection reads. Built from a create request's files map, or (later) from a directory.
 */
export interface FileTree {
  /** Every file's workspace-relative path, '/'-separated, without a leading './' or '/'. */
  readonly paths: readonly string[];
  /**
   * The content of a file, or undefined when the file is absent, its content was not loaded, or it
   * is longer than DETECTION_READ_MAX (detection then treats it as unknown content).
   */
  read(path: string): string | undefined;
}

/**
 * The most of one file detection reads (characters). Manifests and configs are far smaller; the cap
 * keeps detection's work linear and small whatever a create request carries (bodies reach 64 MB).
 */
export const DETECTION_READ_MAX = 256 * 1024;

/** `./src//a.js` and `/src/a.js` → `src/a.js`. */
export function normalizeTreePath(path: string): string {
  return path
    .replace(/\\/g, '/')
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

/** A tree over an in-memory files map (workspace path → content), as sent to POST /v1/sandboxes. */
export function fileTreeFromFiles(files: Readonly<Record<string, string>>): FileTree {
  const contents = new Map<string, string>();
  for (const [path, content] of Object.entries(files)) contents.set(normalizeTreePath(path), content);
  const paths = [...contents.keys()].filter((p) => p !== '');
  return {
    paths,
    read: (path) => {
      const content = contents.get(normalizeTreePath(path));
      return content !== undefined && content.length <= DETECTION_READ_MAX ? content : undefined;
    },
  };
}

const DETECTION_NAMES = new Set([
  'package.json',
  'yarn.lock',
  'requirements.txt',
  'pyproject.toml',
  'manage.py',
  'index.html',
]);

/**
 * Whether a reader that loads a project from disk should load this file's content for detection:
 * manifests, configs and the entry files near the root (lockfiles other than yarn.lock only need
 * to exist). Everything else only needs its path.
 */
export function wantedForDetection(path: string): boolean {
  const normalized = normalizeTreePath(path);
  const depth = normalized.split('/').length;
  const name = normalized.slice(normalized.lastIndexOf('/') + 1);
  if (depth === 1 && (DETECTION_NAMES.has(name) || /^(vite|next)\.config\.[cm]?[jt]s$/.test(name)))
    return true;
  return depth <= 2 && /\.(py|[cm]?js|ts)$/.test(name);
}
