import type { z } from 'zod';
import type { Config } from '../config/schema.js';
import { isPreviewdError } from '../domain/errors.js';
import type { CreateSandboxInput, RuntimePlan, runtimeOverridesSchema } from '../domain/schemas.js';
import { detect, type RuntimeImages } from './detect.js';
import { fileTreeFromFiles } from './file-tree.js';

export type RuntimeOverrides = z.infer<typeof runtimeOverridesSchema>;

/** Picks the image a start command needs when the user overrides `start` but not the image. */
export function imageForCommand(command: string, images: RuntimeImages): string | undefined {
  const node = /(?:^|[\s;&|(])(?:node|npm|npx|pnpm|yarn|corepack|vite|next)(?:\s|$)/.test(command);
  const python = /(?:^|[\s;&|(])(?:python3?|pip3?|uvicorn|gunicorn|flask)(?:\s|$)/.test(command);
  if (node === python) return undefined;
  return node ? images.node : images.python;
}

/**
 * Applies the user's overrides to a plan, field by field: image, install, start and port replace
 * the detected ones (an empty install or start removes it); env entries are merged, the user's
 * winning. `source` says where the start command came from.
 */
export function applyOverrides(
  detected: RuntimePlan | undefined,
  overrides: RuntimeOverrides,
  images: RuntimeImages,
): RuntimePlan {
  const plan: RuntimePlan = detected
    ? { ...detected, env: { ...detected.env } }
    : { image: images.node, env: {}, source: 'none' };
  if (overrides.install !== undefined) {
    if (overrides.install.trim() === '') delete plan.install;
    else plan.install = overrides.install;
  }
  if (overrides.start !== undefined) {
    if (overrides.start.trim() === '') delete plan.start;
    else plan.start = overrides.start;
    plan.image = imageForCommand(overrides.start, images) ?? plan.image;
    plan.source = 'overrides';
  }
  if (overrides.image !== undefined) plan.image = overrides.image;
  if (overrides.port !== undefined) plan.port = overrides.port;
  if (overrides.env) Object.assign(plan.env, overrides.env);
  if (!detected && Object.keys(overrides).length > 0) plan.source = 'overrides';
  return plan;
}

/**
 * The effective runtime plan of a new sandbox: detection over the request's files, then the
 * user's overrides. With `runtime.start` given, detection only fills missing fields and never
 * fails; without files the plan is the overrides (no start: the container idles). `files` is the
 * text of what the workspace holds (src/sources/write-sources.ts: binary and archive files too).
 */
export function planFromInput(
  input: Omit<CreateSandboxInput, 'files'> & { files?: Readonly<Record<string, string>> },
  config: Pick<Config, 'images'>,
): RuntimePlan {
  const overrides = input.runtime ?? {};
  let detected: RuntimePlan | undefined;
  if (input.files && Object.keys(input.files).length > 0) {
    try {
      detected = detect(fileTreeFromFiles(input.files), config.images);
    } catch (err) {
      if (overrides.start === undefined || !isPreviewdError(err)) throw err;
    }
  }
  const plan = applyOverrides(detected, overrides, config.images);
  // `files` holds the template's files too (the service merges them): detection ran over both.
  if (input.template !== undefined && plan.source === 'detected') plan.source = 'template';
  if (input.image !== undefined) plan.image = input.image;
  return plan;
}

/** A start command as sh runs it: a simple command gets `exec`, so it receives signals directly. */
function startScript(start: string): string {
  // A script (`;`, `&&`, pipes, several lines…) runs as written.
  const simple = !/[;&|\n()`]/.test(start) && !/^\s*exec\s/.test(start);
  return simple ? `exec ${start}` : start;
}

/** The container's main process for a plan: install (if any), then the start command, through sh. */
export function commandFor(plan: RuntimePlan): string[] | undefined {
  if (!plan.start) return undefined;
  const start = startScript(plan.start);
  const script = plan.install ? `${plan.install} && ${start}` : start;
  return ['sh', '-c', script];
}

/**
 * What the app supervisor (runtime/supervisor.sh) runs for a plan: the install (skipped while the
 * lockfiles are unchanged) and the start command, restarted up to `maxRestarts` times after a crash.
 */
export function superviseFor(
  plan: RuntimePlan,
  maxRestarts: number,
): { install?: string; start: string; maxRestarts: number } | undefined {
  if (!plan.start) return undefined;
  return { ...(plan.install ? { install: plan.install } : {}), start: startScript(plan.start), maxRestarts };
}
