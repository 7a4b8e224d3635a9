import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

function cwd(yaml?: string): string {
  const d = mkdtempSync(join(tmpdir(), 'previewd-config-'));
  if (yaml !== undefined) writeFileSync(join(d, 'previewd.yaml'), yaml);
  return d;
}

describe('dependencyCache configuration', () => {
  it('is on by default', () => {
    expect(loadConfig({ env: {}, cwd: cwd() }).config.dependencyCache).toBe(true);
  });

  it.each([
    ['false', false],
    ['0', false],
    ['off', false],
    ['true', true],
    ['yes', true],
  ])('PREVIEWD_DEPENDENCY_CACHE=%s → %s', (raw, value) => {
    const { config } = loadConfig({ env: { PREVIEWD_DEPENDENCY_CACHE: raw }, cwd: cwd() });
    expect(config.dependencyCache).toBe(value);
  });

  it('reads the file key, and names the key of a bad value', () => {
    expect(loadConfig({ env: {}, cwd: cwd('dependencyCache: false\n') }).config.dependencyCache).toBe(false);
    expect(() => loadConfig({ env: { PREVIEWD_DEPENDENCY_CACHE: 'maybe' }, cwd: cwd() })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ env: { PREVIEWD_DEPENDENCY_CACHE: 'maybe' }, cwd: cwd() })).toThrow(
      /dependencyCache/,
    );
  });
});
