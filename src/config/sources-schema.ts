import { z } from 'zod';

/** Where a create's files may come from besides JSON (docs/sources.md): archives and git. */
export const sourcesConfigSchema = {
  sources: z
    .strictObject({
      /**
       * Allow git URLs whose host is on loopback, link-local, private (RFC 1918, ULA, CGNAT) or
       * another non-internet address. Off: such URLs are refused before git runs.
       */
      allowPrivateGit: z.boolean().default(false),
      /** How long one clone (fetch, checkout, submodules) may take before git is killed. */
      gitTimeoutSec: z.number().positive().max(3600).default(300),
      /** The most a clone may take on disk (received pack and checked-out files), in MB. */
      maxGitMb: z.number().int().min(1).max(65_536).default(1024),
      /** The most entries an archive body or a cloned tree may hold. */
      maxEntries: z.number().int().min(1).max(1_000_000).default(100_000),
      /** The most bytes an archive body may unpack to, in MB. */
      maxUnpackedMb: z.number().int().min(1).max(65_536).default(1024),
    })
    .prefault({}),
};

export const sourcesEnvVars = {
  PREVIEWD_SOURCES_ALLOW_PRIVATE_GIT: { path: ['sources', 'allowPrivateGit'], kind: 'bool' },
  PREVIEWD_SOURCES_GIT_TIMEOUT_SEC: { path: ['sources', 'gitTimeoutSec'], kind: 'num' },
  PREVIEWD_SOURCES_MAX_GIT_MB: { path: ['sources', 'maxGitMb'], kind: 'num' },
  PREVIEWD_SOURCES_MAX_ENTRIES: { path: ['sources', 'maxEntries'], kind: 'num' },
  PREVIEWD_SOURCES_MAX_UNPACKED_MB: { path: ['sources', 'maxUnpackedMb'], kind: 'num' },
} as const;
