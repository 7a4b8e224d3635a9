/**
 * The sandbox network's containment rule set (iptables, filter table), as pure data: what a
 * sandbox may reach and what it may not. `containment.ts` reads the facts (bridge, resolvers,
 * subnets, edge ports) and installs this; tests table-check it.
 *
 * Two chains per sandbox network, named after the network's short id:
 * - `PREVIEWD-IN-<id>`, jumped to from INPUT for packets entering from the sandbox bridge: traffic
 *   to the host itself (every gateway address of every bridge and all the host's other addresses
 *   arrive here, whichever the sandbox names). Only replies, DNS to a resolver on the host and (if
 *   allowed) the edge's public ports pass.
 * - `PREVIEWD-FWD-<id>`, jumped to from DOCKER-USER (the first thing FORWARD runs) for packets
 *   entering from the sandbox bridge: traffic routed elsewhere. Replies and DNS to the resolvers
 *   containers are given pass; other Docker bridges (other sandboxes, containers), private, link-local,
 *   CGNAT, multicast and reserved ranges are refused unless allowed; the rest is the internet.
 *
 * The chains only ever refuse (REJECT) or hand back (RETURN): what passes is still decided by the
 * rules after the jump (Docker's own, the operator's), so previewd never opens anything.
 * The per-sandbox egress policy (a later egress proxy) slots in at the end of the FWD chain, in
 * place of its final RETURN: `egress` rules are appended there.
 */

/** Ranges that are not the internet: refused from sandboxes unless `network.allowPrivate` names them. */
export const NON_INTERNET_RANGES = [
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8', // RFC 1918
  '100.64.0.0/10', // CGNAT (RFC 6598)
  '127.0.0.0/8', // loopback (martian when forwarded; listed for completeness)
  '169.254.0.0/16', // link-local: cloud metadata (169.254.169.254)
  '172.16.0.0/12', // RFC 1918
  '192.0.0.0/24', // IETF protocol assignments
  '192.168.0.0/16', // RFC 1918
  '198.18.0.0/15', // benchmarking
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, and the limited broadcast
] as const;

/** How a refused packet is answered: an ICMP "administratively prohibited" (connect fails at once with EHOSTUNREACH). */
export const REJECT = ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'] as const;

export const CHAIN_PREFIX = 'PREVIEWD-';

/**
 * The rule set's version, carried by a no-op first rule of each chain. A control plane does not
 * overwrite chains a newer previewd wrote (a rolling upgrade on a shared engine must not flap).
 */
export const RULES_VERSION = 1;
const MARKER = 'previewd containment rules v';

export function versionMarker(version = RULES_VERSION): string[] {
  return ['-m', 'comment', '--comment', `${MARKER}${version}`];
}

/** The version of the rules in an `iptables -S` listing of one of the chains, if it carries one. */
export function installedVersion(lines: string[]): number | undefined {
  for (const line of lines) {
    const m = new RegExp(`--comment "${MARKER}(\\d+)"`).exec(line);
    if (m?.[1]) return Number(m[1]);
  }
  return undefined;
}

export interface ContainmentInputs {
  /** The sandbox network's id (its first 12 characters name the chains). */
  networkId: string;
  /** The Linux bridge of the sandbox network (`br-<first 12 of id>` unless named at creation). */
  bridge: string;
  /** IPv4 resolvers the containers' DNS goes to (Docker's embedded DNS forwards from the container's namespace). */
  resolvers: string[];
  /** CIDRs or addresses the operator allows although private (`network.allowPrivate`). */
  allowPrivate: string[];
  /**
   * Bridges of the engine's other networks that Docker names itself (`br-+` covers the default
   * `br-<id>` names; docker0 and custom `com.docker.network.bridge.name`s are listed): traffic
   * forwarded into them (other sandboxes, other containers) is refused whatever their subnets.
   */
  dockerBridges: string[];
  /**
   * Refuse `-o br-+` as well (default): every bridge Docker names itself, without rewriting the
   * chain each time a network comes or goes. Off when the host has a `br-…` interface of its own
   * (an uplink bridge): then only `dockerBridges` are refused, and they must list every one.
   */
  bridgeWildcard?: boolean;
  /** Host TCP ports sandboxes may reach (the edge's public ports when `network.allowEdge`). */
  hostTcpPorts: number[];
  /**
   * The host's HTTP(S) proxies (passed into sandboxes) at IPv4 addresses: that address and port
   * stay reachable although private (a corporate proxy at 10.x), on the host or beyond it.
   */
  proxies?: { addr: string; port: number }[];
  /** Extra rules (iptables argument lists) in place of the FWD chain's final RETURN: the egress policy's slot. */
  egress?: string[][];
  /**
   * Rules of the nat chain `PREVIEWD-EGR-<id>` (jumped to from PREROUTING for the sandbox bridge):
   * the egress proxy's redirects (egress-rules.ts). Absent: no nat chain.
   */
  nat?: string[][];
  /** Rules of the IN chain before its final REJECT: the egress proxy's host ports. */
  egressInput?: string[][];
}

export interface ContainmentRules {
  inputChain: string;
  forwardChain: string;
  /** Rules of the INPUT-side chain, each as iptables arguments after `-A <chain>`. */
  input: string[][];
  /** Rules of the FORWARD-side chain. */
  forward: string[][];
  /** The nat chain of the egress proxy's redirects, when there is one. */
  natChain?: string;
  nat?: string[][];
  /** The jumps previewd adds to the built-in chains: [chain, ...rule arguments] (nat: PREROUTING). */
  jumps: { chain: 'INPUT' | 'DOCKER-USER' | 'PREROUTING'; table?: 'nat'; rule: string[] }[];
}

export function chainNames(networkId: string): { inputChain: string; forwardChain: string } {
  const short = networkId.slice(0, 12);
  return { inputChain: `${CHAIN_PREFIX}IN-${short}`, forwardChain: `${CHAIN_PREFIX}FWD-${short}` };
}

/** The nat chain of a sandbox network's egress redirects. */
export function natChainName(networkId: string): string {
  return `${CHAIN_PREFIX}EGR-${networkId.slice(0, 12)}`;
}

const COMMENT = ['-m', 'comment', '--comment', 'previewd sandbox containment'];

/** A /32 for a bare address, the CIDR as given otherwise (iptables prints host routes as /32). */
export function normaliseCidr(value: string): string {
  return value.includes('/') ? value : `${value}/32`;
}

const IPV4_CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}(\/(3[0-2]|[12]?\d))?$/;

export function isIpv4Cidr(value: string): boolean {
  return IPV4_CIDR.test(value);
}

/** The network address of a CIDR (iptables stores 10.1.2.3/8 as 10.0.0.0/8). */
export function canonicalCidr(value: string): string {
  const [addr, bitsText] = normaliseCidr(value).split('/') as [string, string];
  const bits = Number(bitsText);
  const n = addr.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const net = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${bits}`;
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

/** The rule set for one sandbox network, in the canonical form `iptables -S` prints it back. */
export function containmentRules(inputs: ContainmentInputs): ContainmentRules {
  const { inputChain, forwardChain } = chainNames(inputs.networkId);
  const established = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'];
  const resolvers = unique(inputs.resolvers.filter(isIpv4Cidr).map(canonicalCidr));
  const dns = (dest: string) =>
    (['udp', 'tcp'] as const).map((p) => ['-d', dest, '-p', p, '-m', p, '--dport', '53', '-j', 'RETURN']);

  const input: string[][] = [versionMarker(), established];
  for (const r of resolvers) input.push(...dns(r));
  for (const port of unique(inputs.hostTcpPorts).sort((a, b) => a - b)) {
    input.push(['-p', 'tcp', '-m', 'tcp', '--dport', String(port), '-j', 'RETURN']);
  }
  const proxies = (inputs.proxies ?? [])
    .filter((p) => isIpv4Cidr(p.addr) && !p.addr.includes('/'))
    .map((p) => ['-d', `${p.addr}/32`, '-p', 'tcp', '-m', 'tcp', '--dport', String(p.port), '-j', 'RETURN']);
  const proxyRules = unique(proxies.map((r) => r.join(' ')))
    .sort()
    .map((r) => r.split(' '));
  input.push(...proxyRules);
  input.push(...(inputs.egressInput ?? []));
  input.push([...REJECT]);

  const forward: string[][] = [versionMarker(), established];
  for (const r of resolvers) forward.push(...dns(r));
  const wildcard = inputs.bridgeWildcard === false ? [] : ['br-+'];
  for (const bridge of unique([...wildcard, ...inputs.dockerBridges]))
    forward.push(['-o', bridge, ...REJECT]);
  forward.push(...proxyRules);
  for (const cidr of unique(inputs.allowPrivate.filter(isIpv4Cidr).map(canonicalCidr))) {
    forward.push(['-d', cidr, '-j', 'RETURN']);
  }
  for (const range of NON_INTERNET_RANGES) forward.push(['-d', range, ...REJECT]);
  forward.push(...(inputs.egress ?? []));
  forward.push(['-j', 'RETURN']);

  const rules: ContainmentRules = {
    inputChain,
    forwardChain,
    input,
    forward,
    jumps: [
      { chain: 'INPUT', rule: ['-i', inputs.bridge, ...COMMENT, '-j', inputChain] },
      { chain: 'DOCKER-USER', rule: ['-i', inputs.bridge, ...COMMENT, '-j', forwardChain] },
    ],
  };
  if (inputs.nat) {
    const natChain = natChainName(inputs.networkId);
    rules.natChain = natChain;
    rules.nat = [versionMarker(), ...inputs.nat];
    rules.jumps.push({
      chain: 'PREROUTING',
      table: 'nat',
      rule: ['-i', inputs.bridge, ...COMMENT, '-j', natChain],
    });
  }
  return rules;
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_./:,=+-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

/** One rule as `iptables -S` prints it (`-A CHAIN args…`). */
export function ruleLine(chain: string, rule: string[]): string {
  return ['-A', chain, ...rule].map(quote).join(' ');
}

/**
 * The `iptables-restore --noflush` input that replaces both chains' contents at once (the chains
 * are created when missing; the built-in chains and everything else are left alone).
 */
export function restoreScript(rules: ContainmentRules): string {
  const lines = ['*filter', `:${rules.inputChain} - [0:0]`, `:${rules.forwardChain} - [0:0]`];
  lines.push(`-F ${rules.inputChain}`, `-F ${rules.forwardChain}`);
  for (const rule of rules.input) lines.push(ruleLine(rules.inputChain, rule));
  for (const rule of rules.forward) lines.push(ruleLine(rules.forwardChain, rule));
  lines.push('COMMIT');
  if (rules.natChain && rules.nat) {
    lines.push('*nat', `:${rules.natChain} - [0:0]`, `-F ${rules.natChain}`);
    for (const rule of rules.nat) lines.push(ruleLine(rules.natChain, rule));
    lines.push('COMMIT');
  }
  lines.push('');
  return lines.join('\n');
}

/** The IPv4 nameservers of a resolv.conf, loopback ones left out (Docker's DNS reaches those from the host's namespace). */
export function resolversOf(resolvConf: string): { all: string[]; remote: string[] } {
  const all: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m?.[1]) all.push(m[1]);
  }
  const v4 = all.filter((a) => isIpv4Cidr(a) && !a.includes('/'));
  return { all, remote: v4.filter((a) => !a.startsWith('127.')) };
}
