import { type Command, InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { createLogger } from '../../config/logger.js';
import { templateNameSchema } from '../../domain/schemas.js';
import type { TemplateName } from '../../runtimes/templates.js';

function parseNames(value: string, previous: TemplateName[] = []): TemplateName[] {
  const parsed = templateNameSchema.safeParse(value);
  if (!parsed.success) {
    throw new InvalidArgumentError(`unknown template "${value}" (${templateNameSchema.options.join(', ')})`);
  }
  return [...previous, parsed.data];
}

/**
 * `previewd templates list|warm`: the templates, and their dependencies installed once per host
 * (runs in-process against the data directory, like `serve`; a running server sees the cache).
 */
export function registerTemplatesCommand(program: Command, load: () => LoadedConfig): void {
  const templates = program
    .command('templates')
    .description('List templates and pre-install their dependencies');

  templates
    .command('list')
    .description('The templates, and whether their dependencies are cached on this host')
    .option('--json', 'print JSON', false)
    .action(async (opts: { json: boolean }) => {
      const { config } = load();
      const { TemplateCache } = await import('../../runtimes/template-cache.js');
      const { nodeTemplates, templateNames } = await import('../../runtimes/templates.js');
      const cache = new TemplateCache({ config, log: createLogger({ ...config, logLevel: 'silent' }) });
      const rows = [];
      for (const name of templateNames) {
        const npm = nodeTemplates.includes(name);
        rows.push({ name, dependencies: npm ? 'npm' : 'image', warm: npm ? await cache.fresh(name) : true });
      }
      if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else
        for (const r of rows)
          process.stdout.write(`${r.name}\t${r.dependencies}\t${r.warm ? 'warm' : 'cold'}\n`);
    });

  templates
    .command('warm')
    .argument('[templates...]', 'templates to warm (default: every npm template)')
    .description(
      "Install the npm templates' dependencies once for this host, so creating from them installs nothing",
    )
    .option('--json', 'print JSON', false)
    .action(async (names: string[], opts: { json: boolean }) => {
      const chosen = names.reduce<TemplateName[]>((acc, n) => parseNames(n, acc), []);
      const { config } = load();
      const log = createLogger(config);
      const { createPreviewd } = await import('../../app.js');
      const { warmTemplates } = await import('../../runtimes/template-warm.js');
      const { nodeTemplates } = await import('../../runtimes/templates.js');
      const app = await createPreviewd(config, log);
      try {
        await app.provider.health();
        const results = await warmTemplates(
          app.service,
          app.provider,
          chosen.length > 0 ? chosen : nodeTemplates,
        );
        if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
        else
          for (const r of results)
            process.stdout.write(`${r.template}\t${r.result}\t${(r.ms / 1000).toFixed(1)} s\n`);
        if (results.some((r) => r.result === 'failed')) process.exitCode = 1;
      } finally {
        await app.service.idle();
        await app.store.close();
      }
    });
}
