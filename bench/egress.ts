/**
 * bench/egress: what the egress proxy costs.
 * 1. `npm install` of a small real project (a few small dependencies, from the npm registry) in
 *    a sandbox with egress `allow` (straight out, as before) and with egress `list` allowing the
 *    registry (every TLS connection through the proxy: SNI read, name resolved and connected by
 *    previewd), each round in a fresh sandbox with an empty npm cache, interleaved.
 * 2. Throughput: a large download from a server in the fake-internet namespace (fake-web.ts),
 *    direct (`allow`) vs through the proxy (`list` allowing its name), HTTP and TLS.
 * Medians of the rounds. Needs root (a network namespace, iptables), like the tests.
 *
 *   node --import tsx bench/egress.ts [rounds=5] [downloadMb=256]
 */
import { createDockerClient } from '../src/providers/docker/client.js';
import { removeContainment } from '../src/providers/docker/containment.js';
import { Iptables } from '../src/providers/docker/iptables.js';
import { startFakeWeb } from '../test/helpers/fake-web.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../test/helpers/server.js';
import { printTable, summary } from './stats.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const DOWNLOAD_MB = Number(process.argv[3] ?? 256);

const project = JSON.stringify({
  name: 'bench-egress',
  private: true,
  dependencies: { ms: '^2.1.3', debug: '^4.3.7', picocolors: '^1.1.1', kleur: '^4.1.5', dotenv: '^16.4.5' },
});
const REGISTRY = { egress: 'list', allow: ['registry.npmjs.org'] };

/** The egress proxy's counters of a server (proof the proxied rows went through it). */
async function proxyCounts(server: TestServer): Promise<string> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
  return (await res.text())
    .split('\n')
    .filter((l) => /^previewd_egress_(proxied|denied)_total\{/.test(l))
    .join('; ');
}

/** Downloads `path` n times from addr (naming `name`), prints MB/s of each. */
const DOWNLOAD = `
const [addr, port, name, tlsFlag, path, n] = process.argv.slice(1);
const mod = require(tlsFlag === '1' ? 'https' : 'http');
const one = () => new Promise((done, fail) => {
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  const req = mod.get({ host: addr, port: Number(port), path, servername: name, headers: { host: name }, rejectUnauthorized: false, agent: false }, (res) => {
    res.on('data', (d) => { bytes += d.length; });
    res.on('end', () => done(bytes / 1048576 / (Number(process.hrtime.bigint() - t0) / 1e9)));
  });
  req.on('error', fail);
});
(async () => { const out = []; for (let i = 0; i < Number(n); i++) out.push(await one()); console.log(JSON.stringify(out)); })();
`;

async function sandbox(
  server: TestServer,
  network?: unknown,
  files?: Record<string, string>,
): Promise<string> {
  const created = await server.call('POST', '/v1/sandboxes', {
    ...(network ? { network } : {}),
    ...(files ? { files } : {}),
    runtime: { start: 'exec sleep infinity' },
    resources: { memoryMb: 1024 },
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  await waitFor(async () =>
    (await server.call('GET', `/v1/sandboxes/${id}`)).body.state === 'running' ? true : undefined,
  );
  return id;
}

async function timedInstall(server: TestServer, network?: unknown): Promise<number> {
  const id = await sandbox(server, network, { 'package.json': project });
  try {
    // the rules follow the start by an event: wait until this sandbox's are in
    if (network) await server.app.containment.refresh();
    const res = await server.app.provider.exec(id, {
      cmd: ['sh', '-c', 'npm install --no-audit --no-fund --cache /tmp/npm-cache'],
    });
    if (res.exitCode !== 0) throw new Error(`npm install failed: ${res.stderr.toString()}`);
    return res.durationMs;
  } finally {
    await server.app.service.delete(id);
  }
}

async function main(): Promise<void> {
  const web = await startFakeWeb((w) => ({ 'big.test': w.publicAddr }), DOWNLOAD_MB);
  const network = `pvdbench-egress-${Date.now().toString(36)}`;
  const server = await startTestServer({ 'docker.network': network, 'network.egressResolver': web.resolver });
  const installs: Record<string, number[]> = {
    'egress allow (direct)': [],
    'egress list: registry.npmjs.org (proxy)': [],
  };
  const throughput: Record<string, number[]> = {};
  let networkId = '';
  const counts: Record<string, string> = {};
  try {
    networkId = (
      await createDockerClient({ docker: { network } } as never)
        .getNetwork(network)
        .inspect()
    ).Id;
    // npm's registry through the proxy needs the host's resolver: a second server without egressResolver
    const npmServer = await startTestServer({ 'docker.network': `${network}-npm` });
    try {
      await timedInstall(npmServer); // the network's first sandbox; not measured
      for (let i = 0; i < ROUNDS; i++) {
        installs['egress allow (direct)']!.push(await timedInstall(npmServer));
        installs['egress list: registry.npmjs.org (proxy)']!.push(await timedInstall(npmServer, REGISTRY));
        process.stderr.write(`npm install round ${i + 1}/${ROUNDS}\n`);
      }
      counts.npm = await proxyCounts(npmServer);
    } finally {
      await npmServer.close();
      const id = (
        await createDockerClient({ docker: { network } } as never)
          .getNetwork(`${network}-npm`)
          .inspect()
          .catch(() => undefined)
      )?.Id;
      if (id) await removeContainment(new Iptables(), id);
      await createDockerClient({ docker: { network } } as never)
        .getNetwork(`${network}-npm`)
        .remove()
        .catch(() => undefined);
    }

    const direct = await sandbox(server);
    const proxied = await sandbox(server, { egress: 'list', allow: ['big.test'] });
    await server.app.containment.refresh();
    for (const [label, tls, port] of [
      ['HTTP', false, 80],
      ['TLS', true, 443],
    ] as const) {
      for (const [how, id] of [
        ['direct', direct],
        ['through the proxy', proxied],
      ] as const) {
        const res = await server.app.provider.exec(id, {
          cmd: [
            'node',
            '-e',
            DOWNLOAD,
            web.publicAddr,
            String(port),
            'big.test',
            tls ? '1' : '0',
            '/big',
            String(ROUNDS),
          ],
        });
        if (res.exitCode !== 0) throw new Error(`download failed: ${res.stderr.toString()}`);
        throughput[`${label} ${how}`] = JSON.parse(res.stdout.toString());
      }
    }
    counts.download = await proxyCounts(server);
  } finally {
    await server.close();
    if (networkId) await removeContainment(new Iptables(), networkId);
    await createDockerClient({ docker: { network } } as never)
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
    await web.close();
  }
  const base = summary(installs['egress allow (direct)']!).p50;
  printTable(
    `npm install of 5 small dependencies in a fresh sandbox, empty npm cache, ${ROUNDS} rounds (ms)`,
    Object.entries(installs).map(([how, ms]) => {
      const s = summary(ms);
      return {
        how,
        median: s.p50,
        min: s.min,
        max: s.max,
        'vs direct': `${((s.p50 / base) * 100).toFixed(0)}%`,
      };
    }),
  );
  printTable(
    `Download of ${DOWNLOAD_MB} MiB from the fake internet, ${ROUNDS} rounds (MiB/s)`,
    Object.entries(throughput).map(([how, rates]) => {
      const s = summary(rates);
      return { how, median: s.p50, min: s.min, max: s.max };
    }),
  );
  console.log(`\nproxy counters, npm server: ${counts.npm || 'none'}`);
  console.log(`proxy counters, download server: ${counts.download || 'none'}`);
}

await main();
