import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import type { RuntimePlan } from '../domain/schemas.js';
import { detectNode } from './detect-node.js';
import { detectPython } from './detect-python.js';
import type { FileTree } from './file-tree.js';

export type { FileTree } from './file-tree.js';

export type RuntimeImages = Pick<Config['images'], 'node' | 'python'>;

export const STATIC_PORT = 8080;

/** Folders a static site's index.html may sit in, tried after the root. */
const STATIC_ROOTS = ['', 'public', 'dist', 'site', 'www', 'docs'];

/** previewd's live-reloading static server, mounted read-only in every supervised container. */
export const STATIC_SERVER = '/opt/previewd/static-server.mjs';

/**
 * A static site: served by previewd's own live-reloading server (runtime/static-server.mjs, in the
 * Node image; nothing to download): a changed file reloads the open pages.
 */
function detectStatic(tree: FileTree, images: RuntimeImages): RuntimePlan | undefined {
  const root = STATIC_ROOTS.find((dir) => tree.paths.includes(dir ? `${dir}/index.html` : 'index.html'));
  if (root === undefined) return undefined;
  const directory = root !== '';
  return {
    image: images.node,
    start: `node ${STATIC_SERVER} --port ${STATIC_PORT}${directory ? ` --dir ${root}` : ''}`,
    port: STATIC_PORT,
    env: {},
    source: 'detected',
    framework: 'static',
  };
}

/**
 * How to run a project: the image, the install and start commands, the port the app listens on
 * (bound to 0.0.0.0) and its environment. Pure: reads only `files`.
 *
 * Order: Django (manage.py) → Node (package.json with something to run, or server.js) → Python
 * (FastAPI, Flask, a script) → static (index.html). Nothing recognisable → `runtime_unknown`.
 */
export function detect(files: FileTree, images: RuntimeImages): RuntimePlan {
  const plan =
    (files.paths.includes('manage.py') ? detectPython(files, images.python) : undefined) ??
    detectNode(files, images.node) ??
    detectPython(files, images.python) ??
    detectStatic(files, images);
  if (plan) return plan;
  throw new PreviewdError(
    'runtime_unknown',
    'could not tell how to run these files: no package.json with a dev/start script or entry file, no Python app (manage.py, FastAPI, Flask, main.py) and no index.html',
    { details: { files: files.paths.slice(0, 20) } },
  );
}
