import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  decideEgress,
  type EgressPolicy,
  effectivePolicy,
  egressPolicySchema,
  nameMatches,
} from '../../src/domain/egress.js';
import { hostFromHead } from '../../src/egress/egress-proxy.js';
import { egressRules, tagged } from '../../src/providers/docker/egress-rules.js';

const policy = (p: Partial<EgressPolicy> & Pick<EgressPolicy, 'egress'>) => egressPolicySchema.parse(p);

describe('egress policy entries', () => {
  it.each([
    ['registry.npmjs.org', true],
    ['*.npmjs.org', true],
    ['10.0.0.0/8', true],
    ['203.0.113.7', true],
    ['Example.COM.', true],
    ['not a host', false],
    ['*.', false],
    ['a.*.b', false],
    ['1.2.3', false],
    ['300.1.1.1', false],
    ['', false],
  ])('%s valid: %s', (entry, ok) => {
    expect(egressPolicySchema.safeParse({ egress: 'list', allow: [entry] }).success).toBe(ok);
  });

  it('normalises entries to lower case without the trailing dot', () => {
    expect(policy({ egress: 'list', allow: ['Example.COM.'] }).allow).toEqual(['example.com']);
  });

  it.each([
    ['*.npmjs.org', 'registry.npmjs.org', true],
    ['*.npmjs.org', 'a.b.npmjs.org', true],
    ['*.npmjs.org', 'npmjs.org', false],
    ['*.npmjs.org', 'evilnpmjs.org', false],
    ['npmjs.org', 'NPMJS.org.', true],
    ['npmjs.org', 'registry.npmjs.org', false],
  ])('%s matches %s: %s', (entry, host, ok) => {
    expect(nameMatches(entry, host)).toBe(ok);
  });

  it.each([
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '198.51.100.1', false],
    ['203.0.113.7', '203.0.113.7', true],
    ['203.0.113.7', '203.0.113.8', false],
    ['0.0.0.0/0', '203.0.113.9', true],
  ])('%s contains %s: %s', (cidr, addr, ok) => {
    expect(cidrContains(cidr, addr)).toBe(ok);
  });
});

describe('decideEgress', () => {
  const list = policy({ egress: 'list', allow: ['*.npmjs.org', '198.51.100.0/24'], deny: ['bad.npmjs.org'] });
  it.each([
    [policy({ egress: 'allow' }), 'anything.test', '203.0.113.1', { allowed: true }],
    [
      policy({ egress: 'allow', deny: ['*.evil.test'] }),
      'x.evil.test',
      undefined,
      { allowed: false, rule: 'deny:*.evil.test' },
    ],
    [policy({ egress: 'deny' }), 'registry.npmjs.org', undefined, { allowed: false, rule: 'deny' }],
    [list, 'registry.npmjs.org', undefined, { allowed: true }],
    [list, 'bad.npmjs.org', undefined, { allowed: false, rule: 'deny:bad.npmjs.org' }],
    [list, 'other.test', '203.0.113.1', { allowed: false, rule: 'not_listed' }],
    [list, 'other.test', '198.51.100.9', { allowed: true }],
  ])('%o %s %s', (p, host, addr, want) => {
    expect(decideEgress(p, host, addr)).toEqual(want);
  });

  it("takes the sandbox's own policy, else its owner's, else the default", () => {
    const network = {
      egressDefault: policy({ egress: 'allow' }),
      egressByOwner: { alice: policy({ egress: 'deny' }) },
    };
    const own = policy({ egress: 'list', allow: ['a.test'] });
    expect(effectivePolicy(own, 'alice', network)).toBe(own);
    expect(effectivePolicy(undefined, 'alice', network).egress).toBe('deny');
    expect(effectivePolicy(undefined, 'bob', network).egress).toBe('allow');
    expect(effectivePolicy(undefined, undefined, network).egress).toBe('allow');
  });
});

describe('egressRules', () => {
  const ports = { http: 40080, tls: 40443 };
  it('redirects 80/443 of sandboxes whose policy names hosts, and refuses other ports by CIDR', () => {
    const r = egressRules(
      [
        {
          addr: '172.18.0.3',
          policy: policy({ egress: 'list', allow: ['a.test', '198.51.100.0/24'], deny: ['198.51.100.9'] }),
        },
        { addr: '172.18.0.2', policy: policy({ egress: 'allow' }) },
        { addr: '172.18.0.4', policy: policy({ egress: 'deny' }) },
      ],
      ports,
    );
    const REJ = ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'];
    expect(r.forward).toEqual(
      [
        ['-s', '172.18.0.3/32', '-d', '198.51.100.9/32', ...REJ],
        ['-s', '172.18.0.3/32', '-d', '198.51.100.0/24', '-j', 'RETURN'],
        ['-s', '172.18.0.3/32', ...REJ],
        ['-s', '172.18.0.4/32', ...REJ],
      ].map(tagged),
    );
    const redirect = (addr: string, dport: number, to: number) => [
      '-s',
      `${addr}/32`,
      '-p',
      'tcp',
      '-m',
      'tcp',
      '--dport',
      String(dport),
      '-j',
      'REDIRECT',
      '--to-ports',
      String(to),
    ];
    expect(r.nat).toEqual(
      [
        redirect('172.18.0.3', 80, 40080),
        redirect('172.18.0.3', 443, 40443),
        redirect('172.18.0.4', 80, 40080),
        redirect('172.18.0.4', 443, 40443),
      ].map(tagged),
    );
    expect(tagged(['-s', '172.18.0.4/32', ...REJ])).toEqual([
      '-s',
      '172.18.0.4/32',
      '-m',
      'comment',
      '--comment',
      'previewd egress',
      ...REJ,
    ]);
  });

  it('leaves an allow sandbox with CIDR-only denials off the proxy', () => {
    const r = egressRules(
      [{ addr: '172.18.0.2', policy: policy({ egress: 'allow', deny: ['203.0.113.0/24'] }) }],
      ports,
    );
    expect(r.nat).toEqual([]);
    expect(r.forward).toHaveLength(1);
  });
});

describe('hostFromHead', () => {
  it.each([
    ['GET / HTTP/1.1\r\nHost: Example.test:8080\r\n\r\n', { done: true, host: 'example.test' }],
    ['GET / HTTP/1.1\r\nhost:a.test\r\nX: y\r\n\r\n', { done: true, host: 'a.test' }],
    ['GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n', { done: true, host: '::1' }],
    ['GET / HTTP/1.1\r\n\r\n', { done: true }],
    ['GET / HTTP/1.1\r\nHost: a.test\r\n', { done: false }],
  ])('%j', (head, want) => {
    expect(hostFromHead(Buffer.from(head))).toEqual(want);
  });
});
