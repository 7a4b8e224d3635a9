import { z } from 'zod';

/** `since`: an ISO time or epoch milliseconds; the answer holds the samples taken after it. */
export const usageSinceSchema = z
  .string()
  .max(40)
  .refine((raw) => parseSince(raw) !== undefined, {
    message: 'since must be an ISO time (2026-12-01T12:00:00Z) or epoch milliseconds',
  })
  .describe(
    'Only samples taken after this time (exclusive): an ISO time or epoch milliseconds. Pass the last sample\'s "at" to get only newer ones.',
  );

/** Epoch milliseconds of a `since` value, undefined when it is neither an ISO time nor a number. */
export function parseSince(raw: string): number | undefined {
  const text = raw.trim();
  if (text === '') return undefined;
  if (/^\d{1,16}$/.test(text)) return Number(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? at : undefined;
}

export const usageQuerySchema = z.strictObject({ since: usageSinceSchema.optional() });

export const usageSampleSchema = z.object({
  at: z.string().describe('When the sample was taken (ISO time, the end of its interval)'),
  cpuPercent: z
    .number()
    .describe('CPU used over the interval, in percent of one core (200 = two cores busy)'),
  memoryMb: z
    .number()
    .describe(
      'Memory in use without the page cache (shared memory counted), in MB, as admission measures it',
    ),
  diskMb: z
    .number()
    .describe("Space used on the sandbox's disk (its writable layer, home and caches), in MB"),
  netRxBytes: z
    .number()
    .int()
    .describe(
      'Bytes the sandbox received, cumulative since its container last started (a stop and start counts from 0 again)',
    ),
  netTxBytes: z
    .number()
    .int()
    .describe(
      'Bytes the sandbox sent (preview answers included), cumulative since its container last started (a stop and start counts from 0 again)',
    ),
});

export const usageAnswerSchema = z.object({
  intervalSec: z.number().describe('Seconds between two samples (usage.intervalSec)'),
  retentionSec: z.number().describe('Seconds of samples kept (usage.retentionSec)'),
  samples: z
    .array(usageSampleSchema)
    .describe(
      'Oldest first. A sandbox is sampled while it runs or is paused; its first sample comes one interval after it started',
    ),
});

export type UsageSample = z.infer<typeof usageSampleSchema>;
export type UsageAnswer = z.infer<typeof usageAnswerSchema>;
