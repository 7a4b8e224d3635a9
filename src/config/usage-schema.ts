import { z } from 'zod';

/** Samples kept per sandbox at most (retentionSec / intervalSec): bounds the memory of the ring buffers. */
export const MAX_SAMPLES_PER_SANDBOX = 10_000;

/**
 * Usage sampling per sandbox (docs/usage.md): every node samples its own running sandboxes'
 * CPU, memory, disk and network and keeps the last `retentionSec` in memory.
 */
export const usageConfigSchema = {
  usage: z
    .strictObject({
      /** Sample this node's running sandboxes; off: GET /v1/sandboxes/{id}/metrics answers usage_sampling_off. */
      enabled: z.boolean().default(true),
      /** Seconds between two samples of a sandbox. */
      intervalSec: z.number().min(0.2).max(3600).default(10),
      /** Seconds of samples kept in memory per sandbox (a ring buffer, dropped with the sandbox). */
      retentionSec: z
        .number()
        .min(1)
        .max(7 * 86_400)
        .default(3600),
      /**
       * Prometheus series per sandbox (previewd_sandbox_*{sandbox}) for at most this many sandboxes,
       * the top ones by memory; 0: none (the label's cardinality stays bounded).
       */
      prometheusMaxSandboxes: z.number().int().min(0).max(10_000).default(0),
    })
    .refine((u) => u.retentionSec >= u.intervalSec, {
      message: 'usage.retentionSec must be at least usage.intervalSec',
      path: ['retentionSec'],
    })
    .refine((u) => u.retentionSec / u.intervalSec <= MAX_SAMPLES_PER_SANDBOX, {
      message: `usage.retentionSec / usage.intervalSec must stay at most ${MAX_SAMPLES_PER_SANDBOX} samples per sandbox`,
      path: ['retentionSec'],
    })
    .prefault({}),
};

export const usageEnvVars = {
  PREVIEWD_USAGE: { path: ['usage', 'enabled'], kind: 'bool' },
  PREVIEWD_USAGE_INTERVAL_SEC: { path: ['usage', 'intervalSec'], kind: 'num' },
  PREVIEWD_USAGE_RETENTION_SEC: { path: ['usage', 'retentionSec'], kind: 'num' },
  PREVIEWD_USAGE_PROMETHEUS_MAX_SANDBOXES: { path: ['usage', 'prometheusMaxSandboxes'], kind: 'num' },
} as const;
