import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * A sandbox's egress policy: what it may reach on the internet, beyond the containment that always
 * holds (never the host, private ranges, metadata or other sandboxes; see docs/network.md).
 * `allow`: everything (minus `deny`); `deny`: nothing but DNS; `list`: only what `allow` names,
 * minus `deny`. Entries are IPv4 CIDRs (or addresses), host names, or `*.domain` wildcards (any
 * name below the domain, not the domain itself). Names are matched on ports 80 and 443 by the
 * egress proxy (HTTP Host, TLS SNI); other ports by CIDR only.
 */
export const egressModes = ['allow', 'deny', 'list'] as const;
export type EgressMode = (typeof egressModes)[number];

const IPV4_CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}(\/(3[0-2]|[12]?\d))?$/;
const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const egressEntrySchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .overwrite((s) => s.replace(/\.$/, ''))
  .refine((s) => IPV4_CIDR.test(s) || (HOST.test(s) && !/^\d+(\.\d+)*$/.test(s)), {
    message: 'must be an IPv4 address or CIDR, a host name or a *.domain wildcard',
  })
  .describe('An IPv4 CIDR or address, a host name, or *.domain (any name below domain)');

export const egressPolicySchema = z
  .strictObject({
    egress: z
      .enum(egressModes)
      .describe(
        '"allow": the internet (minus deny); "deny": nothing but DNS; "list": only allow, minus deny',
      ),
    allow: z.array(egressEntrySchema).max(256).default([]),
    deny: z.array(egressEntrySchema).max(256).default([]),
  })
  .describe('Egress policy: what the sandbox may reach on the internet (containment holds in every mode)');
export type EgressPolicy = z.infer<typeof egressPolicySchema>;

export const ALLOW_ALL: EgressPolicy = Object.freeze({
  egress: 'allow',
  allow: [],
  deny: [],
}) as EgressPolicy;

export function isCidrEntry(entry: string): boolean {
  return IPV4_CIDR.test(entry);
}

function ipv4ToInt(addr: string): number {
  return addr.split('.').reduce((acc, part) => acc * 256 + Number(part), 0) >>> 0;
}

/** Whether an IPv4 address is inside a CIDR (or equal to a bare address). */
export function cidrContains(cidr: string, addr: string): boolean {
  if (isIP(addr) !== 4) return false;
  const [net, bitsText] = cidr.includes('/') ? cidr.split('/') : [cidr, '32'];
  const bits = Number(bitsText);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (ipv4ToInt(net!) & mask) >>> 0 === (ipv4ToInt(addr) & mask) >>> 0;
}

/** Whether a host name matches a name entry: exactly, or below the domain of a `*.domain` entry. */
export function nameMatches(entry: string, host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (entry.startsWith('*.')) return name.endsWith(entry.slice(1)) && name.length > entry.length - 1;
  return name === entry;
}

/** The first entry naming `host` (by name) or `addr` (by CIDR). */
export function matchingEntry(
  entries: string[],
  host: string | undefined,
  addr?: string,
): string | undefined {
  return entries.find((e) =>
    isCidrEntry(e) ? addr !== undefined && cidrContains(e, addr) : host !== undefined && nameMatches(e, host),
  );
}

export type EgressDecision = { allowed: true } | { allowed: false; rule: string };

/**
 * The policy's answer for a connection to `host` (the name the sandbox asked for, when it named one)
 * at `addr` (the address previewd resolved, when it got that far). `rule` says why it was refused:
 * `deny` (the mode), `not_listed`, or `deny:<entry>`.
 */
export function decideEgress(policy: EgressPolicy, host: string | undefined, addr?: string): EgressDecision {
  if (policy.egress === 'deny') return { allowed: false, rule: 'deny' };
  const denied = matchingEntry(policy.deny, host, addr);
  if (denied) return { allowed: false, rule: `deny:${denied}` };
  if (policy.egress === 'list' && !matchingEntry(policy.allow, host, addr)) {
    return { allowed: false, rule: 'not_listed' };
  }
  return { allowed: true };
}

/** The policy a sandbox has: its own, else its owner's (`network.egressByOwner`), else the host's default. */
export function effectivePolicy(
  own: EgressPolicy | undefined,
  owner: string | undefined,
  network: { egressDefault: EgressPolicy; egressByOwner: Record<string, EgressPolicy> },
): EgressPolicy {
  return own ?? (owner ? network.egressByOwner[owner] : undefined) ?? network.egressDefault;
}
