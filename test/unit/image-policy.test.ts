import { describe, expect, it } from 'vitest';
import { ImagePolicy, normalizeImage } from '../../src/sandboxes/image-policy.js';

describe('ImagePolicy', () => {
  const policy = new ImagePolicy({
    node: 'previewd/runtime-node:22',
    python: 'previewd/runtime-python:3',
    allowed: ['busybox', 'ghcr.io/acme/*', 'node:2?-slim', 'registry.example:5000/team/app:1'],
  });

  it.each([
    ['previewd/runtime-node:22', true],
    ['previewd/runtime-python:3', true],
    ['previewd/runtime-node:23', false],
    ['busybox', true],
    ['busybox:latest', true],
    ['busybox:1.36', false],
    ['ghcr.io/acme/app', true],
    ['ghcr.io/acme/app:2', true],
    ['ghcr.io/acme/team/app', false],
    ['ghcr.io/acmex/app', false],
    ['node:22-slim', true],
    ['node:22', false],
    ['registry.example:5000/team/app:1', true],
    ['registry.example:5000/team/app', false],
    ['alpine', false],
  ])('%s → %s', (image, allowed) => {
    expect(policy.allows(image)).toBe(allowed);
  });

  it('names the field and the image in image_not_allowed', () => {
    expect(() => policy.check('alpine:3', 'runtime.image')).toThrowError(
      expect.objectContaining({
        code: 'image_not_allowed',
        details: { field: 'runtime.image', image: 'alpine:3' },
      }),
    );
    expect(() => policy.check(undefined, 'image')).not.toThrow();
  });

  it.each([
    ['node', 'node:latest'],
    ['node:22', 'node:22'],
    ['registry.example:5000/app', 'registry.example:5000/app:latest'],
    ['app@sha256:abc', 'app@sha256:abc'],
  ])('normalizes %s to %s', (ref, want) => {
    expect(normalizeImage(ref)).toBe(want);
  });
});
