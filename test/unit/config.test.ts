import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

function dir(yaml?: string): string {
  const d = mkdtempSync(join(tmpdir(), 'previewd-config-'));
  if (yaml !== undefined) writeFileSync(join(d, 'previewd.yaml'), yaml);
  return d;
}

describe('configuration', () => {
  it('has the documented defaults', () => {
    const cwd = dir();
    const { config, warnings } = loadConfig({ env: {}, cwd });
    expect(config.dataDir).toBe(join(cwd, 'data'));
    expect(config.apiAddr).toBe('127.0.0.1:7070');
    expect(config.edgeAddr).toBe('0.0.0.0:8080');
    expect(config.previewDomain).toBe('preview.localhost');
    expect(config.apiKeys).toEqual([]);
    expect(config.images.node).toBe('previewd/runtime-node:22');
    expect(config.images.python).toBe('previewd/runtime-python:3');
    expect(warnings).toEqual([]);
  });

  it('reads the file and lets PREVIEWD_* variables override it', () => {
    const cwd = dir('apiAddr: 127.0.0.1:9000\npreviewDomain: example.test\nimages:\n  node: my/node:1\n');
    const { config } = loadConfig({
      env: {
        PREVIEWD_PREVIEW_DOMAIN: 'preview.example.com',
        PREVIEWD_API_KEYS: 'k1-0123456789abcdef, k2-0123456789abcdef',
      },
      cwd,
    });
    expect(config.apiAddr).toBe('127.0.0.1:9000');
    expect(config.previewDomain).toBe('preview.example.com');
    expect(config.images.node).toBe('my/node:1');
    expect(config.apiKeys).toEqual(['k1-0123456789abcdef', 'k2-0123456789abcdef']);
  });

  it('stops on an unknown key in the file, naming it', () => {
    const cwd = dir('apiAdr: 127.0.0.1:9000\n');
    expect(() => loadConfig({ env: {}, cwd })).toThrowError(ConfigError);
    expect(() => loadConfig({ env: {}, cwd })).toThrowError(/unknown key "apiAdr"/);
  });

  it('stops on an unknown nested key, naming its path', () => {
    const cwd = dir('images:\n  nodee: x\n');
    expect(() => loadConfig({ env: {}, cwd })).toThrowError(/"images.nodee"/);
  });

  it('stops on a bad value, naming the variable it came from', () => {
    const cwd = dir();
    expect(() => loadConfig({ env: { PREVIEWD_API_ADDR: 'nonsense' }, cwd })).toThrowError(
      /apiAddr \(PREVIEWD_API_ADDR\)/,
    );
    expect(() => loadConfig({ env: { PREVIEWD_MAX_BODY_MB: 'lots' }, cwd })).toThrowError(
      /maxBodyMb \(PREVIEWD_MAX_BODY_MB\)/,
    );
  });

  it('stops on a bad value in the file, naming the file', () => {
    const cwd = dir('previewDomain: Not_A_Domain\n');
    expect(() => loadConfig({ env: {}, cwd })).toThrowError(/previewDomain \(.*previewd\.yaml\)/);
  });

  it('warns about an unknown PREVIEWD_* variable and goes on', () => {
    const cwd = dir();
    const { warnings } = loadConfig({ env: { PREVIEWD_NOT_A_THING: '1', PREVIEWD_URL: 'http://x' }, cwd });
    expect(warnings).toEqual(['unknown environment variable PREVIEWD_NOT_A_THING is ignored']);
  });

  it('refuses a file that is not YAML', () => {
    const cwd = dir('a: [1, 2\n');
    expect(() => loadConfig({ env: {}, cwd })).toThrowError(/not valid YAML/);
  });
});
