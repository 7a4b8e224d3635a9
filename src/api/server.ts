import fastifyCookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Edge } from '../edge/edge-server.js';
import { answerClientError } from '../http/client-errors.js';
import type { SandboxProvider } from '../providers/provider.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { Store } from '../store/store.js';
import type { DynamicConfigSource } from '../traefik/dynamic-config-source.js';
import { ApiAuth, installAuth } from './auth.js';
import { installBodyLimits } from './body-limits.js';
import { installDashboard } from './dashboard.js';
import { answerFrameworkError, answerNotFound, installErrorHandling } from './error-handler.js';
import type { Metrics } from './metrics.js';
import { accessLogRoutes } from './routes/access-log.js';
import { appControlRoutes } from './routes/app-control.js';
import { eventRoutes } from './routes/events.js';
import { execRoutes } from './routes/exec.js';
import { fileRoutes } from './routes/files.js';
import type { IoRouteDeps } from './routes/io-context.js';
import { logRoutes } from './routes/logs.js';
import { portRoutes } from './routes/ports.js';
import { previewTokenRoutes } from './routes/preview-tokens.js';
import { processRoutes } from './routes/processes.js';
import { sandboxRoutes } from './routes/sandboxes.js';
import { sessionRoutes } from './routes/session.js';
import { systemRoutes } from './routes/system.js';
import { templateRoutes } from './routes/templates.js';
import { traefikRoutes } from './routes/traefik.js';
import { DashboardSessions, loadSessionSecret } from './session.js';

export interface ApiDeps {
  config: Config;
  keys: readonly string[];
  /** Owner of each API key that names one (`key:owner`), for per-owner quotas. */
  keyOwners?: ReadonlyMap<string, string>;
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
  /** Sandbox I/O (files, exec, processes, logs, events); the routes are left out without it. */
  io?: Pick<IoRouteDeps, 'bus' | 'processes' | 'activity'>;
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
  await app.register(fastifyCookie);
  const sessions = dashboard
    ? new DashboardSessions(
        loadSessionSecret(deps.config.dataDir),
        deps.keys,
        deps.config.dashboard.sessionTtlSec,
      )
    : undefined;
  const auth = new ApiAuth(deps.keys, sessions);
  installAuth(app, auth);
  if (sessions) {
    await app.register(sessionRoutes, { keys: deps.keys, owners: deps.keyOwners, sessions });
    await installDashboard(app, answerNotFound);
  }
  deps.metrics.install(app);
  await app.register(systemRoutes, {
    store: deps.store,
    provider: deps.provider,
    metrics: deps.metrics,
    version: deps.version,
  });
  await app.register(sandboxRoutes, { service: deps.service, owners: deps.keyOwners });
  await app.register(appControlRoutes, { service: deps.service, provider: deps.provider });
  await app.register(templateRoutes, { service: deps.service, provider: deps.provider });
  if (deps.io) {
    const io: IoRouteDeps = {
      ...deps.io,
      config: deps.config,
      service: deps.service,
      provider: deps.provider,
      store: deps.store,
      auth,
    };
    await app.register(fileRoutes, io);
    await app.register(execRoutes, io);
    await app.register(processRoutes, io);
    await app.register(logRoutes, io);
    await app.register(eventRoutes, io);
  }
  await app.register(portRoutes, { service: deps.service });
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
