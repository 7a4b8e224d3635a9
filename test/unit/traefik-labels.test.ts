import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { traefikLabels } from '../../src/traefik/labels.js';
import { expectGolden } from '../helpers/golden.js';

const ID = '01jf8z6v7k3q2m9x4r5t6y7w8a';

function config(overrides: Record<string, unknown> = {}): Config {
  return loadConfig({
    env: {},
    cwd: '/nonexistent-previewd-config-dir',
    overrides: { dataDir: '/tmp/previewd-golden', edgeMode: 'traefik', ...overrides },
  }).config;
}

describe('Traefik labels of a sandbox container', () => {
  it('public sandbox, one port, plain HTTP', () => {
    expectGolden(
      'traefik-labels-public.json',
      traefikLabels(config(), { id: ID, visibility: 'public', ports: [3000] }),
    );
  });

  it('private sandbox: every router gets the forward-auth middleware of the HTTP provider', () => {
    const labels = traefikLabels(config(), { id: ID, visibility: 'private', ports: [3000] });
    expect(labels[`traefik.http.routers.${ID}-3000.middlewares`]).toBe('previewd-auth@http');
    expectGolden('traefik-labels-private.json', labels);
  });

  it('TLS with a certificate resolver: TLS entrypoints, tls=true, the wildcard domain', () => {
    const labels = traefikLabels(
      config({
        previewDomain: 'preview.example.com',
        traefik: { tls: true, certResolver: 'le', tlsEntrypoints: ['websecure'] },
      }),
      { id: ID, visibility: 'public', ports: [3000] },
    );
    expect(labels[`traefik.http.routers.${ID}-3000.entrypoints`]).toBe('websecure');
    expect(labels[`traefik.http.routers.${ID}-3000.tls`]).toBe('true');
    expectGolden('traefik-labels-tls.json', labels);
  });

  it('several ports (given unsorted, with a duplicate): one router and one service each', () => {
    const labels = traefikLabels(config({ traefik: { entrypoints: ['web', 'internal'] } }), {
      id: ID,
      visibility: 'private',
      ports: [8000, 3000, 5173, 3000],
    });
    for (const port of [3000, 5173, 8000]) {
      expect(labels[`traefik.http.routers.${ID}-${port}.rule`]).toBe(
        `Host(\`${port}-${ID}.preview.localhost\`)`,
      );
      expect(labels[`traefik.http.services.${ID}-${port}.loadbalancer.server.port`]).toBe(String(port));
    }
    expectGolden('traefik-labels-ports.json', labels);
  });

  it('router template and host template are both honoured', () => {
    const labels = traefikLabels(
      config({ traefik: { routerTemplate: 'pv-{port}-{id}' }, edge: { hostTemplate: '{id}-{port}' } }),
      { id: ID, visibility: 'public', ports: [3000] },
    );
    expect(labels[`traefik.http.routers.pv-3000-${ID}.rule`]).toBe(`Host(\`${ID}-3000.preview.localhost\`)`);
    expect(labels[`traefik.http.routers.pv-3000-${ID}.service`]).toBe(`pv-3000-${ID}`);
  });

  it('names no router with characters Traefik labels cannot carry', () => {
    expect(() => config({ traefik: { routerTemplate: '{id}.{port}' } })).toThrow(/routerTemplate/);
    expect(() => config({ traefik: { routerTemplate: '{id}' } })).toThrow(/routerTemplate/);
  });
});
