import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { KeyRing } from './api/key-ring.js';
import { Metrics } from './api/metrics.js';
import { buildApi } from './api/server.js';
import { ClusterNode } from './cluster/cluster.js';
import { ensureApiKeys, parseKeyEntries } from './config/api-keys.js';
import { splitHostPort } from './config/load.js';
import type { Config } from './config/schema.js';
import type { EdgeCluster } from './edge/edge-cluster.js';
import { Edge } from './edge/edge-server.js';
import { LocalSandboxDirectory, type SandboxDirectory } from './edge/sandbox-directory.js';
import { EgressPolicies } from './egress/egress-policies.js';
import { EventBus } from './events/bus.js';
import { WarmPool } from './pool/warm-pool.js';
import { createDockerClient } from './providers/docker/client.js';
import { NetworkContainment } from './providers/docker/containment.js';
import { DockerProvider } from './providers/docker/docker-provider.js';
import type { SandboxProvider } from './providers/provider.js';
import { Admission } from './sandboxes/admission.js';
import { ExpiryReaper } from './sandboxes/expiry.js';
import { IdleReaper } from './sandboxes/idle-reaper.js';
import { IoWatchers } from './sandboxes/io-watchers.js';
import { ProcessRegistry } from './sandboxes/processes.js';
import { Reconciler } from './sandboxes/reconciler.js';
import { SandboxService } from './sandboxes/service.js';
import { SandboxUsage } from './sandboxes/usage.js';
import { SnapshotService } from './snapshots/snapshot-service.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { TraefikMode } from './traefik/mode.js';
import { NodeUsage } from './usage/node-usage.js';
import { version } from './version.js';
import { Webhooks } from './webhooks/webhooks.js';
import { LayerBudget, snapshotLayersOf } from './workspaces/layer-budget.js';
import { LayerStore } from './workspaces/layers.js';
import { canMount } from './workspaces/mounts.js';
import { SandboxStorage } from './workspaces/sandbox-storage.js';

export interface Previewd {
  config: Config;
  store: Store;
  provider: SandboxProvider;
  /** The sandbox network's iptables containment (docs/network.md). */
  containment: NetworkContainment;
  /** Per-sandbox egress policies and the egress proxy (docs/network.md). */
  egress: EgressPolicies;
  bus: EventBus;
  service: SandboxService;
  /** This node (its id; in a cluster its lease, placement and forwarding). */
  cluster: ClusterNode;
  reconciler: Reconciler;
  idleReaper: IdleReaper;
  expiry: ExpiryReaper;
  admission: Admission;
  /** Warm pool of pre-started containers per runtime image (docs/pool.md). */
  pool: WarmPool;
  processes: ProcessRegistry;
  watchers: IoWatchers;
  /** This node's usage sampling of its own sandboxes (docs/usage.md). */
  usage: NodeUsage;
  /** Signed webhooks: the dispatcher and sender of this node (docs/webhooks.md). */
  webhooks: Webhooks;
  /** The layer store's disk budget and LRU eviction (docs/layers.md). */
  layerBudget: LayerBudget;
  api: FastifyInstance;
  edge: Edge;
  /** Base URL of the edge's plain-HTTP listener, once started. */
  edgeUrl?: string;
  /** The key generated on this first start, if any (to print once). */
  generatedKey?: string;
  keys: string[];
  /** Base URL the API listens on, once started. */
  apiUrl?: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Parts a cluster (or a test) gives the composition root instead of the single-host defaults. */
export interface PreviewdParts {
  /** The other nodes, for the edge to forward previews of their sandboxes (edge-cluster.ts). */
  edgeCluster?: EdgeCluster;
  /** The sandbox directory the edge asks, built around this node's own. */
  sandboxDirectory?: (local: SandboxDirectory) => SandboxDirectory;
}

/** The composition root: wires store, provider, bus, service, reconciler and API for `previewd serve`. */
export async function createPreviewd(
  config: Config,
  log: Logger,
  parts: PreviewdParts = {},
): Promise<Previewd> {
  const ensured = ensureApiKeys(config);
  const generated = ensured.generated;
  const keyEntries = parseKeyEntries(ensured.keys);
  const keys = keyEntries.map((e) => e.key);
  const store = await openStore(config, { onError: (err) => log.warn({ err }, 'store connection failed') });
  await store.migrate();
  const keyRing = new KeyRing(store, keyEntries);
  const docker = createDockerClient(config);
  // This node: `local` on a single host; in a cluster its lease, placement and forwarding.
  const cluster = new ClusterNode({ config, store, docker, log: log.child({ component: 'cluster' }) });
  // Overlay stacks and disks need root (mount, losetup); without them: plain directories, no quota.
  const mountable = await canMount();
  if (!mountable.ok) {
    log.warn(
      { reason: mountable.reason },
      'sandbox storage: plain directories (no copy-on-write layers, no disk quotas); template dependencies are copied',
    );
  }
  const layers = new LayerStore(config.dataDir);
  const storage = new SandboxStorage({
    dataDir: config.dataDir,
    layers,
    mounts: mountable.ok,
  });
  const provider = new DockerProvider({ docker, config, storage });
  // In a cluster, other nodes write events too: the bus also looks for them four times a second.
  const bus = new EventBus(store, { pollMs: config.cluster.enabled ? 250 : 0 });
  const service: SandboxService = new SandboxService({
    store,
    provider,
    bus,
    config,
    log: log.child({ component: 'sandboxes' }),
    // Built below (each needs the service): called only once previewd runs.
    // This node: its id on every row it inserts, its fence on every write.
    node: cluster.identity,
    gate: { admit: (request): Promise<void> => admission.admit(request) },
    beforeSleep: (id) => edge.withdrawFront(id),
    // The revoke is answered once HAProxy no longer serves the sandbox's private routes.
    afterTokensRevoked: async () => {
      await edge.front?.settled();
    },
    onNetworkChange: () => refreshEgress(),
  });
  const reconciler = new Reconciler({
    store,
    provider,
    service,
    bus,
    config,
    log: log.child({ component: 'reconciler' }),
  });
  const metrics = new Metrics(store);
  // The warm pool binds each sandbox's mounts into a running container: it needs host mounts.
  if (!mountable.ok && Object.values(config.pool).some((n) => n > 0)) {
    log.warn({ reason: mountable.reason }, 'warm pool off: previewd cannot mount on this host');
  }
  const pool = new WarmPool({
    config: mountable.ok ? config : { ...config, pool: {} },
    context: provider.poolContext(),
    log: log.child({ component: 'pool' }),
    registry: metrics.registry,
  });
  provider.usePool(pool);
  const portOf = (url: string | undefined, addr: string | undefined) =>
    url ? Number(new URL(url).port) : addr ? splitHostPort(addr).port : 0;
  const egress = new EgressPolicies({
    docker,
    store,
    bus,
    config,
    registry: metrics.registry,
    networkId: () => provider.sandboxNetworkId(),
    log: log.child({ component: 'egress' }),
  });
  const containment = new NetworkContainment({
    docker,
    config,
    networkId: () => provider.sandboxNetworkId(),
    egress: () => egress.rules(),
    // The edge's public ports (network.allowEdge): bound ones once the edge listens.
    edgePorts: () =>
      [
        portOf(edge.url, config.edgeAddr),
        config.edge.tls ? portOf(edge.tlsUrl, config.edge.tls.addr) : 0,
      ].filter((p) => p > 0),
    log: log.child({ component: 'containment' }),
  });
  // The edge asks the directory about sandboxes, never the provider.
  const localDirectory = new LocalSandboxDirectory({ store, provider });
  const directory = parts.sandboxDirectory?.(localDirectory) ?? localDirectory;
  const edge = new Edge({
    config,
    store,
    directory,
    cluster: parts.edgeCluster ?? cluster.edgeView(),
    bus,
    service,
    registry: metrics.registry,
    log: log.child({ component: 'edge' }),
  });
  // Traefik mode: Traefik routes to running sandboxes; the edge above still wakes and authorises.
  const traefik =
    config.edgeMode === 'traefik'
      ? new TraefikMode({
          config,
          store,
          directory,
          bus,
          log: log.child({ component: 'traefik' }),
          touch: (id) => edge.activity.touch(id),
        })
      : undefined;
  const processes = new ProcessRegistry({
    provider,
    bus,
    log: log.child({ component: 'processes' }),
    logBytes: config.io.processLogKb * 1024,
  });
  // A policy change, or a sandbox that got or lost its address: the egress rules follow at once.
  const refreshEgress = () =>
    containment.mode === 'off'
      ? Promise.resolve()
      : containment.refresh().then(
          () => undefined,
          (err) => log.warn({ err }, 'egress rules not refreshed'),
        );
  bus.subscribe((event) => {
    if (event.type === 'sandbox.state' || event.type === 'sandbox.deleted') void refreshEgress();
  });
  edge.activity.socketsKeepAwake = config.lifecycle.websocketsKeepAwake;
  const usage = new SandboxUsage(edge.activity, processes);
  const admission = new Admission({
    store,
    service,
    usage,
    config,
    log: log.child({ component: 'admission' }),
    pool,
  });
  pool.useAdmission(admission);
  const lifecycleLog = log.child({ component: 'lifecycle' });
  const idleReaper = new IdleReaper({ store, service, usage, config, log: lifecycleLog });
  const expiry = new ExpiryReaper({ store, service, bus, config, log: lifecycleLog });
  const watchers = new IoWatchers({
    config,
    provider,
    store,
    bus,
    processes,
    log: log.child({ component: 'watchers' }),
    onCrash: () => void reconciler.runOnce().catch(() => undefined),
  });
  const nodeUsage = new NodeUsage({
    config,
    store,
    bus,
    docker,
    storage,
    registry: metrics.registry,
    nodeId: () => service.nodeId,
    log: log.child({ component: 'usage' }),
  });
  const webhooks = new Webhooks({
    config,
    store,
    bus,
    node: String(service.nodeId),
    log: log.child({ component: 'webhooks' }),
  });
  const snapshots = new SnapshotService({
    config,
    store,
    service,
    provider,
    storage,
    layers,
    bus,
    log: log.child({ component: 'snapshots' }),
  });
  const layerBudget = new LayerBudget({
    dataDir: config.dataDir,
    layers,
    sources: { storage, snapshotLayers: snapshotLayersOf(store, () => service.nodeId) },
    budgetMb: () => config.layers.budgetMb,
    registry: metrics.registry,
    log: log.child({ component: 'layers' }),
  });
  const api = await buildApi({
    config,
    keyRing,
    service,
    store,
    provider,
    metrics,
    log,
    version,
    edge,
    io: { bus, processes, activity: edge.activity },
    traefikDynamicConfig: traefik?.dynamicConfig,
    cluster,
    usage: nodeUsage,
    webhooks: webhooks.service,
    snapshots,
    pool,
  });

  const app: Previewd = {
    config,
    store,
    provider,
    containment,
    egress,
    bus,
    service,
    cluster,
    reconciler,
    idleReaper,
    expiry,
    admission,
    pool,
    processes,
    watchers,
    usage: nodeUsage,
    webhooks,
    layerBudget,
    api,
    edge,
    keys,
    generatedKey: generated,
    async start() {
      await provider.health();
      // In a cluster, the lease comes before any write: every write of this node carries its epoch.
      bus.start();
      await cluster.start({
        markLost: (record, reason) => service.markNodeLost(record.id, reason),
        reconcile: () => void reconciler.runOnce().catch(() => undefined),
      });
      // Before any sandbox runs: the sandbox network and its containment rules.
      const contained = await containment.ensure();
      // The egress proxy listens on the sandbox network's gateway; its redirects follow.
      if (contained.state === 'ok') {
        await egress.start();
        await containment.refresh();
      }
      containment.start();
      // Before the reconciler: claimed warm containers are known, unclaimed leftovers removed.
      await pool.start(); // then fills in the background
      await reconciler.runOnce();
      reconciler.start();
      idleReaper.start();
      expiry.start();
      await watchers.start();
      nodeUsage.start();
      webhooks.start();
      snapshots.start();
      layerBudget.start();
      void layerBudget.runOnce().catch((err) => log.warn({ err }, 'layer budget pass failed'));
      // The edge first: once the API answers (/healthz), previews are served too.
      await edge.start();
      const { host, port } = splitHostPort(config.apiAddr);
      await api.listen({ host, port });
      const addr = api.server.address();
      const boundPort = typeof addr === 'object' && addr ? addr.port : port;
      app.apiUrl = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
      await traefik?.start();
      app.edgeUrl = edge.url;
      if (config.network.allowEdge) await containment.ensure(); // now with the edge's bound ports
      // A random edge port (tests): preview URLs carry the port actually bound.
      if (config.edge.publicPort === undefined) {
        if (config.edge.tls && edge.tlsUrl && splitHostPort(config.edge.tls.addr).port === 0) {
          config.edge.publicPort = Number(new URL(edge.tlsUrl).port);
        } else if (!config.edge.tls && splitHostPort(config.edgeAddr).port === 0) {
          config.edge.publicPort = edge.port;
        }
      }
    },
    async stop() {
      await pool.stop(); // unclaimed containers go; claimed ones are their sandboxes'
      await containment.stop(); // the rules stay: other control planes may share the network
      await egress.stop();
      await reconciler.stop();
      await idleReaper.stop();
      await expiry.stop();
      watchers.stop();
      await nodeUsage.stop();
      await webhooks.stop();
      await snapshots.stop();
      await layerBudget.stop();
      await traefik?.stop();
      await edge.stop();
      await api.close();
      await service.idle();
      await cluster.stop();
      bus.stop();
      await store.close();
    },
  };
  return app;
}
