import { lookup } from 'node:dns/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import {
  CHAIN_PREFIX,
  type ContainmentRules,
  chainNames,
  containmentRules,
  installedVersion,
  natChainName,
  RULES_VERSION,
  resolversOf,
  restoreScript,
  ruleLine,
} from './containment-rules.js';
import { EGRESS_COMMENT } from './egress-rules.js';
import { proxyEnv } from './host-trust.js';
import { Iptables } from './iptables.js';

export type ContainmentState = 'ok' | 'off' | 'unavailable' | 'missing';

export interface ContainmentStatus {
  state: ContainmentState;
  detail: string;
  /** What to do when the state is not ok. */
  fix?: string;
  /** ensure(): whether rules had to be written (false when everything was already in place). */
  changed?: boolean;
  /** The rule set in force (or wanted), when the facts could be read. */
  rules?: ContainmentRules;
}

export interface ContainmentOptions {
  docker: Docker;
  config: Pick<Config, 'network' | 'docker'>;
  /** The sandbox network's id (creates the network when missing; doctor passes a look-up instead). */
  networkId: () => Promise<string | undefined>;
  /** Host TCP ports sandboxes may reach (the edge's public ports) when network.allowEdge is on. */
  edgePorts?: () => number[];
  log?: Logger;
  iptables?: Iptables;
  /** Where the host's resolver configuration is read (tests). */
  resolvConfPaths?: string[];
  daemonJsonPath?: string;
  /** Where the HTTP(S) proxy settings passed into sandboxes are read (default: previewd's environment). */
  env?: NodeJS.ProcessEnv;
  /**
   * The egress policy's rules (src/sandboxes/egress-policies.ts): the FWD chain's slot, the nat
   * redirects to the egress proxy and the proxy's host ports (reachable through the IN chain).
   */
  egress?: () => Promise<{ forward: string[][]; nat: string[][]; input: string[][] } | undefined>;
}

const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';
const OWN_CHAIN = new RegExp(`^${CHAIN_PREFIX}(IN|FWD)-([0-9a-f]{12})$`);

/** Docker's embedded DNS forwards to these from the container's namespace (non-loopback nameservers). */
export function containerResolvers(
  resolvConfPaths = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'],
  daemonJsonPath = '/etc/docker/daemon.json',
): string[] {
  try {
    const daemon = JSON.parse(readFileSync(daemonJsonPath, 'utf8')) as { dns?: unknown };
    if (Array.isArray(daemon.dns) && daemon.dns.length > 0) {
      return daemon.dns.filter((d): d is string => typeof d === 'string' && !d.startsWith('127.'));
    }
  } catch {
    // no daemon.json, or no dns in it
  }
  // Docker reads /etc/resolv.conf; when it names only loopback resolvers (systemd-resolved), the
  // file systemd-resolved keeps with the real upstream ones.
  for (const path of resolvConfPaths) {
    if (!existsSync(path)) continue;
    const { all, remote } = resolversOf(readFileSync(path, 'utf8'));
    if (remote.length > 0) return remote;
    if (all.length > 0 && !all.every((a) => a.startsWith('127.'))) return [];
  }
  return [];
}

/** The IPv4 address and port of each HTTP(S) proxy the sandboxes are given (host names are resolved). */
export async function proxyTargets(env: NodeJS.ProcessEnv): Promise<{ addr: string; port: number }[]> {
  const out: { addr: string; port: number }[] = [];
  for (const [name, value] of Object.entries(proxyEnv(env))) {
    if (/no_proxy/i.test(name)) continue;
    let url: URL;
    try {
      url = new URL(value.includes('://') ? value : `http://${value}`);
    } catch {
      continue;
    }
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const addrs = isIP(host)
      ? [host]
      : await lookup(host, { all: true, family: 4 }).then(
          (r) => r.map((a) => a.address),
          () => [],
        );
    for (const addr of addrs) if (isIP(addr) === 4) out.push({ addr, port });
  }
  return out;
}

function fixFor(reason: 'root' | 'binary' | 'remote' | 'docker-user'): string {
  switch (reason) {
    case 'root':
      return 'Run previewd as root (or with CAP_NET_ADMIN) so it can install its iptables chains; or set network.containment: off (PREVIEWD_NETWORK_CONTAINMENT=off) and contain the sandbox network yourself.';
    case 'binary':
      return 'Install iptables (Debian: apt-get install iptables; make setup does it as root).';
    case 'remote':
      return 'The Docker engine runs on another host or in a VM: contain the sandbox bridge there (docs/network.md has the rule set), and set network.containment: off here.';
    case 'docker-user':
      return 'Docker manages no iptables rules (daemon.json "iptables": false?): turn that back on, or contain the sandbox bridge yourself and set network.containment: off.';
  }
}

/**
 * Installs and checks the sandbox network's containment (see containment-rules.ts): previewd's own
 * chains and two jumps into them, written only when they differ from what is wanted, never
 * removed on stop (another control plane on the engine may share the network), re-asserted every
 * network.checkIntervalSec (an engine or firewall restart may have flushed them).
 */
export class NetworkContainment {
  private readonly iptables: Iptables;
  private timer?: NodeJS.Timeout;
  private running: Promise<unknown> = Promise.resolve();
  private lastState?: ContainmentState;
  private lastDetail?: string;
  private installed = false;

  constructor(private readonly opts: ContainmentOptions) {
    this.iptables = opts.iptables ?? new Iptables();
  }

  get mode(): Config['network']['containment'] {
    return this.opts.config.network.containment;
  }

  /** Installs what is missing. "required" mode: anything but ok throws; "auto": a warning. */
  async ensure(): Promise<ContainmentStatus> {
    const status = await this.serial(() => this.apply(true)).catch(
      (err): ContainmentStatus => ({
        state: 'unavailable',
        detail: `the rules could not be installed: ${(err as Error).message}`,
        fix: 'See docs/network.md; previewd doctor shows what is in place.',
      }),
    );
    this.report(status);
    if (this.mode === 'required' && status.state !== 'ok') {
      // A start-up refusal, not an API error: the message names the setting and the fix.
      throw new Error(
        `network.containment is "required" but ${status.detail}. Fix: ${status.fix ?? 'see docs/network.md'}`,
      );
    }
    return status;
  }

  /** Rewrites the rules now (an egress policy changed, a sandbox got or lost its address). */
  async refresh(): Promise<ContainmentStatus> {
    const status = await this.serial(() => this.apply(true));
    this.report(status);
    return status;
  }

  /** Reads what is installed, changes nothing (doctor). */
  check(): Promise<ContainmentStatus> {
    return this.serial(() => this.apply(false));
  }

  /** Re-asserts the rules every network.checkIntervalSec. */
  start(): void {
    if (this.mode === 'off' || this.timer) return;
    this.timer = setInterval(() => {
      void this.serial(() => this.apply(true))
        .then((s) => this.report(s))
        .catch((err) => this.opts.log?.warn({ err }, 'sandbox network containment check failed'));
    }, this.opts.config.network.checkIntervalSec * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running.catch(() => undefined);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.running.then(fn, fn);
    this.running = next.catch(() => undefined);
    return next;
  }

  private report(status: ContainmentStatus): void {
    const log = this.opts.log;
    if (!log) return;
    const same = status.state === this.lastState && status.detail === this.lastDetail;
    this.lastState = status.state;
    this.lastDetail = status.detail;
    if (status.state === 'ok') {
      const chains = status.rules && [status.rules.inputChain, status.rules.forwardChain];
      // After the first install, a rewrite means something flushed or changed them (an engine or
      // firewall restart, an operator, a control plane with other network.* settings).
      if (status.changed && this.installed)
        log.warn({ chains }, 'sandbox network containment rules were missing or changed: put back');
      else if (status.changed) log.info({ chains }, status.detail);
      this.installed = true;
    } else if (!same && status.state !== 'off') {
      log.warn({ fix: status.fix }, `sandbox network containment: ${status.detail}`);
    }
  }

  private async unavailable(): Promise<ContainmentStatus | undefined> {
    const host = process.env.DOCKER_HOST;
    if (
      process.platform !== 'linux' ||
      (host && !host.startsWith('unix://') && !this.opts.config.docker.socketPath)
    ) {
      return { state: 'unavailable', detail: 'the Docker engine is not on this host', fix: fixFor('remote') };
    }
    const probe = await this.iptables.run(['-S', 'INPUT']);
    if (probe.spawnError) {
      return { state: 'unavailable', detail: 'iptables is not installed', fix: fixFor('binary') };
    }
    if (!probe.ok) {
      const uid = process.getuid?.();
      return {
        state: 'unavailable',
        detail: `iptables does not run${uid !== 0 ? ' (previewd is not root)' : ''}: ${probe.stderr.trim().split('\n')[0]}`,
        fix: fixFor('root'),
      };
    }
    if (!(await this.iptables.list('DOCKER-USER'))) {
      return {
        state: 'unavailable',
        detail: 'the DOCKER-USER chain does not exist',
        fix: fixFor('docker-user'),
      };
    }
    return undefined;
  }

  /** The rule set wanted for the sandbox network now, from the engine's and the host's facts. */
  async wanted(networkId: string): Promise<ContainmentRules | ContainmentStatus> {
    const docker = this.opts.docker;
    const net = (await docker.getNetwork(networkId).inspect()) as Docker.NetworkInspectInfo;
    const bridge = net.Options?.[BRIDGE_NAME_OPTION] ?? `br-${net.Id.slice(0, 12)}`;
    if (!existsSync(`/sys/class/net/${bridge}`)) {
      return {
        state: 'unavailable',
        detail: `the sandbox bridge ${bridge} is not on this host`,
        fix: fixFor('remote'),
      };
    }
    // Docker's bridges: refused by the `br-+` wildcard plus the custom names, unless the host has
    // a `br-…` interface of its own (its uplink, say), then each by name.
    const named = new Set(['docker0']);
    const all = new Set(['docker0']);
    for (const n of await docker.listNetworks({ filters: { driver: ['bridge'] } })) {
      const name = n.Options?.[BRIDGE_NAME_OPTION];
      if (name) named.add(name);
      all.add(name ?? `br-${n.Id.slice(0, 12)}`);
    }
    const foreign = readdirSync('/sys/class/net').filter((i) => i.startsWith('br-') && !all.has(i));
    const bridgeWildcard = foreign.length === 0;
    const network = this.opts.config.network;
    const egress = await this.opts.egress?.();
    return containmentRules({
      networkId: net.Id,
      bridge,
      resolvers: containerResolvers(this.opts.resolvConfPaths, this.opts.daemonJsonPath),
      allowPrivate: network.allowPrivate,
      dockerBridges: [...(bridgeWildcard ? named : all)].sort(),
      bridgeWildcard,
      hostTcpPorts: network.allowEdge ? (this.opts.edgePorts?.() ?? []) : [],
      egressInput: egress?.input,
      proxies: await proxyTargets(this.opts.env ?? process.env),
      egress: egress?.forward,
      nat: egress?.nat,
    });
  }

  private async apply(write: boolean): Promise<ContainmentStatus> {
    if (this.mode === 'off') {
      return {
        state: 'off',
        detail: 'off (network.containment): sandboxes can reach the host and private networks',
      };
    }
    const unavailable = await this.unavailable();
    if (unavailable) return unavailable;
    const networkId = await this.opts.networkId();
    if (!networkId) {
      return {
        state: 'missing',
        detail: `the sandbox network ${this.opts.config.docker.network} does not exist yet`,
        fix: 'previewd serve creates it and its rules at start.',
      };
    }
    const wanted = await this.wanted(networkId);
    if (!('inputChain' in wanted)) return wanted;
    const missing: string[] = [];
    let changed = false;

    // Without the policies (doctor), the egress rules (marked) are not compared.
    const own = (lines: string[] | undefined) =>
      this.opts.egress ? lines : lines?.filter((l) => !l.includes(`"${EGRESS_COMMENT}"`));
    const current = {
      input: own(await this.iptables.list(wanted.inputChain)),
      forward: own(await this.iptables.list(wanted.forwardChain)),
      nat: wanted.natChain ? await this.iptables.list(wanted.natChain, 'nat') : undefined,
    };
    const newer = Math.max(
      installedVersion(current.input ?? []) ?? 0,
      installedVersion(current.forward ?? []) ?? 0,
    );
    const chainsOk =
      newer > RULES_VERSION ||
      (sameRules(current.input, wanted.inputChain, wanted.input) &&
        sameRules(current.forward, wanted.forwardChain, wanted.forward) &&
        (!wanted.natChain || sameRules(current.nat, wanted.natChain, wanted.nat ?? [])));
    if (!chainsOk) {
      if (!write) missing.push(`chains ${wanted.inputChain}/${wanted.forwardChain} missing or out of date`);
      else {
        const res = await this.iptables.restore(restoreScript(wanted));
        if (!res.ok) throw new Error(`iptables-restore failed: ${res.stderr.trim()}`);
        changed = true;
      }
    }
    for (const jump of wanted.jumps) {
      const line = ruleLine(jump.chain, jump.rule);
      const table = jump.table ? ['-t', jump.table] : [];
      const count = ((await this.iptables.list(jump.chain, jump.table)) ?? []).filter(
        (l) => l === line,
      ).length;
      if (count === 0) {
        if (!write) missing.push(`jump from ${jump.chain}`);
        else {
          const res = await this.iptables.run([...table, '-I', jump.chain, '1', ...jump.rule]);
          if (!res.ok) throw new Error(`iptables -I ${jump.chain} failed: ${res.stderr.trim()}`);
          changed = true;
        }
      }
      // Two control planes starting together may both have inserted it: one is enough.
      for (let extra = count - 1; write && extra > 0; extra--) {
        await this.iptables.run([...table, '-D', jump.chain, ...jump.rule]);
      }
    }
    if (write) await this.collect(networkId);
    if (missing.length > 0) {
      return {
        state: 'missing',
        detail: `sandbox network containment is not installed (${missing.join(', ')})`,
        fix: 'Start previewd serve as root: it installs the rules (docs/network.md).',
        rules: wanted,
      };
    }
    return {
      state: 'ok',
      detail: `sandbox network ${this.opts.config.docker.network} contained (${wanted.inputChain}, ${wanted.forwardChain}${newer > RULES_VERSION ? `, rules v${newer} of a newer previewd left in place` : ''})`,
      changed,
      rules: wanted,
    };
  }

  /** Removes previewd's chains (and their jumps) for sandbox networks the engine no longer has. */
  private async collect(keepId: string): Promise<void> {
    const stale = async (): Promise<Set<string>> => {
      const ids = (await this.opts.docker.listNetworks()).map((n) => n.Id.slice(0, 12));
      const out = new Set<string>();
      const all = await this.iptables.run(['-S']);
      for (const line of all.stdout.split('\n')) {
        const m = /^-N (\S+)$/.exec(line);
        const own = m?.[1] ? OWN_CHAIN.exec(m[1]) : null;
        if (own?.[2] && own[2] !== keepId.slice(0, 12) && !ids.includes(own[2])) out.add(m![1]!);
      }
      return out;
    };
    const first = await stale();
    if (first.size === 0) return;
    const again = await stale(); // a network created meanwhile keeps its chains
    for (const chain of first) {
      if (!again.has(chain)) continue;
      await removeChain(this.iptables, chain);
      const id = OWN_CHAIN.exec(chain)?.[2];
      if (id && chain.includes('-FWD-') && (await this.iptables.list(natChainName(id), 'nat')))
        await removeNatChain(this.iptables, natChainName(id));
      this.opts.log?.info({ chain }, 'removed the containment chain of a sandbox network that is gone');
    }
  }
}

/** Removes one of previewd's chains and every jump to it from INPUT and DOCKER-USER. */
async function removeChain(iptables: Iptables, chain: string): Promise<void> {
  for (const builtin of ['INPUT', 'DOCKER-USER']) {
    for (const line of (await iptables.list(builtin)) ?? []) {
      if (!line.endsWith(` -j ${chain}`)) continue;
      await iptables.run(['-D', builtin, ...splitRule(line).slice(2)]);
    }
  }
  await iptables.run(['-F', chain]);
  await iptables.run(['-X', chain]);
}

/** Removes the nat chain of a sandbox network's egress redirects and its jump from PREROUTING. */
async function removeNatChain(iptables: Iptables, chain: string): Promise<void> {
  for (const line of (await iptables.list('PREROUTING', 'nat')) ?? []) {
    if (!line.endsWith(` -j ${chain}`)) continue;
    await iptables.run(['-t', 'nat', '-D', 'PREROUTING', ...splitRule(line).slice(2)]);
  }
  await iptables.run(['-t', 'nat', '-F', chain]);
  await iptables.run(['-t', 'nat', '-X', chain]);
}

/** Removes the containment of one sandbox network (its chains and their jumps); previewd itself never does this on stop. */
export async function removeContainment(iptables: Iptables, networkId: string): Promise<void> {
  const { inputChain, forwardChain } = chainNames(networkId);
  await removeChain(iptables, inputChain);
  await removeChain(iptables, forwardChain);
  if (await iptables.list(natChainName(networkId), 'nat'))
    await removeNatChain(iptables, natChainName(networkId));
}

function sameRules(current: string[] | undefined, chain: string, rules: string[][]): boolean {
  if (!current) return false;
  const want = [`-N ${chain}`, ...rules.map((r) => ruleLine(chain, r))];
  return current.length === want.length && current.every((line, i) => line === want[i]);
}

/** Splits an `iptables -S` line into arguments (double-quoted words kept whole). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line))
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}
