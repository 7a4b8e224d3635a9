import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import {
  buildDynamicConfig,
  etagOf,
  ifNoneMatchHits,
  type RoutableSandbox,
  type TraefikDynamicConfig,
  wakeRule,
} from '../../src/traefik/dynamic-config.js';
import { expectGolden } from '../helpers/golden.js';

const A = '01jf8z6v7k3q2m9x4r5t6y7w8a';
const B = '01jf8z6v7k3q2m9x4r5t6y7w8b';

function config(overrides: Record<string, unknown> = {}): Config {
  return loadConfig({
    env: {},
    cwd: '/nonexistent-previewd-config-dir',
    overrides: { dataDir: '/tmp/previewd-golden', edgeMode: 'traefik', ...overrides },
  }).config;
}

const sandboxes: RoutableSandbox[] = [
  { id: A, visibility: 'public', ports: [{ port: 3000, url: 'http://172.30.0.2:3000' }] },
  {
    id: B,
    visibility: 'private',
    ports: [
      { port: 5173, url: 'http://172.30.0.3:5173' },
      { port: 8000, url: 'http://172.30.0.3:8000' },
    ],
  },
];

// Traefik's dynamic-configuration rules as published by SchemaStore (an excerpt kept as test data,
// see test/golden/LICENSE-schemastore.txt).
const schema = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'golden', 'traefik-v3-file-provider.schema.json'), 'utf8'),
);
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

/** The schema checks shapes; Traefik also needs every reference to resolve. */
function expectValidTraefikConfig(dynamic: TraefikDynamicConfig, entrypoints: string[]): void {
  const ok = validate(dynamic);
  expect(validate.errors ?? [], 'valid against the Traefik v3 file-provider schema').toEqual([]);
  expect(ok).toBe(true);
  const { routers, services, middlewares } = dynamic.http;
  for (const [name, router] of Object.entries(routers)) {
    expect(name).not.toContain('@'); // "The character @ is not authorized in the router name"
    expect(services[router.service], `service of router ${name}`).toBeDefined();
    for (const mw of router.middlewares ?? []) expect(middlewares[mw], `middleware ${mw}`).toBeDefined();
    for (const ep of router.entryPoints) expect(entrypoints).toContain(ep);
    expect(router.rule).toMatch(/^(Host|HostRegexp)\(`[^`]+`\)$/);
  }
}

describe('Traefik dynamic configuration (HTTP provider JSON)', () => {
  it('plain HTTP: routers per port, forward-auth for private ones, the wake catch-all on web and websecure', () => {
    const dynamic = buildDynamicConfig(config(), sandboxes);
    expectValidTraefikConfig(dynamic, ['web', 'websecure']);
    const { routers } = dynamic.http;
    expect(routers[`${A}-3000`]?.middlewares).toBeUndefined();
    expect(routers[`${B}-5173`]?.middlewares).toEqual(['previewd-auth']);
    expect(routers['previewd-wake']).toMatchObject({ priority: 1, entryPoints: ['web'] });
    expect(routers['previewd-wake-tls']).toMatchObject({ priority: 1, entryPoints: ['websecure'], tls: {} });
    expectGolden('traefik-dynamic-http.json', dynamic);
  });

  it('TLS with a resolver: sandbox routers on websecure with the wildcard certificate', () => {
    const dynamic = buildDynamicConfig(
      config({
        previewDomain: 'preview.example.com',
        traefik: {
          tls: true,
          certResolver: 'le',
          forwardAuthUrl: 'http://previewd:7070/v1/traefik/forward-auth',
          wakeUrl: 'http://previewd:8080',
        },
      }),
      sandboxes,
    );
    expectValidTraefikConfig(dynamic, ['web', 'websecure']);
    expect(dynamic.http.routers[`${A}-3000`]).toMatchObject({
      entryPoints: ['websecure'],
      tls: {
        certResolver: 'le',
        domains: [{ main: 'preview.example.com', sans: ['*.preview.example.com'] }],
      },
    });
    expectGolden('traefik-dynamic-tls.json', dynamic);
  });

  it('no sandboxes: only the catch-all, its service and the middleware', () => {
    const dynamic = buildDynamicConfig(config({ traefik: { tlsEntrypoints: [] } }), []);
    expectValidTraefikConfig(dynamic, ['web']);
    expect(Object.keys(dynamic.http.routers)).toEqual(['previewd-wake']);
    expectGolden('traefik-dynamic-empty.json', dynamic);
  });

  it('the wake rule matches preview hosts of any case and nothing deeper or elsewhere', () => {
    const rule = wakeRule(config());
    expect(rule).toBe('HostRegexp(`(?i)^[^.]+\\.preview\\.localhost$`)');
    // Go's regexp and JavaScript's agree on this subset; (?i) becomes the i flag.
    const body = /^HostRegexp\(`\(\?i\)(.*)`\)$/.exec(rule)![1]!;
    const re = new RegExp(body, 'i');
    expect(re.test(`3000-${A}.preview.localhost`)).toBe(true);
    expect(re.test(`3000-${A.toUpperCase()}.PREVIEW.localhost`)).toBe(true);
    expect(re.test(`a.3000-${A}.preview.localhost`)).toBe(false);
    expect(re.test(`3000-${A}.preview-localhost`)).toBe(false);
    expect(re.test('preview.localhost')).toBe(false);
  });

  it('is deterministic and its ETag follows the bytes', () => {
    const one = JSON.stringify(buildDynamicConfig(config(), sandboxes));
    const two = JSON.stringify(buildDynamicConfig(config(), [...sandboxes].reverse()));
    expect(two).toBe(one);
    const three = JSON.stringify(buildDynamicConfig(config(), sandboxes.slice(0, 1)));
    expect(etagOf(one)).toBe(etagOf(two));
    expect(etagOf(three)).not.toBe(etagOf(one));
    expect(ifNoneMatchHits(etagOf(one), etagOf(one))).toBe(true);
    expect(ifNoneMatchHits(`"x", W/${etagOf(one)}`, etagOf(one))).toBe(true);
    expect(ifNoneMatchHits('*', etagOf(one))).toBe(true);
    expect(ifNoneMatchHits(etagOf(three), etagOf(one))).toBe(false);
    expect(ifNoneMatchHits(undefined, etagOf(one))).toBe(false);
  });

  it('the schema check has teeth: it rejects what Traefik rejects', () => {
    const dynamic = buildDynamicConfig(config(), sandboxes) as unknown as {
      http: { routers: Record<string, Record<string, unknown>>; services: Record<string, unknown> };
    };
    const bad = structuredClone(dynamic);
    bad.http.routers[`${A}-3000`]!.entrypoints = ['web']; // wrong case of entryPoints
    expect(validate(bad)).toBe(false);
    const noServers = structuredClone(dynamic);
    noServers.http.services[`${A}-3000`] = { loadBalancer: { servers: [] } };
    expect(validate(noServers)).toBe(false);
    const negative = structuredClone(dynamic);
    negative.http.routers[`${A}-3000`]!.priority = -1;
    expect(validate(negative)).toBe(false);
  });
});
