import { z } from 'zod';
import { egressPolicySchema } from '../domain/egress.js';
import { isolationSchema } from '../domain/isolation.js';
import { resourcesSchema } from '../domain/schemas.js';
import { storeConfigSchema, storeEnvVars } from './cluster-schema.js';
import { sourcesConfigSchema, sourcesEnvVars } from './sources-schema.js';
import { usageConfigSchema, usageEnvVars } from './usage-schema.js';
import { webhooksConfigSchema, webhooksEnvVars } from './webhooks-schema.js';
import { workspacesConfigSchema, workspacesEnvVars } from './workspaces-schema.js';

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
      allowed: z
        .array(z.string().min(1).max(256))
        .max(1000)
        .optional()
        .describe(
          'Images a client may name besides node and python: exact references, or patterns such as "ghcr.io/acme/*" (picomatch)',
        ),
    })
    .prefault({}),
  isolation: z
    .strictObject({
      default: isolationSchema.default('container').describe('Isolation of sandboxes created without one'),
      gvisorRuntime: z
        .string()
        .min(1)
        .default('runsc')
        .describe("The engine's runtime name for gVisor (docker info → Runtimes)"),
    })
    .prefault({}),
  caBundle: z
    .string()
    .default('auto')
    .describe('"auto" (mount the host bundle when one exists), "off", or a path to a PEM bundle'),
  dependencyCache: z
    .boolean()
    .default(true)
    .describe('Share npm and pip download caches (<dataDir>/cache) between sandboxes on this host'),
  appRestarts: z
    .number()
    .int()
    .min(0)
    .max(20)
    .default(3)
    .describe('Restarts of a crashed app (backoff 1, 2, 4… s) before the supervisor gives up'),
  docker: z
    .strictObject({
      network: z.string().min(1).default('previewd'),
      socketPath: z.string().optional(),
      /**
       * One uid:gid for every sandbox (the single shared user of before). Unset (the default), each
       * sandbox gets its own uid from uidRange.
       */
      sandboxUser: z
        .string()
        .regex(/^\d+(:\d+)?$/, 'must be numeric uid:gid, e.g. 1000:1000')
        .optional(),
      /** The uids sandboxes are given, one each (its gid is the same number). */
      uidRange: z
        .strictObject({
          start: z.number().int().min(1000).default(100_000),
          size: z.number().int().min(1).default(50_000),
        })
        .refine((r) => r.start + r.size <= 2 ** 31 - 1, 'start + size must stay below 2^31')
        .prefault({}),
      capAdd: z.array(z.string()).default(['NET_BIND_SERVICE']),
      stopTimeoutSec: z.number().int().min(0).max(300).default(5),
    })
    .prefault({}),
  resources: z
    .strictObject({
      default: resourcesSchema.default({ cpus: 1, memoryMb: 1024, pids: 512, diskMb: 1024 }),
      max: resourcesSchema.default({ cpus: 2, memoryMb: 8192, pids: 4096, diskMb: 16384 }),
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
  edge: z
    .strictObject({
      hostTemplate: z
        .string()
        .regex(/^[a-z0-9{}-]+$/, 'one DNS label: letters, digits, "-" and the {port} and {id} placeholders')
        .refine((t) => t.includes('{port}') && t.includes('{id}'), 'must contain {port} and {id}')
        .default('{port}-{id}'),
      tls: z
        .strictObject({
          certFile: z.string().min(1),
          keyFile: z.string().min(1),
          addr: hostPort.default('0.0.0.0:8443'),
        })
        .optional()
        .describe('TLS listener with a (wildcard) certificate for the preview domain'),
      httpsRedirect: z.boolean().default(false).describe('Redirect plain-HTTP preview requests to https'),
      publicScheme: z.enum(['http', 'https']).optional().describe('Scheme of preview URLs; default from tls'),
      publicPort: z
        .number()
        .int()
        .min(1)
        .max(65535)
        .optional()
        .describe('Port of preview URLs when the edge sits behind another listener'),
      tokenSecretFile: z
        .string()
        .optional()
        .describe(
          'Preview-token keys, one "kid secret" a line, first signs; default <dataDir>/preview-token-keys',
        ),
      loginUrl: z.string().url().optional().describe('Where browsers without a preview token are sent'),
      wakeTimeoutSec: z.number().positive().max(600).default(30),
      useLoopbackPorts: z
        .boolean()
        .default(false)
        .describe('Reach sandboxes through ports published on 127.0.0.1 (Docker Desktop)'),
      accessLogSize: z.number().int().min(0).max(100_000).default(500),
      front: z
        .enum(['auto', 'haproxy', 'off'])
        .default('auto')
        .describe(
          'HAProxy in front of the edge for running public previews ("auto": when the binary is found)',
        ),
      haproxyBin: z.string().min(1).default('haproxy').describe('The HAProxy binary (front)'),
      frontThreads: z
        .number()
        .int()
        .min(1)
        .max(64)
        .optional()
        .describe("HAProxy's threads; default: one per core"),
      frontLogRate: z
        .number()
        .int()
        .min(0)
        .default(1000)
        .describe(
          'Requests per second and preview that the front logs (access log, latency); beyond, only counted',
        ),
    })
    .prefault({}),
  edgeMode: z
    .enum(['builtin', 'traefik'])
    .default('builtin')
    .describe('"traefik": Traefik routes to running sandboxes; the built-in edge still wakes and authorises'),
  traefik: z
    .strictObject({
      /** Entrypoints of the sandbox routers (and of the plain-HTTP wake catch-all). */
      entrypoints: z.array(z.string().min(1)).min(1).default(['web']),
      /** TLS entrypoints: the wake catch-all also listens there; with `tls` the sandbox routers move there. */
      tlsEntrypoints: z.array(z.string().min(1)).default(['websecure']),
      tls: z.boolean().default(false),
      certResolver: z.string().min(1).optional(),
      routerTemplate: z
        .string()
        .regex(
          /^[A-Za-z0-9_{}-]*\{id\}[A-Za-z0-9_{}-]*$/,
          'must contain {id} (and usually {port}); letters, digits, - and _',
        )
        .refine((t) => t.includes('{port}'), 'must contain {port}: one router per exposed port')
        .default('{id}-{port}'),
      /** Traefik's JSON access log, tailed for activity. */
      accessLog: z.string().min(1).optional(),
      /** Where Traefik reaches previewd's forward-auth endpoint. */
      forwardAuthUrl: z.string().url().default('http://127.0.0.1:7070/v1/traefik/forward-auth'),
      /** Where Traefik sends the wake catch-all: previewd's built-in edge. */
      wakeUrl: z.string().url().default('http://127.0.0.1:8080'),
    })
    .refine((t) => !t.tls || t.tlsEntrypoints.length > 0, {
      message: 'must name at least one entrypoint when traefik.tls is on',
      path: ['tlsEntrypoints'],
    })
    .prefault({}),
  io: z
    .strictObject({
      execTimeoutSec: z.number().int().min(1).max(86_400).default(300),
      portScanIntervalMs: z.number().int().min(100).max(60_000).default(1000),
      filesDebounceMs: z.number().int().min(10).max(60_000).default(250),
      processLogKb: z.number().int().min(4).max(65_536).default(1024),
      execOutputMb: z.number().positive().max(1024).default(16),
    })
    .prefault({}),
  lifecycle: z
    .strictObject({
      /** How often the idle reaper and the expiry reaper look at every sandbox. */
      idleReapIntervalSec: z.number().positive().max(3600).default(10),
      maxPauseAfterSec: z.number().int().min(0).max(31_536_000).default(86_400),
      maxIdleTimeoutSec: z.number().int().min(0).max(31_536_000).default(604_800),
      /** Open WebSockets (edge and exec sessions) keep their sandbox awake. */
      websocketsKeepAwake: z.boolean().default(true),
      preStopTimeoutSec: z.number().int().min(1).max(300).default(10),
      /** extend (and ttlSec at create) may not put expiresAt later than createdAt + maxTtlSec. */
      maxTtlSec: z.number().int().min(1).max(31_536_000).default(2_592_000),
    })
    .prefault({}),
  admission: z
    .strictObject({
      /** Live containers (creating, starting, running, paused) on this host; 0: no limit. */
      maxRunning: z.number().int().min(0).max(100_000).default(200),
      /** Memory the sandboxes may use together; default 80% of the host's memory. */
      memoryBudgetMb: z.number().int().min(0).optional(),
      /** What a sandbox about to start is counted as, until its real usage is known. */
      startMemoryMb: z.number().int().min(0).default(128),
      /** Below this much available host memory a start makes room first; default 5% of the host, at least 256. */
      minFreeMemoryMb: z.number().int().min(0).optional(),
      /** Sandboxes active this recently are never stopped to make room. */
      minActiveSec: z.number().int().min(0).default(60),
      retryAfterSec: z.number().int().min(1).max(3600).default(15),
    })
    .prefault({}),
  quotas: z
    .strictObject({
      maxSandboxesPerOwner: z.number().int().min(1).optional(),
      maxRunningPerOwner: z.number().int().min(1).optional(),
      /** Snapshots an owner may keep (docs/snapshots.md). */
      maxSnapshotsPerOwner: z.number().int().min(1).max(100_000).default(50),
    })
    .prefault({}),
  dashboard: z
    .strictObject({
      /** Serve the web dashboard at / on the API address. */
      enabled: z.boolean().default(true),
      /** How long a dashboard sign-in lasts. */
      sessionTtlSec: z
        .number()
        .int()
        .min(60)
        .max(30 * 86_400)
        .default(12 * 3600),
    })
    .prefault({}),
  api: z
    .strictObject({
      /**
       * Host names (or IP literals) the API answers to besides the loopback names and the listen
       * address; others get 421 host_not_allowed (DNS rebinding). "*" turns the check off.
       */
      hosts: z.array(z.string().min(1).max(253)).max(64).default([]),
      /**
       * Trust X-Forwarded-* from a TLS-terminating proxy in front of the API: true (any), or the
       * proxy's addresses/CIDRs. Decides the client address (rate limits) and whether the
       * dashboard cookie is Secure.
       */
      trustProxy: z.union([z.boolean(), z.array(z.string().min(1)).max(64)]).default(false),
      /** A bearer token for GET /metrics alone (a scraper needs no API key); an admin key works too. */
      metricsToken: z.string().min(16, 'metricsToken must be at least 16 characters').optional(),
      rateLimit: z
        .strictObject({
          /** Failed authentications per client address per window, then 429. */
          authFailures: z.number().int().min(1).max(100_000).default(20),
          /** Sandbox creates per owner (or admin key) per window, then 429. */
          creates: z.number().int().min(1).max(100_000).default(60),
          windowSec: z.number().int().min(1).max(86_400).default(60),
        })
        .prefault({}),
    })
    .prefault({}),
  network: z
    .strictObject({
      /**
       * previewd's iptables chains that keep sandboxes off the host, metadata, private ranges and
       * each other ("auto": install them, warn when it cannot; "required": refuse to start
       * without them; "off": leave the sandbox network as Docker makes it). See docs/network.md.
       */
      containment: z.enum(['auto', 'required', 'off']).default('auto'),
      /** Private CIDRs (or addresses) sandboxes may reach anyway, e.g. an internal package mirror. */
      allowPrivate: z
        .array(
          z
            .string()
            .regex(
              /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}(\/(3[0-2]|[12]?\d))?$/,
              'must be an IPv4 address or CIDR, e.g. 10.1.2.0/24',
            ),
        )
        .max(256)
        .default([]),
      /** Let sandboxes reach the edge's public port(s) on the host (previews of other sandboxes). */
      allowEdge: z.boolean().default(false),
      /** How often the rules are checked and put back (an engine or firewall restart may flush them). */
      checkIntervalSec: z.number().positive().max(3600).default(10),
      /** The egress policy of sandboxes that name none, when their owner has none either (docs/network.md). */
      egressDefault: egressPolicySchema.prefault({ egress: 'allow' }),
      /** Egress policies per owner (tenant), for that owner's sandboxes that name none. */
      egressByOwner: z.record(z.string().min(1).max(128), egressPolicySchema).default({}),
      /**
       * The resolver the egress proxy asks (host:port, IPv4); default: the host's own
       * (/etc/resolv.conf). The proxy resolves every name itself and connects itself.
       */
      egressResolver: hostPort.optional(),
    })
    .prefault({}),
  reconcileIntervalSec: z.number().positive().max(3600).default(5),
  orphanGraceSec: z.number().min(0).max(86_400).default(30),
  ...storeConfigSchema,
  ...usageConfigSchema,
  ...webhooksConfigSchema,
  ...sourcesConfigSchema,
  ...workspacesConfigSchema,
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

type EnvParser = (raw: string) => unknown;
const str: EnvParser = (raw) => raw;
const num: EnvParser = (raw) => (raw.trim() === '' || Number.isNaN(Number(raw)) ? raw : Number(raw));
const bool: EnvParser = (raw) =>
  /^(1|true|yes|on)$/i.test(raw.trim()) ? true : /^(0|false|no|off)$/i.test(raw.trim()) ? false : raw;
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
  PREVIEWD_IMAGES_ALLOWED: { path: ['images', 'allowed'], parse: list },
  PREVIEWD_ISOLATION: { path: ['isolation', 'default'], parse: str },
  PREVIEWD_ISOLATION_GVISOR_RUNTIME: { path: ['isolation', 'gvisorRuntime'], parse: str },
  PREVIEWD_DEBIAN_MIRROR: { path: ['images', 'debianMirror'], parse: str },
  PREVIEWD_CA_BUNDLE: { path: ['caBundle'], parse: str },
  PREVIEWD_DEPENDENCY_CACHE: { path: ['dependencyCache'], parse: bool },
  PREVIEWD_APP_RESTARTS: { path: ['appRestarts'], parse: num },
  PREVIEWD_DOCKER_NETWORK: { path: ['docker', 'network'], parse: str },
  PREVIEWD_DOCKER_SOCKET: { path: ['docker', 'socketPath'], parse: str },
  PREVIEWD_SANDBOX_USER: { path: ['docker', 'sandboxUser'], parse: str },
  PREVIEWD_INSTANCE_ID: { path: ['instanceId'], parse: str },
  PREVIEWD_EDGE_HOST_TEMPLATE: { path: ['edge', 'hostTemplate'], parse: str },
  PREVIEWD_EDGE_TLS_CERT: { path: ['edge', 'tls', 'certFile'], parse: str },
  PREVIEWD_EDGE_TLS_KEY: { path: ['edge', 'tls', 'keyFile'], parse: str },
  PREVIEWD_EDGE_TLS_ADDR: { path: ['edge', 'tls', 'addr'], parse: str },
  PREVIEWD_EDGE_HTTPS_REDIRECT: { path: ['edge', 'httpsRedirect'], parse: bool },
  PREVIEWD_EDGE_PUBLIC_SCHEME: { path: ['edge', 'publicScheme'], parse: str },
  PREVIEWD_EDGE_PUBLIC_PORT: { path: ['edge', 'publicPort'], parse: num },
  PREVIEWD_EDGE_TOKEN_SECRET_FILE: { path: ['edge', 'tokenSecretFile'], parse: str },
  PREVIEWD_EDGE_LOGIN_URL: { path: ['edge', 'loginUrl'], parse: str },
  PREVIEWD_EDGE_WAKE_TIMEOUT_SEC: { path: ['edge', 'wakeTimeoutSec'], parse: num },
  PREVIEWD_EDGE_USE_LOOPBACK_PORTS: { path: ['edge', 'useLoopbackPorts'], parse: bool },
  PREVIEWD_EDGE_ACCESS_LOG_SIZE: { path: ['edge', 'accessLogSize'], parse: num },
  PREVIEWD_EDGE_FRONT: { path: ['edge', 'front'], parse: str },
  PREVIEWD_EDGE_HAPROXY_BIN: { path: ['edge', 'haproxyBin'], parse: str },
  PREVIEWD_EDGE_FRONT_THREADS: { path: ['edge', 'frontThreads'], parse: num },
  PREVIEWD_EDGE_FRONT_LOG_RATE: { path: ['edge', 'frontLogRate'], parse: num },
  PREVIEWD_EDGE_MODE: { path: ['edgeMode'], parse: str },
  PREVIEWD_TRAEFIK_ENTRYPOINTS: { path: ['traefik', 'entrypoints'], parse: list },
  PREVIEWD_TRAEFIK_TLS_ENTRYPOINTS: { path: ['traefik', 'tlsEntrypoints'], parse: list },
  PREVIEWD_TRAEFIK_TLS: { path: ['traefik', 'tls'], parse: bool },
  PREVIEWD_TRAEFIK_CERT_RESOLVER: { path: ['traefik', 'certResolver'], parse: str },
  PREVIEWD_TRAEFIK_ROUTER_TEMPLATE: { path: ['traefik', 'routerTemplate'], parse: str },
  PREVIEWD_TRAEFIK_ACCESS_LOG: { path: ['traefik', 'accessLog'], parse: str },
  PREVIEWD_TRAEFIK_FORWARD_AUTH_URL: { path: ['traefik', 'forwardAuthUrl'], parse: str },
  PREVIEWD_TRAEFIK_WAKE_URL: { path: ['traefik', 'wakeUrl'], parse: str },
  PREVIEWD_EXEC_TIMEOUT_SEC: { path: ['io', 'execTimeoutSec'], parse: num },
  PREVIEWD_PORT_SCAN_INTERVAL_MS: { path: ['io', 'portScanIntervalMs'], parse: num },
  PREVIEWD_FILES_DEBOUNCE_MS: { path: ['io', 'filesDebounceMs'], parse: num },
  PREVIEWD_PROCESS_LOG_KB: { path: ['io', 'processLogKb'], parse: num },
  PREVIEWD_EXEC_OUTPUT_MB: { path: ['io', 'execOutputMb'], parse: num },
  PREVIEWD_DASHBOARD: { path: ['dashboard', 'enabled'], parse: bool },
  PREVIEWD_DASHBOARD_SESSION_TTL_SEC: { path: ['dashboard', 'sessionTtlSec'], parse: num },
  PREVIEWD_API_HOSTS: { path: ['api', 'hosts'], parse: list },
  PREVIEWD_TRUST_PROXY: {
    path: ['api', 'trustProxy'],
    parse: (raw) => (/^(1|true|yes|on|0|false|no|off)$/i.test(raw.trim()) ? bool(raw) : list(raw)),
  },
  PREVIEWD_METRICS_TOKEN: { path: ['api', 'metricsToken'], parse: str },
  PREVIEWD_RATE_LIMIT_AUTH_FAILURES: { path: ['api', 'rateLimit', 'authFailures'], parse: num },
  PREVIEWD_RATE_LIMIT_CREATES: { path: ['api', 'rateLimit', 'creates'], parse: num },
  PREVIEWD_RATE_LIMIT_WINDOW_SEC: { path: ['api', 'rateLimit', 'windowSec'], parse: num },
  PREVIEWD_NETWORK_CONTAINMENT: { path: ['network', 'containment'], parse: str },
  PREVIEWD_NETWORK_ALLOW_PRIVATE: { path: ['network', 'allowPrivate'], parse: list },
  PREVIEWD_NETWORK_ALLOW_EDGE: { path: ['network', 'allowEdge'], parse: bool },
  PREVIEWD_NETWORK_CHECK_INTERVAL_SEC: { path: ['network', 'checkIntervalSec'], parse: num },
  PREVIEWD_NETWORK_EGRESS_RESOLVER: { path: ['network', 'egressResolver'], parse: str },
  PREVIEWD_RECONCILE_INTERVAL_SEC: { path: ['reconcileIntervalSec'], parse: num },
  PREVIEWD_ORPHAN_GRACE_SEC: { path: ['orphanGraceSec'], parse: num },
  PREVIEWD_IDLE_TIMEOUT_SEC: { path: ['defaults', 'idleTimeoutSec'], parse: num },
  PREVIEWD_PAUSE_AFTER_SEC: { path: ['defaults', 'pauseAfterSec'], parse: num },
  PREVIEWD_IDLE_REAP_INTERVAL_SEC: { path: ['lifecycle', 'idleReapIntervalSec'], parse: num },
  PREVIEWD_MAX_PAUSE_AFTER_SEC: { path: ['lifecycle', 'maxPauseAfterSec'], parse: num },
  PREVIEWD_MAX_IDLE_TIMEOUT_SEC: { path: ['lifecycle', 'maxIdleTimeoutSec'], parse: num },
  PREVIEWD_WEBSOCKETS_KEEP_AWAKE: { path: ['lifecycle', 'websocketsKeepAwake'], parse: bool },
  PREVIEWD_PRE_STOP_TIMEOUT_SEC: { path: ['lifecycle', 'preStopTimeoutSec'], parse: num },
  PREVIEWD_MAX_TTL_SEC: { path: ['lifecycle', 'maxTtlSec'], parse: num },
  PREVIEWD_MAX_RUNNING: { path: ['admission', 'maxRunning'], parse: num },
  PREVIEWD_MEMORY_BUDGET_MB: { path: ['admission', 'memoryBudgetMb'], parse: num },
  PREVIEWD_START_MEMORY_MB: { path: ['admission', 'startMemoryMb'], parse: num },
  PREVIEWD_MIN_FREE_MEMORY_MB: { path: ['admission', 'minFreeMemoryMb'], parse: num },
  PREVIEWD_MIN_ACTIVE_SEC: { path: ['admission', 'minActiveSec'], parse: num },
  PREVIEWD_QUOTA_MAX_SANDBOXES: { path: ['quotas', 'maxSandboxesPerOwner'], parse: num },
  PREVIEWD_QUOTA_MAX_RUNNING: { path: ['quotas', 'maxRunningPerOwner'], parse: num },
  PREVIEWD_QUOTA_MAX_SNAPSHOTS: { path: ['quotas', 'maxSnapshotsPerOwner'], parse: num },
  ...Object.fromEntries(
    Object.entries({
      ...storeEnvVars,
      ...usageEnvVars,
      ...webhooksEnvVars,
      ...sourcesEnvVars,
      ...workspacesEnvVars,
    }).map(([name, v]) => [name, { path: [...v.path], parse: { str, num, bool }[v.kind] }]),
  ),
};

/** Variables read by the CLI as a client, not by the server's configuration. */
export const clientEnvVars = ['PREVIEWD_URL', 'PREVIEWD_API_KEY', 'PREVIEWD_CONFIG'];
