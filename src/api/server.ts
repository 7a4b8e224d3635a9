import type { Duplex } from 'node:stream';
import fastifyCookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { installApiForwarding } from '../cluster/api-forwarding.js';
import type { ClusterNode } from '../cluster/cluster.js';
import { splitHostPort } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Edge } from '../edge/edge-server.js';
import { answerClientError } from '../http/client-errors.js';
import type { PoolState } from '../pool/warm-pool.js';
import type { SandboxProvider } from '../providers/provider.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { SnapshotService } from '../snapshots/snapshot-service.js';
import type { Store } from '../store/store.js';
import type { DynamicConfigSource } from '../traefik/dynamic-config-source.js';
import type { NodeUsage } from '../usage/node-usage.js';
import type { WebhookService } from '../webhooks/webhook-service.js';
import { ApiAuth, installAuth, WS_PROTOCOL } from './auth.js';
import { installBodyLimits } from './body-limits.js';
import { installDashboard } from './dashboard.js';
import { answerFrameworkError, answerNotFound, installErrorHandling } from './error-handler.js';
import { allowedApiHosts, installHostCheck } from './host-check.js';
import type { KeyRing } from './key-ring.js';
import type { Metrics } from './metrics.js';
import { RateLimits } from './rate-limits.js';
import { accessLogRoutes } from './routes/access-log.js';
import { appControlRoutes } from './routes/app-control.js';
import { capacityRoutes } from './routes/capacity.js';
import { eventRoutes } from './routes/events.js';
import { execRoutes } from './routes/exec.js';
import { fileRoutes } from './routes/files.js';
import type { IoRouteDeps } from './routes/io-context.js';
import { keyRoutes } from './routes/keys.js';
import { logRoutes } from './routes/logs.js';
import { mcpRoutes } from './routes/mcp.js';
import { networkRoutes } from './routes/network.js';
import { nodeRoutes } from './routes/nodes.js';
import { poolRoutes } from './routes/pool.js';
import { portRoutes } from './routes/ports.js';
import { previewTokenRoutes } from './routes/preview-tokens.js';
import { processRoutes } from './routes/processes.js';
import { sandboxRoutes } from './routes/sandboxes.js';
import { sessionRoutes } from './routes/session.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { systemRoutes } from './routes/system.js';
import { templateRoutes } from './routes/templates.js';
import { traefikRoutes } from './routes/traefik.js';
import { usageRoutes } from './routes/usage.js';
import { webhookRoutes } from './routes/webhooks.js';
import { DashboardSessions } from './session.js';
import { installTenancy } from './tenancy.js';

export interface ApiDeps {
  config: Config;
  /** Every key the API accepts: admin and tenant keys, configured and made through the API. */
  keyRing: KeyRing;
  service: SandboxService;
  store: Store;
  provider: SandboxProvider;
  metrics: Metrics;
  log: Logger;
  version: string;
  /** The preview edge (ports, preview tokens and access-log routes need it). */
  edge?: Edge;
  /** Present in edgeMode traefik: serves GET /v1/traefik/dynamic. */
  traefikDynamicConfig?: DynamicConfigSource;
  /** This node: its id, create placement and (in a cluster) forwarding to the other nodes. */
  cluster: ClusterNode;
  /** Sandbox I/O (files, exec, processes, logs, events); the routes are left out without it. */
  io?: Pick<IoRouteDeps, 'bus' | 'processes' | 'activity'>;
  /** This node's usage sampling: serves GET /v1/sandboxes/{id}/metrics (docs/usage.md). */
  usage?: NodeUsage;
  /** Signed webhooks (docs/webhooks.md); the routes are left out without it. */
  webhooks?: WebhookService;
  /** Snapshots and fork (docs/snapshots.md); the routes are left out without it. */
  snapshots?: SnapshotService;
  /** The warm pool (docs/pool.md): GET /v1/pool. */
  pool?: { state(): PoolState };
}

/** The control-plane HTTP API: JSON under /v1, bearer keys, OpenAPI from the same zod schemas. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: Math.round(deps.config.maxBodyMb * 1024 * 1024),
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    return503OnClosing: true,
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    // Client address (rate limits) and scheme (Secure cookies) from a proxy the operator named.
    trustProxy: deps.config.api.trustProxy,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installBodyLimits(app, Math.round(deps.config.maxBodyMb * 1024 * 1024));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'previewd API',
        version: deps.version,
        description: 'Sandboxes with live preview URLs.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const dashboard = deps.config.dashboard.enabled;
  installErrorHandling(app, { notFound: !dashboard });
  installHostCheck(app, allowedApiHosts(splitHostPort(deps.config.apiAddr).host, deps.config.api.hosts));
  await app.register(fastifyCookie);
  // Before any route: WebSocket routes (the exec session) go through the router and its hooks.
  await app.register(websocket, {
    options: {
      maxPayload: 16 * 1024 * 1024,
      // Only ever answer with `previewd`: a `previewd.key.<key>` offer must not be echoed back.
      handleProtocols: (offered) => (offered.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
    },
  });
  closeUpgradedSocketsOnShutdown(app);
  const limits = await RateLimits.install(app, deps.config.api.rateLimit);
  const sessions = dashboard
    ? new DashboardSessions(deps.store, deps.keyRing, deps.config.dashboard.sessionTtlSec)
    : undefined;
  const auth = new ApiAuth(deps.keyRing, sessions, deps.cluster.credential);
  installAuth(app, auth, { limits, metricsToken: deps.config.api.metricsToken });
  installTenancy(app, deps.store);
  // After both checks: a call about another node's sandbox is answered by that node.
  if (deps.cluster.forwarding && deps.cluster.nodes) {
    installApiForwarding(app, deps.cluster.forwarding, deps.cluster.nodes);
  }
  if (sessions) {
    await app.register(sessionRoutes, { keys: deps.keyRing, sessions, auth, limits });
    await installDashboard(app, answerNotFound);
  }
  await app.register(keyRoutes, { keys: deps.keyRing });
  deps.metrics.install(app);
  await app.register(systemRoutes, {
    store: deps.store,
    provider: deps.provider,
    metrics: deps.metrics,
    version: deps.version,
  });
  await app.register(sandboxRoutes, {
    service: deps.service,
    limits,
    placement: deps.cluster.placement,
    snapshotNode: deps.snapshots
      ? (id, owner) => deps.snapshots?.nodeOf(id, owner) ?? Promise.resolve(undefined)
      : undefined,
  });
  if (deps.snapshots) {
    await app.register(snapshotRoutes, { snapshots: deps.snapshots, service: deps.service, limits });
  }
  await app.register(nodeRoutes, {
    store: deps.store,
    self: deps.cluster.self,
    cluster: deps.cluster.enabled,
  });
  await app.register(capacityRoutes, { store: deps.store, node: deps.cluster });
  if (deps.pool) await app.register(poolRoutes, { pool: deps.pool });
  await app.register(appControlRoutes, { service: deps.service, provider: deps.provider });
  await app.register(templateRoutes, { service: deps.service, provider: deps.provider });
  if (deps.io) {
    const io: IoRouteDeps = {
      ...deps.io,
      config: deps.config,
      service: deps.service,
      provider: deps.provider,
      store: deps.store,
    };
    await app.register(fileRoutes, io);
    await app.register(execRoutes, io);
    await app.register(processRoutes, io);
    await app.register(logRoutes, io);
    await app.register(eventRoutes, io);
  }
  await app.register(portRoutes, { service: deps.service });
  await app.register(networkRoutes, { service: deps.service });
  // The MCP endpoint for agents: its tools call this API as the caller (docs/mcp.md).
  await app.register(mcpRoutes, { api: app });
  if (deps.usage) await app.register(usageRoutes, { service: deps.service, usage: deps.usage });
  if (deps.webhooks) await app.register(webhookRoutes, { webhooks: deps.webhooks });
  await app.register(traefikRoutes, {
    config: deps.config,
    dynamicConfig: deps.traefikDynamicConfig,
    edge: deps.edge,
  });
  if (deps.edge) {
    await app.register(previewTokenRoutes, {
      service: deps.service,
      tokens: deps.edge.tokens,
      config: deps.config,
    });
    await app.register(accessLogRoutes, { service: deps.service, accessLog: deps.edge.accessLog });
  }
  return app;
}

/** Sockets handed over on 'upgrade' leave the HTTP server's books: shutdown must end them itself. */
function closeUpgradedSocketsOnShutdown(app: FastifyInstance): void {
  const upgraded = new Set<Duplex>();
  app.server.on('upgrade', (_req: unknown, socket: Duplex) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
  });
  app.addHook('preClose', async () => {
    for (const socket of upgraded) socket.destroy();
  });
}
