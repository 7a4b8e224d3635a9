import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type FrontConfigInput, renderFrontConfig } from '../../src/edge/front-config.js';
import { frontErrorResponses, longHostBody } from '../../src/edge/front-errors.js';
import { appUnreachable, FrontLogReader, parseFrontLogLine } from '../../src/edge/front-log.js';
import { makeWildcardCert } from '../helpers/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'previewd-front-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base: FrontConfigInput = {
  plain: { host: '127.0.0.1', port: 18080 },
  httpsRedirect: false,
  builtin: { host: '127.0.0.1', port: 18081 },
  socketPath: join(dir, 'haproxy.sock'),
  mapFile: join(dir, 'fast-routes.map'),
  logRate: 1000,
};
writeFileSync(base.mapFile, '');

/** HAProxy's own check of a configuration: valid, and not a single warning. */
function haproxyCheck(text: string): string {
  const file = join(dir, `check-${Math.random().toString(36).slice(2)}.cfg`);
  writeFileSync(file, text);
  const run = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  const output = `${run.stdout}${run.stderr}`;
  expect(run.status, output).toBe(0);
  return output;
}

describe('front configuration (checked by the real haproxy -c)', () => {
  it('is valid and warning-free for a plain listener', () => {
    const text = renderFrontConfig(base);
    expect(haproxyCheck(text)).not.toMatch(/WARNING|ALERT/);
    expect(text).toContain(`map(${base.mapFile})`);
    expect(text).toContain('server builtin 127.0.0.1:18081');
    expect(text).not.toContain('nbthread');
  });

  it('is valid and warning-free with private routes (the token check of front-access.ts)', () => {
    const keysFile = join(dir, 'preview-keys.map');
    writeFileSync(keysFile, '');
    const text = renderFrontConfig({ ...base, keysFile });
    expect(haproxyCheck(text)).not.toMatch(/WARNING|ALERT/);
    expect(text).toContain(`map(${keysFile})`);
    expect(text).toContain('hmac(sha256,txn.pvk)');
    // Without the keys, no private route is ever served by the front.
    expect(renderFrontConfig(base)).not.toContain('hmac');
  });

  it('is valid with its own error answers and the long-Host refusal', () => {
    const errorFiles: Record<number, string> = {};
    for (const [status, response] of Object.entries(frontErrorResponses())) {
      errorFiles[Number(status)] = join(dir, `error-${status}.http`);
      writeFileSync(errorFiles[Number(status)]!, response);
      const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));
      expect(body.error.code, status).toMatch(/^[a-z_]+$/);
      expect(response, status).toContain(`content-length: ${Buffer.byteLength(JSON.stringify(body))}`);
    }
    const text = renderFrontConfig({ ...base, errorFiles });
    expect(haproxyCheck(text)).not.toMatch(/WARNING|ALERT/);
    expect(text).toContain(`errorfile 400 ${errorFiles[400]}`);
    expect(longHostBody()).not.toContain("'");
    expect(JSON.parse(longHostBody()).error.code).toBe('not_a_preview_host');
  });

  it('is valid with a TLS listener, threads, and https redirects left to the built-in edge', () => {
    const cert = join(dir, 'edge.pem');
    const { certFile, keyFile } = makeWildcardCert(dir);
    writeFileSync(cert, readFileSync(certFile, 'utf8') + readFileSync(keyFile, 'utf8'));
    const text = renderFrontConfig({
      ...base,
      tls: { host: '127.0.0.1', port: 18443, pemFile: cert },
      httpsRedirect: true,
      threads: 2,
    });
    expect(haproxyCheck(text)).not.toMatch(/WARNING|ALERT/);
    expect(text).toContain('nbthread 2');
    // Plain-HTTP requests never take the fast path when they must be redirected.
    expect(text).toContain('use_backend fast if { var(txn.up) -m found } { ssl_fc }');
  });
});

describe('front log lines', () => {
  const line =
    '3000-01hzy.preview.localhost\tGET\t/echo?x=1&previewd_token=abc\t200\t1234\t3\t1764430000123\tapp';

  it('parses a request line and keeps the token out of the path', () => {
    expect(parseFrontLogLine(line)).toEqual({
      host: '3000-01hzy.preview.localhost',
      method: 'GET',
      path: '/echo?x=1',
      status: 200,
      bytes: 1234,
      durationMs: 3,
      timeMs: 1764430000123,
      server: 'app',
    });
    expect(appUnreachable(parseFrontLogLine(line)!)).toBe(false);
    expect(appUnreachable(parseFrontLogLine(line.replace(/app$/, 'builtin'))!)).toBe(true);
  });

  it('ignores anything that is not a request line', () => {
    expect(parseFrontLogLine('[NOTICE]   (1) : haproxy version is 2.6.12')).toBeUndefined();
    expect(parseFrontLogLine('')).toBeUndefined();
    expect(parseFrontLogLine(line.replace('\t200\t', '\tabc\t'))).toBeUndefined();
  });

  it('joins lines split across chunks', () => {
    const seen: string[] = [];
    const reader = new FrontLogReader((entry) => seen.push(entry.path));
    const two = `${line}\n${line.replace('/echo?x=1&previewd_token=abc', '/second')}\n`;
    const cut = line.length + 5;
    reader.push(two.slice(0, 20));
    reader.push(two.slice(20, cut));
    expect(seen).toEqual(['/echo?x=1']);
    reader.push(two.slice(cut));
    expect(seen).toEqual(['/echo?x=1', '/second']);
  });
});
