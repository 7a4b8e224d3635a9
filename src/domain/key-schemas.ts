import { z } from 'zod';
import { OWNER_RE, OWNER_RULE } from './credentials.js';

export const ownerSchema = z
  .string()
  .regex(OWNER_RE, OWNER_RULE)
  .describe('The end user or team the key acts for');

export const createKeySchema = z.strictObject({
  owner: ownerSchema.optional().describe('Makes a tenant key for this owner; without it, an admin key'),
  name: z.string().min(1).max(128).optional().describe('A label for listings'),
});

export const keySchema = z.object({
  id: z.string(),
  role: z.enum(['admin', 'tenant']),
  owner: z.string().nullable(),
  name: z.string().nullable(),
  prefix: z.string().describe('The first characters of the secret'),
  source: z
    .enum(['config', 'api'])
    .describe(
      'config: from PREVIEWD_API_KEYS or <dataDir>/api-key (not revocable here); api: made with POST /v1/keys',
    ),
  createdAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});

export const createdKeySchema = keySchema.extend({
  key: z.string().describe('The secret: shown this once, stored only as a hash'),
});

export const keyListSchema = z.object({ keys: z.array(keySchema) });

export const keyIdParamsSchema = z.strictObject({ keyId: z.string().min(1).max(64) });
