import type { Header } from 'tar-stream';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import type { CreateSandboxInput } from '../domain/schemas.js';
import type { WorkspaceFiles } from '../providers/workspace-fs.js';
import { extractSpooledTar } from '../providers/workspace-tar.js';
import { DETECTION_READ_MAX, wantedForDetection } from '../runtimes/file-tree.js';
import type { SpooledArchive } from './archive-body.js';
import { type ClonedTree, cloneRepository } from './git-clone.js';
import { decodeInlineFiles, textForDetection } from './inline-files.js';
import { leavesWorkspace, linkLeavesWorkspace } from './link-policy.js';
import { copyTree } from './tree-copy.js';
import { extractZip } from './zip-extract.js';

/** Where a create's project comes from besides JSON `files`: the request's archive body. */
export interface CreateSources {
  archive?: SpooledArchive;
}

/** A create's sources, checked and fetched before a workspace exists. */
export interface PreparedSources {
  inline: Map<string, string | Buffer>;
  archive?: SpooledArchive;
  clone?: ClonedTree;
  /** Removes what was fetched (the clone); the archive is its route's to remove. */
  release(): Promise<void>;
}

/**
 * Before the workspace: decodes `files` (invalid_base64, payload_too_large), refuses two sources at
 * once, and clones `source.git` into previewd's own temporary folder (checked, bounded, scanned —
 * a link out of the tree refuses it), so a refused source never makes a workspace.
 */
export async function prepareSources(
  input: CreateSandboxInput,
  sources: CreateSources,
  config: Pick<Config, 'sources' | 'maxBodyMb'>,
): Promise<PreparedSources> {
  const inline = decodeInlineFiles(input.files, Math.round(config.maxBodyMb * 1024 * 1024));
  if (input.source?.git && sources.archive) {
    throw new PreviewdError('invalid_request', 'a create takes an archive body or source.git, not both');
  }
  const clone = input.source?.git ? await cloneRepository(input.source.git, config) : undefined;
  return { inline, archive: sources.archive, clone, release: async () => clone?.remove() };
}

/**
 * Writes a create's project into its new workspace, in this order (later wins): the template's
 * files, the archive or the cloned repository, then `files`. Returns the text of what was written
 * for runtime detection (file-tree.ts: manifests and configs read back, capped; other files by
 * path only).
 */
export async function writeSources(
  files: WorkspaceFiles,
  prepared: PreparedSources,
  template: Readonly<Record<string, string>> | undefined,
  config: Pick<Config, 'sources'>,
): Promise<Record<string, string>> {
  const detection: Record<string, string> = {};
  for (const [path, content] of Object.entries(template ?? {})) {
    await files.write(path, content);
    detection[path] = content;
  }
  let fromSource: string[] = [];
  const limits = {
    maxEntries: config.sources.maxEntries,
    maxUnpackedBytes: config.sources.maxUnpackedMb * 1024 * 1024,
  };
  if (prepared.archive?.kind === 'tar') {
    const report = await extractSpooledTar(files, '', prepared.archive.path, {
      ...limits,
      check: (header: Header, target: string) => {
        if (header.name.startsWith('/')) throw leavesWorkspace(header.name, 'the entry');
        if (header.type === 'symlink' && linkLeavesWorkspace(target, header.linkname ?? '')) {
          throw leavesWorkspace(header.name, 'the link');
        }
        if (header.type === 'link') {
          try {
            files.relative(header.linkname ?? '');
          } catch {
            throw leavesWorkspace(header.name, 'the link');
          }
        }
      },
    });
    fromSource = report.written.map((e) => e.path);
  } else if (prepared.archive?.kind === 'zip') {
    fromSource = (await extractZip(files, prepared.archive.path, limits)).written;
  } else if (prepared.clone) {
    fromSource = await copyTree(prepared.clone.dir, prepared.clone.scan, files);
  }
  for (const path of fromSource) {
    detection[path] = wantedForDetection(path) ? await readForDetection(files, path) : '';
  }
  for (const [path, content] of prepared.inline) {
    await files.write(path, content);
    detection[path] = textForDetection(content);
  }
  return detection;
}

async function readForDetection(files: WorkspaceFiles, path: string): Promise<string> {
  try {
    return textForDetection(await files.read(path, { maxBytes: DETECTION_READ_MAX }));
  } catch {
    return '';
  }
}
