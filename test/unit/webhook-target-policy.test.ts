import { describe, expect, it } from 'vitest';
import { nextAttemptAt, retryDelayMs } from '../../src/webhooks/backoff.js';
import { isNonInternetAddress, resolveTarget } from '../../src/webhooks/target-policy.js';

// The addresses below are strings handed to pure functions (the resolver is a stub): nothing here
// resolves a name or opens a connection, to these addresses or any other.
describe('webhook target policy', () => {
  it.each([
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['172.20.0.1', true],
    ['192.168.1.1', true],
    ['100.100.100.200', true],
    ['169.254.169.254', true],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['::', true],
    ['::1', true],
    ['fe80::1', true],
    ['fd00:ec2::254', true],
    ['ff02::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['64:ff9b::a00:1', true],
    ['not-an-ip', true],
    ['8.8.8.8', false],
    ['1.1.1.1', false],
    ['::ffff:8.8.8.8', false],
    ['2606:4700:4700::1111', false],
  ])('%s is non-internet: %s', (address, expected) => {
    expect(isNonInternetAddress(address)).toBe(expected);
  });

  it('refuses other schemes, credentials, and names that resolve to any private address', async () => {
    const resolve = async (host: string) =>
      host === 'mixed.example'
        ? [
            { address: '8.8.8.8', family: 4 },
            { address: '10.0.0.5', family: 4 },
          ]
        : host === 'public.example'
          ? [{ address: '2606:4700:4700::1111', family: 6 }]
          : [];
    const check = (url: string, allowPrivate = false) =>
      resolveTarget(url, { allowPrivate, resolve }).then(
        (t) => t.address,
        (e: { code: string }) => e.code,
      );
    expect(await check('ftp://public.example/')).toBe('webhook_target_not_allowed');
    expect(await check('file:///etc/passwd')).toBe('webhook_target_not_allowed');
    expect(await check('https://user:pw@public.example/')).toBe('webhook_target_not_allowed');
    expect(await check('https://mixed.example/')).toBe('webhook_target_not_allowed');
    expect(await check('https://nothing.example/')).toBe('webhook_target_not_allowed');
    expect(await check('http://127.0.0.1:9/')).toBe('webhook_target_not_allowed');
    expect(await check('http://[::1]:9/')).toBe('webhook_target_not_allowed');
    expect(await check('http://198.51.100.7/latest/meta-data')).toBe('webhook_target_not_allowed');
    expect(await check('https://public.example/hook')).toBe('2606:4700:4700::1111');
    // Allowed explicitly (tests, private networks): loopback goes.
    expect(await check('http://127.0.0.1:9/', true)).toBe('127.0.0.1');
    expect(await check('http://[::1]:9/', true)).toBe('::1');
  });
});

describe('webhook retry schedule', () => {
  const policy = { baseMs: 5_000, maxMs: 3_600_000 };
  it('doubles from the base, capped, jittered between half and all of it', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, policy, () => 1))).toEqual([
      5_000, 10_000, 20_000, 40_000,
    ]);
    expect(retryDelayMs(1, policy, () => 0)).toBe(2_500);
    expect(retryDelayMs(30, policy, () => 1)).toBe(3_600_000);
    expect(retryDelayMs(1_000, policy, () => 0.5)).toBe(2_700_000);
  });

  it('gives up once the next attempt would start after the window; a day holds about 30 attempts', () => {
    expect(nextAttemptAt(0, 1, 10_000, policy, () => 1)).toBe(5_000);
    expect(nextAttemptAt(0, 2, 9_999, policy, () => 1)).toBeUndefined();
    let now = 0;
    let attempts = 0;
    for (;;) {
      attempts++;
      const next = nextAttemptAt(now, attempts, 86_400_000, policy, () => 1);
      if (next === undefined) break;
      now = next;
    }
    expect(attempts).toBeGreaterThan(25);
    expect(attempts).toBeLessThan(40);
  });
});
