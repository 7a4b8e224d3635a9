import type { SandboxProvider } from '../providers/provider.js';
import type { SandboxService } from '../sandboxes/service.js';
import { nodeTemplates, type TemplateName } from './templates.js';

export interface WarmResult {
  template: TemplateName;
  /** `cached`: it was already; `warmed`: installed now; `failed`: the install did not finish. */
  result: 'cached' | 'warmed' | 'failed';
  ms: number;
}

/**
 * Installs a Node template's dependencies once for this host: a throwaway sandbox from the
 * template installs them, its node_modules goes to the cache (src/runtimes/template-cache.ts),
 * the sandbox is deleted. Python templates need nothing (their frameworks are in the image).
 */
export async function warmTemplate(
  service: SandboxService,
  provider: SandboxProvider,
  template: TemplateName,
): Promise<WarmResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  if (!nodeTemplates.includes(template) || (await service.templates.fresh(template))) {
    return { template, result: 'cached', ms: ms() };
  }
  const sandbox = await service.create({ template, labels: { 'previewd.template-warm': template } });
  try {
    await service.templates.harvestWhenInstalled(template, sandbox.id, provider);
  } finally {
    await service.delete(sandbox.id).catch(() => undefined);
  }
  return { template, result: (await service.templates.fresh(template)) ? 'warmed' : 'failed', ms: ms() };
}

/** Warms several templates one after the other (installs are CPU- and network-heavy). */
export async function warmTemplates(
  service: SandboxService,
  provider: SandboxProvider,
  templates: readonly TemplateName[] = nodeTemplates,
): Promise<WarmResult[]> {
  const results: WarmResult[] = [];
  for (const template of templates) results.push(await warmTemplate(service, provider, template));
  return results;
}
