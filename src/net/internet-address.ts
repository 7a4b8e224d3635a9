import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { PreviewdError } from '../domain/errors.js';

/**
 * Which addresses are on the internet, for every connection previewd makes on a user's behalf
 * to a host the user named (webhook targets, git sources): loopback, private, link-local,
 * metadata, multicast, documentation and reserved ranges are not. The address checked is the one
 * connected to (callers pin it), so a name that resolves elsewhere at connect time (DNS
 * rebinding) cannot switch the target.
 */

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT (RFC 6598; Alibaba's metadata 100.100.100.200)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata 169.254.169.254
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, limited broadcast
] as const) {
  blocked.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (reaches IPv4 addresses)
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (ULA; AWS metadata fd00:ec2::254)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

/** Whether an address is not on the internet (loopback, private, link-local, multicast, metadata …). */
export function isNonInternetAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  // IPv4-mapped (::ffff:a.b.c.d, however written): the IPv4 address decides.
  let compressed: string;
  try {
    compressed = new URL(`http://[${address}]/`).hostname.slice(1, -1).toLowerCase();
  } catch {
    return true; // a zone id or another form no URL holds: not a target
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (mapped) {
    const hi = Number.parseInt(mapped[1]!, 16);
    const lo = Number.parseInt(mapped[2]!, 16);
    return blocked.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
  }
  return blocked.check(compressed, 'ipv6');
}

export type Resolve = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolve: Resolve = (hostname) => lookup(hostname, { all: true, verbatim: true });

/**
 * The addresses `hostname` (a name or an IP literal) resolves to; unless `allowPrivate`, refuses
 * (`refuse(message)`) when any of them is not an internet address. `what` names the host in the
 * messages ("the webhook host", "the git host"), `setting` the configuration that allows it.
 */
export async function resolveInternetHost(
  hostname: string,
  opts: {
    allowPrivate: boolean;
    resolve?: Resolve;
    what: string;
    setting?: string;
    refuse: (message: string) => PreviewdError;
  },
): Promise<{ address: string; family: number }[]> {
  let addresses: { address: string; family: number }[];
  if (isIP(hostname)) {
    addresses = [{ address: hostname, family: isIP(hostname) }];
  } else {
    try {
      addresses = await (opts.resolve ?? systemResolve)(hostname);
    } catch (err) {
      throw opts.refuse(
        `${opts.what} ${hostname} does not resolve (${(err as { code?: string }).code ?? 'error'})`,
      );
    }
  }
  if (addresses.length === 0) throw opts.refuse(`${opts.what} ${hostname} resolves to no address`);
  if (!opts.allowPrivate) {
    const bad = addresses.find((a) => isNonInternetAddress(a.address));
    if (bad) {
      throw opts.refuse(
        `${opts.what} ${hostname} resolves to ${bad.address}, which is not an internet address${opts.setting ? ` (${opts.setting})` : ''}`,
      );
    }
  }
  return addresses;
}
