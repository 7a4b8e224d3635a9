import { describe, expect, it } from 'vitest';
import { sameHostLocation } from '../../src/edge/preview-access.js';

describe('sameHostLocation: the redirect after a token exchange stays on the preview host', () => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['/echo?a=1&b=2', '/echo?a=1&b=2'],
    ['//evil.example/', '/evil.example/'],
    ['///evil.example/x', '/evil.example/x'],
    ['/\\evil.example/', '/evil.example/'],
    ['\\\\evil.example', '/evil.example'],
    ['/\t/evil.example/', '/evil.example/'],
    ['/\n/evil.example', '/evil.example'],
    ['/%2f%2fevil.example/', '/%2f%2fevil.example/'],
    ['http://evil.example/', '/'],
    ['http://evil.example', '/'],
    ['HTTPS://evil.example/path?q=1', '/path?q=1'],
    ['http://evil.example//evil2.example/', '/evil2.example/'],
    ['http://evil.example?x=1', '/?x=1'],
    ['evil.example', '/evil.example'],
    ['', '/'],
    ['/a b\u00ff', '/a%20b%FF'],
    ['/?next=//evil.example', '/?next=//evil.example'],
  ];
  it.each(cases)('%j → %j', (input, expected) => {
    const location = sameHostLocation(input);
    expect(location).toBe(expected);
    // Resolved by a browser against the preview host, it stays there.
    expect(new URL(location, 'http://3000-x.preview.localhost:8080/').host).toBe(
      '3000-x.preview.localhost:8080',
    );
  });
});
