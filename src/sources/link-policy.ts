import { posix } from 'node:path';
import { PreviewdError } from '../domain/errors.js';

/**
 * Whether a link at workspace path `at` (`a/b/link`) whose target is `target` points outside the
 * workspace, seen from inside the sandbox (`/workspace/...` absolute targets stay inside).
 */
export function linkLeavesWorkspace(at: string, target: string, mountPoint = '/workspace'): boolean {
  if (target === '' || target.includes('\0')) return true;
  let rel: string;
  if (target.startsWith('/')) {
    if (target !== mountPoint && !target.startsWith(`${mountPoint}/`)) return true;
    rel = target.slice(mountPoint.length).replace(/^\/+/, '') || '.';
  } else {
    rel = posix.join(posix.dirname(at), target);
  }
  const normal = posix.normalize(rel);
  return normal === '..' || normal.startsWith('../') || posix.isAbsolute(normal);
}

/** The refusal of a source entry that leaves the workspace (a name or a link). */
export function leavesWorkspace(entry: string, what: string): PreviewdError {
  return new PreviewdError('invalid_path', `${what} ${JSON.stringify(entry)} leaves the workspace`, {
    details: { reason: 'outside_workspace', entry },
    hint: 'Every entry of an archive or repository must stay inside /workspace: no "..", no absolute names, no links that point out. Nothing was written.',
  });
}
