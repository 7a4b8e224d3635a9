import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import type { CreateSandboxInput, RuntimePlan } from '../domain/schemas.js';

/**
 * The effective runtime plan of a new sandbox. Detection from files comes with the runtimes
 * work; until then the user's overrides are the plan and `start` runs as given.
 */
export function planFromInput(input: CreateSandboxInput, config: Pick<Config, 'images'>): RuntimePlan {
  if (input.template !== undefined) {
    throw new PreviewdError('invalid_request', `unknown template "${input.template}"`, {
      hint: 'This server has no templates yet; pass files and runtime.start instead.',
    });
  }
  const overrides = input.runtime ?? {};
  const plan: RuntimePlan = {
    image: input.image ?? overrides.image ?? config.images.node,
    env: overrides.env ?? {},
    source: input.runtime ? 'overrides' : 'none',
  };
  if (overrides.install !== undefined) plan.install = overrides.install;
  if (overrides.start !== undefined) plan.start = overrides.start;
  if (overrides.port !== undefined) plan.port = overrides.port;
  return plan;
}

/** The container's main process for a plan: install (if any), then the start command, through sh. */
export function commandFor(plan: RuntimePlan): string[] | undefined {
  if (!plan.start) return undefined;
  // `exec` lets the start command replace the shell, so it gets the stop signal directly.
  const start = /^\s*exec\s/.test(plan.start) ? plan.start : `exec ${plan.start}`;
  const script = plan.install ? `${plan.install} && ${start}` : start;
  return ['sh', '-c', script];
}
