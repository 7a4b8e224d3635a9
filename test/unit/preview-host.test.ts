import { describe, expect, it } from 'vitest';
import { formatPreviewHost, PreviewHostParser } from '../../src/edge/preview-host.js';
import { previewUrl } from '../../src/edge/preview-urls.js';

const id = '01jabcdefghjkmnpqrstvwxyz0';
const cfg = { previewDomain: 'preview.localhost', edge: { hostTemplate: '{port}-{id}' } };

describe('PreviewHostParser', () => {
  const parser = new PreviewHostParser(cfg);
  it.each([
    [`3000-${id}.preview.localhost`, { port: 3000, sandboxId: id }],
    [`3000-${id}.preview.localhost:8080`, { port: 3000, sandboxId: id }],
    [`3000-${id.toUpperCase()}.PREVIEW.localhost:8080`, { port: 3000, sandboxId: id }],
    [`65535-${id}.preview.localhost`, { port: 65535, sandboxId: id }],
    [`1-${id}.preview.localhost.`, { port: 1, sandboxId: id }],
    [`3000-${id}.preview.localhost`, { port: 3000, sandboxId: id }],
  ])('parses %s', (host, expected) => {
    expect(parser.parse(host)).toEqual(expected);
  });
  it.each([
    undefined,
    '',
    'localhost:8080',
    'preview.localhost',
    `3000-${id}.other.localhost`,
    `a.3000-${id}.preview.localhost`,
    `65536-${id}.preview.localhost`,
    `0-${id}.preview.localhost`,
    `03000-${id}.preview.localhost`,
    `3000-${id}x.preview.localhost`,
    `3000_${id}.preview.localhost`,
    `3000-${id.slice(1)}.preview.localhost`,
    '[::1]:8080',
    `3000-${id}.evilpreview.localhost`,
  ])('rejects %s', (host) => {
    expect(parser.parse(host)).toBeUndefined();
  });
  it('follows another template, still one label', () => {
    const other = { previewDomain: 'p.example.com', edge: { hostTemplate: 'app-{id}-{port}' } };
    const p = new PreviewHostParser(other);
    expect(formatPreviewHost(other, id, 5173)).toBe(`app-${id}-5173.p.example.com`);
    expect(p.parse(`APP-${id}-5173.p.example.com:443`)).toEqual({ port: 5173, sandboxId: id });
    expect(p.parse(`5173-${id}.p.example.com`)).toBeUndefined();
  });
});

describe('previewUrl', () => {
  const base = { previewDomain: 'preview.localhost', edgeAddr: '0.0.0.0:8080' };
  const edge = {
    hostTemplate: '{port}-{id}',
    httpsRedirect: false,
    wakeTimeoutSec: 30,
    useLoopbackPorts: false,
    accessLogSize: 10,
  };
  it.each([
    [{ ...base, edge }, `http://3000-${id}.preview.localhost:8080`],
    [{ ...base, edgeAddr: '0.0.0.0:80', edge }, `http://3000-${id}.preview.localhost`],
    [
      { ...base, edge: { ...edge, tls: { certFile: 'c', keyFile: 'k', addr: '0.0.0.0:443' } } },
      `https://3000-${id}.preview.localhost`,
    ],
    [
      { ...base, edge: { ...edge, tls: { certFile: 'c', keyFile: 'k', addr: '0.0.0.0:8443' } } },
      `https://3000-${id}.preview.localhost:8443`,
    ],
    [
      { ...base, edge: { ...edge, publicScheme: 'https' as const, publicPort: 443 } },
      `https://3000-${id}.preview.localhost`,
    ],
    [{ ...base, edge: { ...edge, publicPort: 9000 } }, `http://3000-${id}.preview.localhost:9000`],
  ])('builds %#', (config, expected) => {
    expect(previewUrl(config as never, id, 3000)).toBe(expected);
  });
});
