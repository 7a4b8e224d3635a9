import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const cwd = '/nonexistent-previewd-config-dir';

describe('Traefik mode configuration', () => {
  it('defaults to the built-in edge, with Traefik defaults ready', () => {
    const { config } = loadConfig({ env: {}, cwd });
    expect(config.edgeMode).toBe('builtin');
    expect(config.traefik).toEqual({
      entrypoints: ['web'],
      tlsEntrypoints: ['websecure'],
      tls: false,
      routerTemplate: '{id}-{port}',
      forwardAuthUrl: 'http://127.0.0.1:7070/v1/traefik/forward-auth',
      wakeUrl: 'http://127.0.0.1:8080',
    });
  });

  it('reads PREVIEWD_EDGE_MODE and PREVIEWD_TRAEFIK_* variables', () => {
    const { config, warnings } = loadConfig({
      cwd,
      env: {
        PREVIEWD_EDGE_MODE: 'traefik',
        PREVIEWD_TRAEFIK_ENTRYPOINTS: 'web, internal',
        PREVIEWD_TRAEFIK_TLS_ENTRYPOINTS: 'websecure, internal-tls',
        PREVIEWD_TRAEFIK_TLS: 'true',
        PREVIEWD_TRAEFIK_CERT_RESOLVER: 'le',
        PREVIEWD_TRAEFIK_ROUTER_TEMPLATE: 'pv-{id}-{port}',
        PREVIEWD_TRAEFIK_ACCESS_LOG: '/var/log/traefik/access.log',
        PREVIEWD_TRAEFIK_FORWARD_AUTH_URL: 'http://previewd:7070/v1/traefik/forward-auth',
        PREVIEWD_TRAEFIK_WAKE_URL: 'http://previewd:8080',
      },
    });
    expect(warnings).toEqual([]);
    expect(config.edgeMode).toBe('traefik');
    expect(config.traefik).toEqual({
      entrypoints: ['web', 'internal'],
      tlsEntrypoints: ['websecure', 'internal-tls'],
      tls: true,
      certResolver: 'le',
      routerTemplate: 'pv-{id}-{port}',
      accessLog: '/var/log/traefik/access.log',
      forwardAuthUrl: 'http://previewd:7070/v1/traefik/forward-auth',
      wakeUrl: 'http://previewd:8080',
    });
  });

  it('names the bad key', () => {
    expect(() =>
      loadConfig({ cwd, env: { PREVIEWD_TRAEFIK_TLS: 'true', PREVIEWD_TRAEFIK_TLS_ENTRYPOINTS: '' } }),
    ).toThrow(/traefik\.tlsEntrypoints/);
    expect(() => loadConfig({ cwd, env: { PREVIEWD_EDGE_MODE: 'nginx' } })).toThrow(ConfigError);
    expect(() => loadConfig({ cwd, env: { PREVIEWD_EDGE_MODE: 'nginx' } })).toThrow(/edgeMode/);
    expect(() => loadConfig({ cwd, env: { PREVIEWD_TRAEFIK_ENTRYPOINTS: '' } })).toThrow(
      /traefik\.entrypoints/,
    );
    expect(() => loadConfig({ cwd, env: { PREVIEWD_TRAEFIK_WAKE_URL: 'not a url' } })).toThrow(
      /traefik\.wakeUrl/,
    );
  });
});
