import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSigningKeys, PreviewTokens } from '../../src/edge/preview-tokens.js';

const sid = '01jabcdefghjkmnpqrstvwxyz0';
const key = (kid: string, fill: number) => ({ kid, secret: Buffer.alloc(32, fill) });

describe('PreviewTokens', () => {
  const now = 1_700_000_000_000;
  const tokens = new PreviewTokens([key('a', 1)]);
  const claims = { sid, iat: now, exp: now + 60_000 };

  it('accepts a valid token for any port when unscoped', () => {
    const t = tokens.issue(claims);
    expect(tokens.verify(t, sid, 3000, 0, now)).toMatchObject({ ok: true });
    expect(tokens.verify(t, sid, 4000, 0, now)).toMatchObject({ ok: true });
  });
  it.each([
    ['wrong_port', { ...claims, port: 3000 }, sid, 4000, 0, now],
    ['wrong_sandbox', claims, '01jabcdefghjkmnpqrstvwxyz1', 3000, 0, now],
    ['expired', claims, sid, 3000, 0, now + 60_000],
    ['revoked', claims, sid, 3000, now, now],
  ])('rejects %s', (reason, c, s, port, validAfter, at) => {
    expect(tokens.verify(tokens.issue(c), s, port, validAfter, at)).toEqual({ ok: false, reason });
  });
  it('rejects tampering, unknown keys and garbage', () => {
    const t = tokens.issue({ ...claims, port: 3000 });
    const [p, kid, body, sig] = t.split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, port: 4000 })).toString('base64url');
    expect(tokens.verify([p, kid, forged, sig].join('.'), sid, 4000, 0, now)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(new PreviewTokens([key('b', 1)]).verify(t, sid, 3000, 0, now)).toEqual({
      ok: false,
      reason: 'unknown_key',
    });
    expect(new PreviewTokens([key('a', 2)]).verify(t, sid, 3000, 0, now)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(tokens.verify('nope', sid, 3000, 0, now)).toEqual({ ok: false, reason: 'malformed' });
    expect(tokens.verify(`${p}.${kid}.${body}`, sid, 3000, 0, now)).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });
  it('rotates: a new first key signs, the old one still verifies', () => {
    const old = new PreviewTokens([key('a', 1)]).issue(claims);
    const rotated = new PreviewTokens([key('b', 2), key('a', 1)]);
    expect(rotated.verify(old, sid, 3000, 0, now)).toMatchObject({ ok: true });
    expect(rotated.issue(claims).split('.')[1]).toBe('b');
  });
  it('creates the key file with mode 0600 and reads it back', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'previewd-keys-')), 'sub', 'keys');
    const keys = loadSigningKeys(file);
    expect(keys).toHaveLength(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadSigningKeys(file)[0]!.secret.equals(keys[0]!.secret)).toBe(true);
    writeFileSync(file, `new ${Buffer.alloc(32, 7).toString('base64url')}\n${readFileSync(file, 'utf8')}`);
    expect(loadSigningKeys(file).map((k) => k.kid)).toEqual(['new', keys[0]!.kid]);
    writeFileSync(file, 'bad\n');
    expect(() => loadSigningKeys(file)).toThrow(/kid/);
  });
});
