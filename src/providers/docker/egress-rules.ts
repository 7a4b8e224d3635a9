/**
 * The per-sandbox egress policy as iptables rules (pure data, table-checked). Two parts:
 * - nat `PREVIEWD-EGR-<net>` (jumped to from PREROUTING for the sandbox bridge): a sandbox whose
 *   policy needs names checked has its TCP 80 and 443 redirected to the egress proxy on the host
 *   (egress-proxy.ts), which reads the HTTP Host or TLS SNI, resolves the name itself and connects
 *   itself; the sandbox's chosen address is never used.
 * - the FWD chain's egress slot (after every containment refusal): other ports by CIDR only, per
 *   sandbox source address. `deny`: everything refused (DNS passed earlier in the chain); `list`:
 *   the allowed CIDRs minus the denied ones; `allow`: the denied CIDRs refused.
 */
import { type EgressPolicy, isCidrEntry } from '../../domain/egress.js';
import { canonicalCidr, REJECT } from './containment-rules.js';

export interface EgressSandbox {
  /** The sandbox's IPv4 address on the sandbox network. */
  addr: string;
  policy: EgressPolicy;
}

export interface EgressProxyPorts {
  /** Host port the proxy reads HTTP (port 80) on. */
  http: number;
  /** Host port the proxy reads TLS (port 443) on. */
  tls: number;
}

/** Marks every egress rule (`previewd doctor`, which cannot know the policies, compares the rest). */
export const EGRESS_COMMENT = 'previewd egress';

/** The rule with the egress comment before its target. */
export function tagged(rule: string[]): string[] {
  const j = rule.indexOf('-j');
  return [...rule.slice(0, j), '-m', 'comment', '--comment', EGRESS_COMMENT, ...rule.slice(j)];
}

/** Whether a policy needs names checked (its 80/443 traffic goes through the proxy). */
export function needsProxy(policy: EgressPolicy): boolean {
  return policy.egress !== 'allow' || policy.deny.some((e) => !isCidrEntry(e));
}

export function egressRules(
  sandboxes: EgressSandbox[],
  ports: EgressProxyPorts | undefined,
): { forward: string[][]; nat: string[][] } {
  const forward: string[][] = [];
  const nat: string[][] = [];
  const sorted = [...sandboxes].sort((a, b) => a.addr.localeCompare(b.addr));
  for (const { addr, policy } of sorted) {
    const src = ['-s', `${addr}/32`];
    if (ports && needsProxy(policy)) {
      for (const [dport, to] of [
        [80, ports.http],
        [443, ports.tls],
      ] as const) {
        nat.push([
          ...src,
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
        ]);
      }
    }
    const cidrs = (entries: string[]) => [...new Set(entries.filter(isCidrEntry).map(canonicalCidr))];
    if (policy.egress === 'deny') {
      forward.push([...src, ...REJECT]);
      continue;
    }
    for (const cidr of cidrs(policy.deny)) forward.push([...src, '-d', cidr, ...REJECT]);
    if (policy.egress === 'list') {
      for (const cidr of cidrs(policy.allow)) forward.push([...src, '-d', cidr, '-j', 'RETURN']);
      forward.push([...src, ...REJECT]);
    }
  }
  return { forward: forward.map(tagged), nat: nat.map(tagged) };
}

/** The IN chain's rules that let sandboxes reach the proxy's host ports. */
export function proxyPortRules(ports: EgressProxyPorts | undefined): string[][] {
  if (!ports) return [];
  return [ports.http, ports.tls].map((p) =>
    tagged(['-p', 'tcp', '-m', 'tcp', '--dport', String(p), '-j', 'RETURN']),
  );
}
