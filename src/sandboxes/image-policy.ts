import picomatch from 'picomatch';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';

/**
 * Which images a client may name (create's `image` and `runtime.image`): the runtime images
 * (`images.node`, `images.python`) and the entries of `images.allowed` — exact references, or
 * picomatch patterns such as `ghcr.io/acme/*` or `node:*` (`*` stays within a path segment).
 * A reference without a tag means `:latest`, as for the engine, on both sides of an exact match.
 */
export class ImagePolicy {
  private readonly exact = new Set<string>();
  private readonly patterns: ((image: string) => boolean)[] = [];

  constructor(images: Pick<Config['images'], 'node' | 'python'> & { allowed?: string[] }) {
    this.exact.add(normalizeImage(images.node));
    this.exact.add(normalizeImage(images.python));
    for (const entry of images.allowed ?? []) {
      if (isPattern(entry)) this.patterns.push(picomatch(entry, { noextglob: true, nonegate: true }));
      else this.exact.add(normalizeImage(entry));
    }
  }

  allows(image: string): boolean {
    if (this.exact.has(normalizeImage(image))) return true;
    return this.patterns.some((match) => match(image) || match(normalizeImage(image)));
  }

  /** Throws image_not_allowed naming the field when the image is not one a client may use. */
  check(image: string | undefined, field: string): void {
    if (image === undefined || this.allows(image)) return;
    throw new PreviewdError('image_not_allowed', `${field} "${image}" is not an image this host allows`, {
      details: { field, image },
    });
  }
}

function isPattern(entry: string): boolean {
  return /[*?[\]{}]/.test(entry);
}

/** `node` → `node:latest`; a tag or digest is kept as it is. */
export function normalizeImage(ref: string): string {
  const name = ref.trim();
  if (name.includes('@')) return name;
  const lastSlash = name.lastIndexOf('/');
  return name.slice(lastSlash + 1).includes(':') ? name : `${name}:latest`;
}
