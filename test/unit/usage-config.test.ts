import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const cwd = () => mkdtempSync(join(tmpdir(), 'previewd-usage-config-'));

describe('usage configuration', () => {
  it('samples every 10 s, keeps an hour, no per-sandbox Prometheus series by default', () => {
    expect(loadConfig({ env: {}, cwd: cwd() }).config.usage).toEqual({
      enabled: true,
      intervalSec: 10,
      retentionSec: 3600,
      prometheusMaxSandboxes: 0,
    });
  });

  it('reads PREVIEWD_USAGE_* variables', () => {
    const { config, warnings } = loadConfig({
      cwd: cwd(),
      env: {
        PREVIEWD_USAGE: 'false',
        PREVIEWD_USAGE_INTERVAL_SEC: '5',
        PREVIEWD_USAGE_RETENTION_SEC: '600',
        PREVIEWD_USAGE_PROMETHEUS_MAX_SANDBOXES: '25',
      },
    });
    expect(warnings).toEqual([]);
    expect(config.usage).toEqual({
      enabled: false,
      intervalSec: 5,
      retentionSec: 600,
      prometheusMaxSandboxes: 25,
    });
  });

  it.each([
    [{ 'usage.intervalSec': 0 }, 'usage.intervalSec'],
    [{ 'usage.intervalSec': 20, 'usage.retentionSec': 10 }, 'usage.retentionSec'],
    [{ 'usage.intervalSec': 0.2, 'usage.retentionSec': 86_400 }, 'usage.retentionSec'],
    [{ 'usage.prometheusMaxSandboxes': -1 }, 'usage.prometheusMaxSandboxes'],
    [{ 'usage.prometheusMaxSandboxes': 1.5 }, 'usage.prometheusMaxSandboxes'],
  ])('refuses %j, naming %s', (overrides, key) => {
    expect(() => loadConfig({ env: {}, cwd: cwd(), overrides })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, cwd: cwd(), overrides })).toThrow(key);
  });
});
