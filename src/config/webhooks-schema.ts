import { z } from 'zod';

/** Signed webhooks per tenant (docs/webhooks.md): bounds, the target policy, timeouts, retries. */
export const webhooksConfigSchema = {
  webhooks: z
    .strictObject({
      /** Run the dispatcher and sender on this node (the routes answer either way). */
      enabled: z.boolean().default(true),
      /**
       * Allow targets on loopback, link-local, private (RFC 1918, ULA, CGNAT) and other
       * non-internet addresses. Off: such URLs are refused at create and at each send.
       */
      allowPrivateTargets: z.boolean().default(false),
      /** Webhooks an owner (or the admin-wide scope) may hold. */
      maxPerOwner: z.number().int().min(1).max(1000).default(20),
      /** How long one delivery attempt may take (connect, answer, body). */
      timeoutSec: z.number().positive().max(120).default(10),
      /** A delivery still failing this long after it was made is marked failed. */
      retryWindowSec: z
        .number()
        .positive()
        .max(7 * 86_400)
        .default(86_400),
      /** The delay after the first failed attempt; each next one doubles it (with jitter). */
      retryBaseMs: z.number().int().min(1).max(3_600_000).default(5_000),
      /** The longest delay between two attempts. */
      retryMaxMs: z.number().int().min(1).max(86_400_000).default(3_600_000),
      /** How often the sender looks for due deliveries (it is also woken by new ones on this node). */
      pollMs: z.number().int().min(10).max(60_000).default(1_000),
      /** Attempts in flight at once on this node. */
      concurrency: z.number().int().min(1).max(256).default(8),
    })
    .prefault({}),
};

export const webhooksEnvVars = {
  PREVIEWD_WEBHOOKS: { path: ['webhooks', 'enabled'], kind: 'bool' },
  PREVIEWD_WEBHOOKS_ALLOW_PRIVATE: { path: ['webhooks', 'allowPrivateTargets'], kind: 'bool' },
  PREVIEWD_WEBHOOKS_MAX_PER_OWNER: { path: ['webhooks', 'maxPerOwner'], kind: 'num' },
  PREVIEWD_WEBHOOKS_TIMEOUT_SEC: { path: ['webhooks', 'timeoutSec'], kind: 'num' },
  PREVIEWD_WEBHOOKS_RETRY_WINDOW_SEC: { path: ['webhooks', 'retryWindowSec'], kind: 'num' },
  PREVIEWD_WEBHOOKS_RETRY_BASE_MS: { path: ['webhooks', 'retryBaseMs'], kind: 'num' },
  PREVIEWD_WEBHOOKS_RETRY_MAX_MS: { path: ['webhooks', 'retryMaxMs'], kind: 'num' },
  PREVIEWD_WEBHOOKS_POLL_MS: { path: ['webhooks', 'pollMs'], kind: 'num' },
  PREVIEWD_WEBHOOKS_CONCURRENCY: { path: ['webhooks', 'concurrency'], kind: 'num' },
} as const;
