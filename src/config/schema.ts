import { z } from 'zod';
import { resourcesSchema } from '../domain/schemas.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7070');

/** The whole configuration. previewd.yaml uses these keys; PREVIEWD_* variables map onto them. */
export const configSchema = z.strictObject({
  dataDir: z.string().min(1).default('./data'),
  apiAddr: hostPort.default('127.0.0.1:7070'),
  edgeAddr: hostPort.default('0.0.0.0:8080'),
  previewDomain: z
    .string()
    .regex(
      /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
      'must be a lowercase domain name',
    )
    .default('preview.localhost'),
  apiKeys: z.array(z.string().min(16, 'API keys must be at least 16 characters')).default([]),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  logFormat: z.enum(['auto', 'json', 'pretty']).default('auto'),
  maxBodyMb: z.number().positive().max(4096).default(64),
  images: z
    .strictObject({
      node: z.string().min(1).default('previewd/runtime-node:22'),
      python: z.string().min(1).default('previewd/runtime-python:3'),
      base: z.string().min(1).default('previewd/base:bookworm'),
      debianMirror: z.string().url().optional(),
    })
    .prefault({}),
  caBundle: z
    .string()
    .default('auto')
    .describe('"auto" (mount the host bundle when one exists), "off", or a path to a PEM bundle'),
  docker: z
    .strictObject({
      network: z.string().min(1).default('previewd'),
      socketPath: z.string().optional(),
      sandboxUser: z.string().default('1000:1000'),
      capAdd: z.array(z.string()).default(['NET_BIND_SERVICE']),
      stopTimeoutSec: z.number().int().min(0).max(300).default(5),
    })
    .prefault({}),
  resources: z
    .strictObject({
      default: resourcesSchema.default({ cpus: 1, memoryMb: 1024, pids: 512 }),
      max: resourcesSchema.default({ cpus: 2, memoryMb: 8192, pids: 4096 }),
    })
    .prefault({}),
  defaults: z
    .strictObject({
      idleTimeoutSec: z.number().int().min(0).default(900),
      pauseAfterSec: z.number().int().min(0).default(120),
    })
    .prefault({}),
  instanceId: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/)
    .optional()
    .describe('Names this control plane on a shared engine; default: derived from dataDir'),
  reconcileIntervalSec: z.number().positive().max(3600).default(5),
  orphanGraceSec: z.number().min(0).max(86_400).default(30),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

type EnvParser = (raw: string) => unknown;
const str: EnvParser = (raw) => raw;
const num: EnvParser = (raw) => (raw.trim() === '' || Number.isNaN(Number(raw)) ? raw : Number(raw));
const list: EnvParser = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** PREVIEWD_* variables and the configuration key each sets. Unknown PREVIEWD_* names are warned about. */
export const envVars: Record<string, { path: string[]; parse: EnvParser }> = {
  PREVIEWD_DATA_DIR: { path: ['dataDir'], parse: str },
  PREVIEWD_API_ADDR: { path: ['apiAddr'], parse: str },
  PREVIEWD_EDGE_ADDR: { path: ['edgeAddr'], parse: str },
  PREVIEWD_PREVIEW_DOMAIN: { path: ['previewDomain'], parse: str },
  PREVIEWD_API_KEYS: { path: ['apiKeys'], parse: list },
  PREVIEWD_LOG_LEVEL: { path: ['logLevel'], parse: str },
  PREVIEWD_LOG_FORMAT: { path: ['logFormat'], parse: str },
  PREVIEWD_MAX_BODY_MB: { path: ['maxBodyMb'], parse: num },
  PREVIEWD_IMAGE_NODE: { path: ['images', 'node'], parse: str },
  PREVIEWD_IMAGE_PYTHON: { path: ['images', 'python'], parse: str },
  PREVIEWD_IMAGE_BASE: { path: ['images', 'base'], parse: str },
  PREVIEWD_DEBIAN_MIRROR: { path: ['images', 'debianMirror'], parse: str },
  PREVIEWD_CA_BUNDLE: { path: ['caBundle'], parse: str },
  PREVIEWD_DOCKER_NETWORK: { path: ['docker', 'network'], parse: str },
  PREVIEWD_DOCKER_SOCKET: { path: ['docker', 'socketPath'], parse: str },
  PREVIEWD_INSTANCE_ID: { path: ['instanceId'], parse: str },
  PREVIEWD_RECONCILE_INTERVAL_SEC: { path: ['reconcileIntervalSec'], parse: num },
  PREVIEWD_ORPHAN_GRACE_SEC: { path: ['orphanGraceSec'], parse: num },
  PREVIEWD_IDLE_TIMEOUT_SEC: { path: ['defaults', 'idleTimeoutSec'], parse: num },
  PREVIEWD_PAUSE_AFTER_SEC: { path: ['defaults', 'pauseAfterSec'], parse: num },
};

/** Variables read by the CLI as a client, not by the server's configuration. */
export const clientEnvVars = ['PREVIEWD_URL', 'PREVIEWD_API_KEY', 'PREVIEWD_CONFIG'];
