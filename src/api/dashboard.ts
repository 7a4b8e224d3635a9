import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { publicRoutes } from './auth.js';

/** Where set-up builds the dashboard (`vite build` of `dashboard/`): the same from src/ and dist/. */
export const dashboardDist = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url));

/** Paths the API owns; everything else on the API address belongs to the dashboard. */
const apiPaths = /^\/(v1(\/|$)|openapi\.json$|metrics$|healthz$|readyz$)/;

/**
 * The dashboard's pages may run only their own scripts and talk only to this origin; previews
 * (other origins) are framed, the dashboard itself never is.
 */
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  'frame-src http: https:',
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

/**
 * The dashboard's own page paths (history routing, dashboard/src/router.ts): the list at `/`, a
 * sandbox at `/sandboxes/<id>` and the snapshots at `/snapshots`. Only these get index.html; any
 * other unknown path is a 404, so a misspelt API path never answers 200 with a page.
 */
const PAGE_PATH = /^\/(sandboxes\/[0-9a-z]{26}\/?|snapshots\/?)?$/;

function wantsPage(request: FastifyRequest): boolean {
  const path = request.url.split('?', 1)[0] ?? '/';
  return (request.method === 'GET' || request.method === 'HEAD') && PAGE_PATH.test(path);
}

const notBuiltPage = `<!doctype html><meta charset="utf-8"><title>previewd</title>
<body style="font:16px system-ui;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>The dashboard is not built</h1>
<p>Run <code>make setup</code> (or <code>npx vite build --config dashboard/vite.config.ts</code>) and reload.
The API is served here under <code>/v1</code> all the same.</p>`;

/**
 * Serves the dashboard at / (history routing: any page path gets index.html), with strict
 * security headers. `onMissing` answers paths that are neither API routes nor dashboard files.
 */
export async function installDashboard(
  app: FastifyInstance,
  onMissing: (request: FastifyRequest, reply: FastifyReply) => void,
  root = dashboardDist,
): Promise<void> {
  const built = existsSync(`${root}/index.html`);
  app.addHook('onSend', async (request, reply, payload) => {
    if (apiPaths.test(request.url.split('?', 1)[0] ?? '/')) return payload;
    reply.header('content-security-policy', contentSecurityPolicy);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    return payload;
  });
  if (built) {
    // The dashboard's own files are public (the page signs in itself); its scope marks them so.
    await app.register(async (scope) => {
      publicRoutes(scope);
      await scope.register(fastifyStatic, {
        root,
        prefix: '/',
        index: false,
        wildcard: true,
        decorateReply: false,
        // Hashed asset names: cache them for good; index.html always revalidates.
        setHeaders: (res, path) => {
          res.header(
            'cache-control',
            path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
          );
        },
      });
    });
  }
  const indexHtml = built ? readFileSync(`${root}/index.html`) : undefined;
  const page = (_request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-cache');
    if (!indexHtml) return reply.status(503).type('text/html; charset=utf-8').send(notBuiltPage);
    return reply.type('text/html; charset=utf-8').send(indexHtml);
  };
  app.get('/', { config: { access: 'public' }, schema: { hide: true } }, page);
  app.setNotFoundHandler((request, reply) =>
    wantsPage(request) ? page(request, reply) : onMissing(request, reply),
  );
}
