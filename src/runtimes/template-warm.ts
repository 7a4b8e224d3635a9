import type { SandboxProvider } from '../providers/provider.js';
import type { SandboxService } from '../sandboxes/service.js';
import { nodeTemplates, type TemplateName } from './templates.js';

export interface WarmResult {
  template: TemplateName;
  /** `cached`: it was already; `warmed`: installed now; `failed`: the install did not finish. */
  result: 'cached' | 'warmed' | 'failed';
  ms: number;
}

const warming = new WeakMap<SandboxService, Map<TemplateName, Promise<WarmResult>>>();

/**
 * Builds a Node template's dependency layer once for this host — the only way the template cache
 * is filled: previewd creates a throwaway sandbox from the bare template (no user files, no owner,
 * marked as a build in-process), lets it install with the host's download caches writable, copies
 * its node_modules into a new read-only layer (src/runtimes/template-cache.ts) and deletes it.
 * Python templates need nothing (their frameworks are in the image). One build per template at a
 * time: concurrent calls share it.
 */
export function warmTemplate(
  service: SandboxService,
  provider: SandboxProvider,
  template: TemplateName,
): Promise<WarmResult> {
  const perService = warming.get(service) ?? new Map<TemplateName, Promise<WarmResult>>();
  warming.set(service, perService);
  const pending = perService.get(template);
  if (pending) return pending;
  const work = warmOnce(service, provider, template).finally(() => perService.delete(template));
  perService.set(template, work);
  return work;
}

async function warmOnce(
  service: SandboxService,
  provider: SandboxProvider,
  template: TemplateName,
): Promise<WarmResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  if (!nodeTemplates.includes(template) || (await service.templates.fresh(template))) {
    return { template, result: 'cached', ms: ms() };
  }
  // Install only: the app is not started (its stamp is the install's, whatever the start). Never
  // paused, stopped by the idle reaper or picked to make room: it serves nothing, it is busy.
  const sandbox = await service.create(
    {
      template,
      labels: { 'previewd.template-warm': template },
      runtime: { start: 'exec sleep infinity' },
      idlePolicy: 'always_on',
    },
    { build: template },
  );
  try {
    await service.templates.buildWhenInstalled(template, sandbox.id, provider);
  } finally {
    await service.delete(sandbox.id).catch(() => undefined);
    service.templates.unmarkBuild(sandbox.id);
  }
  return { template, result: (await service.templates.fresh(template)) ? 'warmed' : 'failed', ms: ms() };
}

/**
 * The build a create from a cold template asks for: once that sandbox's own install is over (or
 * it is gone), so the two installs do not share the CPU; a build already under way is joined.
 */
export async function warmAfterInstall(
  service: SandboxService,
  provider: SandboxProvider,
  template: TemplateName,
  sandboxId: string,
  timeoutMs = 15 * 60_000,
): Promise<WarmResult> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && provider.appStatus) {
    const status = await provider.appStatus(sandboxId).catch(() => undefined);
    if (status && status.state !== 'installing') break;
    const row = await service.get(sandboxId).catch(() => undefined);
    if (!row || row.state === 'deleted' || row.state === 'error' || row.state === 'stopped') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return warmTemplate(service, provider, template);
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
