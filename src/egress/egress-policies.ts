import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { type EgressPolicy, effectivePolicy } from '../domain/egress.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { EventBus } from '../events/bus.js';
import { egressRules, proxyPortRules } from '../providers/docker/egress-rules.js';
import { LABEL_MANAGED, sandboxIdOf } from '../providers/docker/labels.js';
import type { Store } from '../store/store.js';
import { type EgressDenial, EgressProxy } from './egress-proxy.js';

/** At most this many `egress.denied` events per sandbox a minute; the rest are counted (metrics, `suppressed`). */
const EVENTS_PER_MINUTE = 30;

export interface EgressPoliciesOptions {
  docker: Docker;
  store: Store;
  bus: EventBus;
  config: Pick<Config, 'network' | 'docker'>;
  registry: Registry;
  /** The sandbox network's id (created by the provider). */
  networkId: () => Promise<string>;
  log?: Logger;
}

/**
 * Each running sandbox's address and policy (its own, its owner's, or the default), the egress
 * proxy that enforces names, and the iptables rules that send it there (handed to the containment).
 */
export class EgressPolicies {
  private byAddr = new Map<string, { sandboxId: string; policy: EgressPolicy }>();
  private proxy?: EgressProxy;
  private readonly denied: Counter<'reason' | 'port'>;
  private readonly allowed: Counter<'port'>;
  private readonly budget = new Map<string, { windowStart: number; sent: number; suppressed: number }>();

  constructor(private readonly opts: EgressPoliciesOptions) {
    this.denied = new Counter({
      name: 'previewd_egress_denied_total',
      help: 'Sandbox connections the egress proxy refused, by reason and port',
      labelNames: ['reason', 'port'],
      registers: [opts.registry],
    });
    this.allowed = new Counter({
      name: 'previewd_egress_proxied_total',
      help: 'Sandbox connections the egress proxy connected, by port',
      labelNames: ['port'],
      registers: [opts.registry],
    });
  }

  policyOf(record: Pick<SandboxRecord, 'network' | 'owner'>): EgressPolicy {
    return effectivePolicy(record.network, record.owner, this.opts.config.network);
  }

  /** Starts the proxy on the sandbox network's gateway. */
  async start(): Promise<void> {
    const net = (await this.opts.docker
      .getNetwork(await this.opts.networkId())
      .inspect()) as Docker.NetworkInspectInfo;
    const gateway = net.IPAM?.Config?.find((c) => c.Gateway && !c.Gateway.includes(':'))?.Gateway;
    if (!gateway) throw new Error(`the sandbox network ${net.Name} has no IPv4 gateway`);
    this.proxy = new EgressProxy({
      listenHost: gateway,
      lookup: (addr) => this.byAddr.get(addr),
      resolver: this.opts.config.network.egressResolver,
      allowPrivate: this.opts.config.network.allowPrivate,
      onDenied: (d) => this.onDenied(d),
      onAllowed: (port) => this.allowed.inc({ port: String(port) }),
      log: this.opts.log,
    });
    await this.proxy.start();
  }

  async stop(): Promise<void> {
    await this.proxy?.stop();
  }

  /** The rules for the containment (re-read now: addresses and policies). */
  async rules(): Promise<{ forward: string[][]; nat: string[][]; input: string[][] }> {
    await this.reload();
    const sandboxes = [...this.byAddr.entries()].map(([addr, v]) => ({ addr, policy: v.policy }));
    const ports = this.proxy?.ports;
    const rules = egressRules(sandboxes, ports);
    // The proxy's ports only while some sandbox is sent there: control planes sharing a network
    // without policies then write the same chains (each proxy has its own ports).
    return { ...rules, input: rules.nat.length > 0 ? proxyPortRules(ports) : [] };
  }

  /** Reads the running sandboxes' addresses on the sandbox network and their policies. */
  private async reload(): Promise<void> {
    const networkName = this.opts.config.docker.network;
    const containers = await this.opts.docker.listContainers({
      filters: { label: [`${LABEL_MANAGED}=true`], status: ['running', 'paused'] },
    });
    const next = new Map<string, { sandboxId: string; policy: EgressPolicy }>();
    for (const c of containers) {
      const sandboxId = sandboxIdOf(c.Labels, c.Names); // claimed warm pool containers by name
      if (!sandboxId) continue;
      const nets = c.NetworkSettings?.Networks ?? {};
      const addr = (nets[networkName] ?? Object.values(nets).find((n) => n.NetworkID && n.IPAddress))
        ?.IPAddress;
      if (!addr) continue;
      const record = await this.opts.store.getSandbox(sandboxId);
      if (!record) continue; // another control plane's sandbox: its own rules
      next.set(addr, { sandboxId, policy: this.policyOf(record) });
    }
    this.byAddr = next;
  }

  private onDenied(d: EgressDenial): void {
    this.denied.inc({ reason: d.reason, port: String(d.port) });
    this.opts.log?.info(
      { sandboxId: d.sandboxId, host: d.host, port: d.port, rule: d.rule },
      'egress refused',
    );
    if (!d.sandboxId) return;
    const now = Date.now();
    let b = this.budget.get(d.sandboxId);
    if (!b || now - b.windowStart > 60_000) {
      b = { windowStart: now, sent: 0, suppressed: b?.suppressed ?? 0 };
      this.budget.set(d.sandboxId, b);
    }
    if (b.sent >= EVENTS_PER_MINUTE) {
      b.suppressed++;
      return;
    }
    b.sent++;
    const suppressed = b.suppressed;
    b.suppressed = 0;
    void this.opts.bus
      .publish({
        type: 'egress.denied',
        sandboxId: d.sandboxId,
        data: {
          ...(d.host ? { host: d.host } : {}),
          port: d.port,
          rule: d.rule,
          ...(suppressed > 0 ? { suppressed } : {}),
        },
      })
      .catch((err) => this.opts.log?.warn({ err }, 'egress.denied event not stored'));
  }
}
