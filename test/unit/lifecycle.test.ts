import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKeyEntries } from '../../src/config/api-keys.js';
import { loadConfig } from '../../src/config/load.js';
import type { SandboxRecord } from '../../src/domain/sandbox.js';
import { idleAction } from '../../src/sandboxes/idle-reaper.js';
import { SandboxUsage } from '../../src/sandboxes/usage.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (sec: number) => new Date(NOW - sec * 1000).toISOString();

function record(over: Partial<SandboxRecord>): SandboxRecord {
  return {
    id: 'sb',
    state: 'running',
    pauseAfterSec: 120,
    idleTimeoutSec: 900,
    lastActivityAt: ago(0),
    ...over,
  } as SandboxRecord;
}

function usage(opts: { busy?: boolean; seenAgoSec?: number; processRunning?: boolean } = {}) {
  return new SandboxUsage(
    {
      lastSeen: () => (opts.seenAgoSec === undefined ? undefined : NOW - opts.seenAgoSec * 1000),
      busy: () => opts.busy ?? false,
    },
    { list: () => (opts.processRunning ? [{ running: true }] : [{ running: false }]) },
  );
}

describe('idleAction: which tier idleness asks for', () => {
  const cases: [
    string,
    Partial<SandboxRecord>,
    Parameters<typeof usage>[0],
    ReturnType<typeof idleAction>,
  ][] = [
    ['active just now', {}, {}, undefined],
    ['idle past pauseAfterSec', { lastActivityAt: ago(130) }, {}, 'pause'],
    ['idle past idleTimeoutSec', { lastActivityAt: ago(901) }, {}, 'stop'],
    ['paused, idle past pauseAfterSec only', { state: 'paused', lastActivityAt: ago(300) }, {}, undefined],
    ['paused, idle past idleTimeoutSec', { state: 'paused', lastActivityAt: ago(901) }, {}, 'stop'],
    [
      'stored activity old, but seen in memory a moment ago',
      { lastActivityAt: ago(1000) },
      { seenAgoSec: 2 },
      undefined,
    ],
    ['always_on', { lastActivityAt: ago(5000), idlePolicy: 'always_on' }, {}, undefined],
    [
      'kept awake',
      { lastActivityAt: ago(5000), keepAliveUntil: new Date(NOW + 60_000).toISOString() },
      {},
      undefined,
    ],
    ['keepalive over', { lastActivityAt: ago(5000), keepAliveUntil: ago(1) }, {}, 'stop'],
    ['open WebSocket or exec in flight', { lastActivityAt: ago(5000) }, { busy: true }, undefined],
    ['background process running', { lastActivityAt: ago(5000) }, { processRunning: true }, undefined],
    ['pause tier off (0)', { lastActivityAt: ago(300), pauseAfterSec: 0 }, {}, undefined],
    ['stop tier off (0)', { lastActivityAt: ago(100_000), idleTimeoutSec: 0 }, {}, 'pause'],
    ['pause not before stop', { lastActivityAt: ago(70), pauseAfterSec: 60, idleTimeoutSec: 60 }, {}, 'stop'],
    ['stopped sandboxes are left alone', { state: 'stopped', lastActivityAt: ago(5000) }, {}, undefined],
  ];
  for (const [name, over, signals, expected] of cases) {
    it(name, () => expect(idleAction(record(over), usage(signals), NOW)).toBe(expected));
  }
  it('stops instead of pausing where a paused container cannot be woken (Traefik mode)', () => {
    expect(idleAction(record({ lastActivityAt: ago(130) }), usage({}), NOW, false)).toBe('stop');
    expect(idleAction(record({ lastActivityAt: ago(10) }), usage({}), NOW, false)).toBeUndefined();
    expect(idleAction(record({ state: 'paused', lastActivityAt: ago(300) }), usage({}), NOW, false)).toBe(
      undefined,
    );
  });
});

describe('API keys with owners', () => {
  it('splits key:owner into a tenant key, keeps plain keys ownerless (admin)', () => {
    expect(parseKeyEntries(['plain-key-0123456789', 'team-key-0123456789:alice'])).toEqual([
      { key: 'plain-key-0123456789' },
      { key: 'team-key-0123456789', owner: 'alice' },
    ]);
  });
});

describe('lifecycle configuration', () => {
  it('has the documented defaults and reads the PREVIEWD_* variables', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'previewd-lifecycle-config-'));
    const { config } = loadConfig({ env: {}, cwd });
    expect(config.defaults).toEqual({ idleTimeoutSec: 900, pauseAfterSec: 120 });
    expect(config.lifecycle.idleReapIntervalSec).toBe(10);
    expect(config.admission.maxRunning).toBe(200);
    const env = loadConfig({
      env: {
        PREVIEWD_IDLE_REAP_INTERVAL_SEC: '0.5',
        PREVIEWD_MAX_RUNNING: '3',
        PREVIEWD_MEMORY_BUDGET_MB: '2048',
        PREVIEWD_MIN_ACTIVE_SEC: '30',
        PREVIEWD_QUOTA_MAX_RUNNING: '2',
        PREVIEWD_WEBSOCKETS_KEEP_AWAKE: 'false',
      },
      cwd,
    }).config;
    expect(env.lifecycle.idleReapIntervalSec).toBe(0.5);
    expect(env.lifecycle.websocketsKeepAwake).toBe(false);
    expect(env.admission).toMatchObject({ maxRunning: 3, memoryBudgetMb: 2048, minActiveSec: 30 });
    expect(env.quotas.maxRunningPerOwner).toBe(2);
  });
});
