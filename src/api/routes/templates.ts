import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, templateNameSchema } from '../../domain/schemas.js';
import type { SandboxProvider } from '../../providers/provider.js';
import { warmTemplate } from '../../runtimes/template-warm.js';
import { nodeTemplates, templateNames } from '../../runtimes/templates.js';
import type { SandboxService } from '../../sandboxes/service.js';

const templateSchema = z
  .object({
    name: templateNameSchema,
    dependencies: z
      .enum(['npm', 'image'])
      .describe('npm: installed (and cached per host); image: in the runtime image'),
    warm: z.boolean().describe('Its dependencies are cached on this host: creating from it installs nothing'),
  })
  .meta({ id: 'Template' });

/** The templates (`template` in a create request) and their per-host dependency cache. */
export const templateRoutes: FastifyPluginAsyncZod<{
  service: SandboxService;
  provider: SandboxProvider;
}> = async (app, { service, provider }) => {
  const describe = async (name: (typeof templateNames)[number]) => {
    const npm = nodeTemplates.includes(name);
    return {
      name,
      dependencies: npm ? ('npm' as const) : ('image' as const),
      warm: npm ? await service.templates.fresh(name) : true,
    };
  };

  app.get(
    '/v1/templates',
    {
      schema: {
        tags: ['templates'],
        summary: 'List the templates',
        response: { 200: z.object({ templates: z.array(templateSchema) }), 401: errorBodySchema },
      },
    },
    async () => ({ templates: await Promise.all(templateNames.map(describe)) }),
  );

  app.post(
    '/v1/templates/:name/warm',
    {
      // Warming fills the host's shared template cache: the operator's business.
      config: { access: 'admin' },
      schema: {
        tags: ['templates'],
        summary: "Install a template's dependencies once for this host",
        description:
          'A throwaway sandbox installs them; its node_modules is cached, so sandboxes created from the template install nothing. Answers when done (minutes for next).',
        params: z.object({ name: templateNameSchema }),
        response: {
          200: z.object({
            template: templateNameSchema,
            result: z.enum(['cached', 'warmed', 'failed']),
            ms: z.number(),
          }),
          400: errorBodySchema,
          401: errorBodySchema,
        },
      },
    },
    async (request) => warmTemplate(service, provider, request.params.name),
  );
};
