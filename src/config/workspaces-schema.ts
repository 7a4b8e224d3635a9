import { z } from 'zod';

/**
 * How sandboxes' workspaces are made (docs/runtimes.md#workspaces-layers-and-disks): the layer
 * store's disk budget, dependency layers keyed by lockfile, and the warm pool of pre-started
 * containers.
 */
export const workspacesConfigSchema = {
  layers: z
    .strictObject({
      /**
       * The most the layer store (`<dataDir>/layers`) may hold, in MB. Past it, layers no
       * sandbox's stack and no snapshot names are removed, least recently used first. 0: no budget.
       */
      budgetMb: z
        .number()
        .int()
        .min(0)
        .max(16 * 1024 * 1024)
        .default(20 * 1024),
    })
    .prefault({}),
  dependencyLayers: z
    .strictObject({
      /**
       * Keep installed dependencies as read-only layers keyed by (runtime image, package manager,
       * lockfile hash — or manifest hash without a lockfile); a later create with the same key
       * mounts the layer instead of installing. Built by previewd in a throwaway sandbox of its own.
       */
      enabled: z.boolean().default(true),
      /**
       * One layer per key for every tenant (previewd built it from the lockfile alone). Off: the
       * key includes the owner, so a tenant only ever mounts layers built for its own projects.
       */
      shared: z.boolean().default(true),
    })
    .prefault({}),
  /**
   * Pre-created, pre-started containers per runtime image (`{ "<image>": N }`), claimed by creates
   * that fit them. 0 (none) by default; the pool never grows past the admission budget.
   */
  pool: z.record(z.string().min(1).max(256), z.number().int().min(0).max(64)).default({}),
};

export const workspacesEnvVars = {
  PREVIEWD_LAYERS_BUDGET_MB: { path: ['layers', 'budgetMb'], kind: 'num' },
  PREVIEWD_DEPENDENCY_LAYERS: { path: ['dependencyLayers', 'enabled'], kind: 'bool' },
  PREVIEWD_DEPENDENCY_LAYERS_SHARED: { path: ['dependencyLayers', 'shared'], kind: 'bool' },
} as const;
