import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import type { IsolationLevel } from '../domain/isolation.js';
import type { CreateSandboxInput } from '../domain/schemas.js';
import type { SandboxProvider } from '../providers/provider.js';
import { ImagePolicy } from './image-policy.js';

const policies = new WeakMap<object, ImagePolicy>();

function imagePolicy(images: Config['images']): ImagePolicy {
  let policy = policies.get(images);
  if (!policy) {
    policy = new ImagePolicy(images);
    policies.set(images, policy);
  }
  return policy;
}

/**
 * What a create asks of the host, checked before anything is made (no id, workspace or row yet):
 * every image the client names is a runtime image or in `images.allowed` (image_not_allowed), and
 * the isolation level (the request's, else `isolation.default`) is one the engine offers
 * (isolation_unavailable). Returns the sandbox's isolation level.
 */
export async function checkCreate(
  input: Pick<CreateSandboxInput, 'image' | 'runtime' | 'isolation'>,
  config: Pick<Config, 'images'> & { isolation?: Config['isolation'] },
  provider: Pick<SandboxProvider, 'isolationLevels'>,
): Promise<IsolationLevel> {
  const images = imagePolicy(config.images);
  images.check(input.image, 'image');
  images.check(input.runtime?.image, 'runtime.image');
  const isolation = input.isolation ?? config.isolation?.default ?? 'container';
  if (isolation !== 'container') {
    const levels = (await provider.isolationLevels?.()) ?? ['container'];
    if (!levels.includes(isolation)) {
      const runtime = config.isolation?.gvisorRuntime ?? 'runsc';
      throw new PreviewdError(
        'isolation_unavailable',
        `isolation "${isolation}" is not available on this host: the engine does not list the runtime "${runtime}"`,
        { details: { isolation, runtime, available: levels } },
      );
    }
  }
  return isolation;
}
