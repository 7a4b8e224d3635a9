import { describe, expect, it } from 'vitest';
import { proxyTargets, splitRule } from '../../src/providers/docker/containment.js';
import {
  canonicalCidr,
  chainNames,
  containmentRules,
  installedVersion,
  NON_INTERNET_RANGES,
  RULES_VERSION,
  resolversOf,
  restoreScript,
  ruleLine,
} from '../../src/providers/docker/containment-rules.js';

const ID = '23012b9f24a46181bbecd0062e18057a70303c4fcdef651d10a1ba356944e5f4';
const base = {
  networkId: ID,
  bridge: 'br-23012b9f24a4',
  resolvers: ['10.255.255.53'],
  allowPrivate: [],
  dockerBridges: ['docker0'],
  hostTcpPorts: [],
};
const lines = (chain: string, rules: string[][]) => rules.map((r) => ruleLine(chain, r));

describe('containment rule set', () => {
  it('names two chains per network within iptables’ 28-character limit', () => {
    const { inputChain, forwardChain } = chainNames(ID);
    expect(inputChain).toBe('PREVIEWD-IN-23012b9f24a4');
    expect(forwardChain).toBe('PREVIEWD-FWD-23012b9f24a4');
    expect(forwardChain.length).toBeLessThanOrEqual(28);
  });

  it('host side: replies, the resolvers’ port 53 and nothing else', () => {
    const r = containmentRules(base);
    expect(lines(r.inputChain, r.input)).toEqual([
      '-A PREVIEWD-IN-23012b9f24a4 -m comment --comment "previewd containment rules v1"',
      '-A PREVIEWD-IN-23012b9f24a4 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-A PREVIEWD-IN-23012b9f24a4 -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN',
      '-A PREVIEWD-IN-23012b9f24a4 -d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN',
      '-A PREVIEWD-IN-23012b9f24a4 -j REJECT --reject-with icmp-admin-prohibited',
    ]);
  });

  it('host side with allowEdge: the edge ports pass before the final REJECT', () => {
    const r = containmentRules({ ...base, resolvers: [], hostTcpPorts: [8443, 8080, 8080] });
    expect(lines(r.inputChain, r.input).slice(2)).toEqual([
      '-A PREVIEWD-IN-23012b9f24a4 -p tcp -m tcp --dport 8080 -j RETURN',
      '-A PREVIEWD-IN-23012b9f24a4 -p tcp -m tcp --dport 8443 -j RETURN',
      '-A PREVIEWD-IN-23012b9f24a4 -j REJECT --reject-with icmp-admin-prohibited',
    ]);
  });

  it('forward side: replies and DNS, then other bridges, allowed CIDRs, refused ranges, egress slot, RETURN', () => {
    const egress = [['-p', 'tcp', '-m', 'tcp', '--dport', '25', '-j', 'REJECT']];
    const r = containmentRules({ ...base, allowPrivate: ['10.1.2.3/16', '192.168.5.5'], egress });
    const got = lines(r.forwardChain, r.forward);
    const c = r.forwardChain;
    expect(got.slice(0, 6)).toEqual([
      `-A ${c} -m comment --comment "previewd containment rules v1"`,
      `-A ${c} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
      `-A ${c} -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN`,
      `-A ${c} -d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN`,
      `-A ${c} -o br-+ -j REJECT --reject-with icmp-admin-prohibited`,
      `-A ${c} -o docker0 -j REJECT --reject-with icmp-admin-prohibited`,
    ]);
    expect(got.slice(6, 8)).toEqual([
      `-A ${c} -d 10.1.0.0/16 -j RETURN`,
      `-A ${c} -d 192.168.5.5/32 -j RETURN`,
    ]);
    expect(got.slice(8, 8 + NON_INTERNET_RANGES.length)).toEqual(
      NON_INTERNET_RANGES.map((range) => `-A ${c} -d ${range} -j REJECT --reject-with icmp-admin-prohibited`),
    );
    expect(got.slice(-2)).toEqual([`-A ${c} -p tcp -m tcp --dport 25 -j REJECT`, `-A ${c} -j RETURN`]);
  });

  it('names each Docker bridge instead of br-+ when the host has a br- interface of its own', () => {
    const r = containmentRules({
      ...base,
      dockerBridges: ['br-23012b9f24a4', 'br-aaaaaaaaaaaa', 'docker0'],
      bridgeWildcard: false,
    });
    const outs = lines(r.forwardChain, r.forward).filter((l) => l.includes(' -o '));
    expect(outs.map((l) => l.split(' ')[3])).toEqual(['br-23012b9f24a4', 'br-aaaaaaaaaaaa', 'docker0']);
  });

  it('keeps the host’s HTTP(S) proxies reachable, on the host and beyond, before any refusal', () => {
    const r = containmentRules({
      ...base,
      resolvers: [],
      proxies: [
        { addr: '10.9.9.9', port: 3128 },
        { addr: '10.9.9.9', port: 3128 },
      ],
    });
    const rule = '-d 10.9.9.9/32 -p tcp -m tcp --dport 3128 -j RETURN';
    expect(lines(r.inputChain, r.input)[2]).toBe(`-A ${r.inputChain} ${rule}`);
    const fwd = lines(r.forwardChain, r.forward);
    expect(fwd.filter((l) => l.endsWith(rule))).toHaveLength(1);
    expect(fwd.indexOf(`-A ${r.forwardChain} ${rule}`)).toBeLessThan(
      fwd.findIndex((l) => l.includes('-d 10.0.0.0/8')),
    );
  });

  it('reads the proxies from the environment passed into sandboxes', async () => {
    expect(
      await proxyTargets({
        HTTP_PROXY: 'http://10.1.2.3:3128',
        https_proxy: '10.1.2.4:8080',
        NO_PROXY: '10.0.0.0/8',
        HTTPS_PROXY: 'https://[fd00::1]:1',
      }),
    ).toEqual([
      { addr: '10.1.2.3', port: 3128 },
      { addr: '10.1.2.4', port: 8080 },
    ]);
  });

  it('refuses metadata, RFC 1918 and CGNAT but not documentation or public ranges', () => {
    expect(NON_INTERNET_RANGES).toEqual(
      expect.arrayContaining([
        '169.254.0.0/16',
        '10.0.0.0/8',
        '172.16.0.0/12',
        '192.168.0.0/16',
        '100.64.0.0/10',
      ]),
    );
    expect(NON_INTERNET_RANGES).not.toContain('198.51.100.0/24');
  });

  it('jumps only for the sandbox bridge, marked as previewd’s', () => {
    const r = containmentRules(base);
    expect(r.jumps.map((j) => ruleLine(j.chain, j.rule))).toEqual([
      '-A INPUT -i br-23012b9f24a4 -m comment --comment "previewd sandbox containment" -j PREVIEWD-IN-23012b9f24a4',
      '-A DOCKER-USER -i br-23012b9f24a4 -m comment --comment "previewd sandbox containment" -j PREVIEWD-FWD-23012b9f24a4',
    ]);
    expect(splitRule(ruleLine(r.jumps[0]!.chain, r.jumps[0]!.rule)).slice(2)).toEqual(r.jumps[0]!.rule);
  });

  it('writes an iptables-restore --noflush script that replaces only its two chains', () => {
    const script = restoreScript(containmentRules(base));
    const head = script.split('\n').slice(0, 5);
    expect(head).toEqual([
      '*filter',
      ':PREVIEWD-IN-23012b9f24a4 - [0:0]',
      ':PREVIEWD-FWD-23012b9f24a4 - [0:0]',
      '-F PREVIEWD-IN-23012b9f24a4',
      '-F PREVIEWD-FWD-23012b9f24a4',
    ]);
    expect(script.trimEnd().endsWith('COMMIT')).toBe(true);
    expect(script).not.toMatch(/^-[AID] (INPUT|DOCKER-USER|FORWARD) /m);
  });

  it.each([
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['192.168.1.77', '192.168.1.77/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['172.16.255.1/12', '172.16.0.0/12'],
  ])('canonical CIDR of %s is %s', (input, out) => {
    expect(canonicalCidr(input)).toBe(out);
  });

  it('reads the rules version back from a listing', () => {
    const r = containmentRules(base);
    expect(installedVersion(lines(r.forwardChain, r.forward))).toBe(RULES_VERSION);
    expect(installedVersion(['-A X -m comment --comment "previewd containment rules v7"'])).toBe(7);
    expect(installedVersion(['-A X -j RETURN'])).toBeUndefined();
  });

  it('takes the non-loopback IPv4 nameservers of a resolv.conf', () => {
    expect(resolversOf('# c\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver fd00::1\n')).toEqual(
      {
        all: ['10.255.255.53', '127.0.0.53', 'fd00::1'],
        remote: ['10.255.255.53'],
      },
    );
  });
});
