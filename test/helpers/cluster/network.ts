import { run, tryRun } from './commands.js';

/**
 * The cluster test bed's network on this host: one bridge (`pvdc-br`) holding the bridge address,
 * and per host a network namespace `pvdc-<i>` whose `eth0` (a veth pair, host end `pvdc-<i>h` on
 * the bridge) holds `<net>.1<i>`. No default route in the namespaces: the hosts reach each other
 * and this host, nothing else. Every name starts with `pvdc-`, so a crashed run is found and removed.
 */
export const PREFIX = 'pvdc';
export const BRIDGE = `${PREFIX}-br`;

export const netnsName = (i: number) => `${PREFIX}-${i}`;
export const hostVeth = (i: number) => `${PREFIX}-${i}h`;

/** The ranges each host's engine is given (10.230.<i>.0/24 bridge, 10.231.<16i>.0/20 pools) and the Swarm's overlay pool. */
export const ENGINE_RANGES = ['10.230.0.0/16', '10.231.0.0/16', '10.232.0.0/16'];
export const SWARM_POOL = '10.232.0.0/16';
export const engineBip = (i: number) => `10.230.${i}.1/24`;
export const enginePool = (i: number) => `base=10.231.${i * 16}.0/20,size=24`;

function ipv4ToInt(addr: string): number {
  const parts = addr.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${addr}`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function cidrRange(cidr: string): [number, number] {
  const [addr, bitsText] = cidr.split('/');
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  const size = 2 ** (32 - bits);
  const start = Math.floor(ipv4ToInt(addr!) / size) * size;
  return [start, start + size - 1];
}

export function overlaps(a: string, b: string): boolean {
  const [a0, a1] = cidrRange(a);
  const [b0, b1] = cidrRange(b);
  return a0 <= b1 && b0 <= a1;
}

/** Fails when a range the bed would use is routed on this host already (by something else). */
export async function assertRangesFree(ranges: string[]): Promise<void> {
  const routes = (await run('ip', ['-4', '-o', 'route', 'show', 'table', 'all']))
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 2 && !f.includes(BRIDGE))
    .map((f) => (/^(local|broadcast|unicast|multicast)$/.test(f[0]!) ? f[1]! : f[0]!))
    .filter((dest) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dest) && dest !== '0.0.0.0/0');
  for (const range of ranges) {
    const hit = routes.find((dest) => overlaps(dest, range));
    if (hit) throw new Error(`the cluster test bed needs ${range}, but this host routes ${hit} already`);
  }
}

export async function createBridge(address: string): Promise<void> {
  await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${address}/24`, 'dev', BRIDGE]);
  await run('ip', ['link', 'set', BRIDGE, 'up']);
  // Docker's FORWARD policy is DROP and bridged frames pass through it (br_netfilter).
  await run('iptables', ['-I', 'FORWARD', '-i', BRIDGE, '-o', BRIDGE, '-j', 'ACCEPT']);
}

export async function createHostNetns(i: number, address: string): Promise<void> {
  const ns = netnsName(i);
  const peer = `${PREFIX}-${i}n`;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', hostVeth(i), 'type', 'veth', 'peer', 'name', peer]);
  await run('ip', ['link', 'set', peer, 'netns', ns]);
  await run('ip', ['link', 'set', hostVeth(i), 'master', BRIDGE, 'up']);
  const inNs = (...args: string[]) => run('ip', ['-n', ns, ...args]);
  await inNs('link', 'set', 'lo', 'up');
  await inNs('link', 'set', peer, 'name', 'eth0');
  await inNs('addr', 'add', `${address}/24`, 'dev', 'eth0');
  await inNs('link', 'set', 'eth0', 'up');
}

/** Cuts (or restores) a host's only link: its address stops answering, as if unplugged. */
export async function setLink(i: number, up: boolean): Promise<void> {
  await run('ip', ['link', 'set', hostVeth(i), up ? 'up' : 'down']);
}

/** Removes every namespace, link and FORWARD rule of the bed (this run's or a crashed one's). */
export async function removeNetwork(): Promise<void> {
  for (const line of ((await tryRun('ip', ['netns', 'list'])) ?? '').split('\n')) {
    const name = new RegExp(`^(${PREFIX}-\\d+)\\b`).exec(line)?.[1];
    if (name) await tryRun('ip', ['netns', 'del', name]);
  }
  for (const line of ((await tryRun('ip', ['-o', 'link', 'show'])) ?? '').split('\n')) {
    const name = new RegExp(`^\\d+: (${PREFIX}-[a-z0-9]+)[@:]`).exec(line)?.[1];
    if (name) await tryRun('ip', ['link', 'del', name]);
  }
  const rules = ((await tryRun('iptables', ['-S', 'FORWARD'])) ?? '').split('\n');
  for (const rule of rules.filter((r) => r.startsWith('-A ') && r.includes(BRIDGE))) {
    await tryRun('iptables', ['-D', ...rule.slice(3).trim().split(/\s+/)]);
  }
}
