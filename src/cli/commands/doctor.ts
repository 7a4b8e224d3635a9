import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { splitHostPort } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { resolveCaBundle } from '../../providers/docker/host-trust.js';
import { findConnection } from '../connection.js';
import { colour, exitCodes, run, writeJson, writeLine } from '../output.js';

export interface Check {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** What to do when it is not ok. */
  fix?: string;
  /** The layer store's numbers (the "layer store" check, doctor-layers.ts). */
  layers?: Record<string, unknown>;
}

const MIN_FREE_GIB = 2;

async function engineCheck(config: Config): Promise<Check> {
  const { createDockerClient } = await import('../../providers/docker/client.js');
  try {
    const v = await createDockerClient(config).version();
    return { check: 'engine', status: 'ok', detail: `Docker ${v.Version} (API ${v.ApiVersion})` };
  } catch (err) {
    return {
      check: 'engine',
      status: 'fail',
      detail: `the Docker engine does not answer: ${(err as Error).message}`,
      fix: 'Start it (make setup installs and starts one as root), or point DOCKER_HOST / docker.socketPath at it.',
    };
  }
}

async function imageChecks(config: Config): Promise<Check[]> {
  const { createDockerClient } = await import('../../providers/docker/client.js');
  const { imageStatus } = await import('../../runtimes/images/build.js');
  try {
    const states = await imageStatus(createDockerClient(config), config);
    return states.map((s) => ({
      check: `image ${s.name}`,
      status: s.present && s.upToDate ? 'ok' : s.present ? 'warn' : 'fail',
      detail: !s.present ? 'missing' : s.upToDate ? 'present, up to date' : 'present, out of date',
      ...(s.present && s.upToDate ? {} : { fix: 'previewd images build' }),
    }));
  } catch (err) {
    return [
      { check: 'images', status: 'fail', detail: (err as Error).message, fix: 'Fix the engine first.' },
    ];
  }
}

/**
 * gVisor (isolation "gvisor"): ok when the engine lists the runtime; otherwise a warning with how
 * to get it, or a failure when isolation.default asks for it (every create would be refused).
 */
export async function isolationCheck(config: Config): Promise<Check> {
  const { createDockerClient } = await import('../../providers/docker/client.js');
  const { EngineRuntimes, GVISOR_HINT } = await import('../../providers/docker/isolation.js');
  const runtime = config.isolation.gvisorRuntime;
  try {
    const levels = await new EngineRuntimes(createDockerClient(config), runtime).levels();
    if (levels.includes('gvisor')) {
      return {
        check: 'isolation',
        status: 'ok',
        detail: `container and gvisor (runtime "${runtime}"); default ${config.isolation.default}`,
      };
    }
    const wanted = config.isolation.default === 'gvisor';
    return {
      check: 'isolation',
      status: wanted ? 'fail' : 'warn',
      detail: `container only: the engine does not list the runtime "${runtime}"${wanted ? ', but isolation.default is gvisor' : ''}`,
      fix: GVISOR_HINT,
    };
  } catch (err) {
    return {
      check: 'isolation',
      status: 'fail',
      detail: (err as Error).message,
      fix: 'Fix the engine first.',
    };
  }
}

function portFree(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', (err) => done(err as NodeJS.ErrnoException));
    server.listen({ host, port, exclusive: true }, () => server.close(() => done(undefined)));
  });
}

async function previewdAnswers(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { ok?: boolean; version?: string };
    return body.ok ? (body.version ?? '?') : undefined;
  } catch {
    return undefined;
  }
}

async function portChecks(config: Config, serverVersion: string | undefined): Promise<Check[]> {
  const out: Check[] = [];
  for (const [name, addr, env] of [
    ['api port', config.apiAddr, 'PREVIEWD_API_ADDR'],
    ['edge port', config.edgeAddr, 'PREVIEWD_EDGE_ADDR'],
  ] as const) {
    const { host, port } = splitHostPort(addr);
    const err = await portFree(host, port);
    if (!err) out.push({ check: name, status: 'ok', detail: `${addr} is free` });
    else if (err.code === 'EADDRINUSE' && serverVersion) {
      out.push({
        check: name,
        status: 'ok',
        detail: `${addr} is in use by the running previewd ${serverVersion}`,
      });
    } else {
      out.push({
        check: name,
        status: 'fail',
        detail: `${addr}: ${err.code === 'EADDRINUSE' ? 'in use by another program' : err.message}`,
        fix: `Stop that program, or choose another address with ${env}.`,
      });
    }
  }
  return out;
}

function frontCheck(config: Config): Check {
  const mode = config.edge.front;
  if (mode === 'off' || config.edgeMode !== 'builtin') {
    return { check: 'edge front', status: 'ok', detail: 'off (the built-in edge serves every preview)' };
  }
  const probe = spawnSync(config.edge.haproxyBin, ['-v'], { encoding: 'utf8', timeout: 5000 });
  const version = probe.status === 0 ? /version (\S+)/.exec(probe.stdout)?.[1] : undefined;
  if (version) return { check: 'edge front', status: 'ok', detail: `HAProxy ${version}` };
  return {
    check: 'edge front',
    status: mode === 'haproxy' ? 'fail' : 'warn',
    detail: `${config.edge.haproxyBin} does not run${mode === 'auto' ? ': previews are served by the built-in edge alone (about a third of the throughput)' : ''}`,
    fix: 'Install HAProxy (Debian: apt-get install haproxy; make setup does it as root), or set PREVIEWD_EDGE_HAPROXY_BIN.',
  };
}

function caCheck(config: Config): Check {
  try {
    const path = resolveCaBundle(config.caBundle);
    if (!path) {
      return config.caBundle === 'off'
        ? { check: 'CA bundle', status: 'ok', detail: 'off (sandboxes get no extra CA certificates)' }
        : {
            check: 'CA bundle',
            status: 'warn',
            detail: 'no host CA bundle found',
            fix: 'Fine without a TLS-intercepting proxy; otherwise set PREVIEWD_CA_BUNDLE to its PEM file.',
          };
    }
    const pem = readFileSync(path, 'utf8');
    const count = pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
    if (count === 0) {
      return {
        check: 'CA bundle',
        status: 'fail',
        detail: `${path} holds no PEM certificate`,
        fix: 'Point PREVIEWD_CA_BUNDLE at a PEM bundle, or set it to "off".',
      };
    }
    return {
      check: 'CA bundle',
      status: 'ok',
      detail: `${path} (${count} certificates), mounted into sandboxes`,
    };
  } catch (err) {
    return {
      check: 'CA bundle',
      status: 'fail',
      detail: (err as Error).message,
      fix: 'Set PREVIEWD_CA_BUNDLE to an existing PEM file, "auto" or "off".',
    };
  }
}

/** The sandbox network's iptables containment (docs/network.md): read only, changes nothing. */
export async function containmentCheck(config: Config): Promise<Check> {
  const { createDockerClient } = await import('../../providers/docker/client.js');
  const { NetworkContainment } = await import('../../providers/docker/containment.js');
  const docker = createDockerClient(config);
  const name = config.docker.network;
  try {
    const status = await new NetworkContainment({
      docker,
      config,
      networkId: async () =>
        (await docker.listNetworks({ filters: { name: [name] } })).find((n) => n.Name === name)?.Id,
      // network.allowEdge: the ports serve listens on, as configured
      edgePorts: () =>
        [config.edgeAddr, config.edge.tls?.addr]
          .map((addr) => (addr ? splitHostPort(addr).port : 0))
          .filter((p) => p > 0),
    }).check();
    const level: Check['status'] =
      status.state === 'ok'
        ? 'ok'
        : status.state === 'off'
          ? 'warn'
          : config.network.containment === 'required'
            ? 'fail'
            : 'warn';
    return {
      check: 'network containment',
      status: level,
      detail: status.detail,
      ...(status.state === 'off'
        ? {
            fix: 'Set network.containment: auto (PREVIEWD_NETWORK_CONTAINMENT) unless the host contains the bridge itself.',
          }
        : status.fix
          ? { fix: status.fix }
          : {}),
    };
  } catch (err) {
    return {
      check: 'network containment',
      status: 'warn',
      detail: `cannot be checked: ${(err as Error).message}`,
      fix: 'Fix the engine first.',
    };
  }
}

function diskCheck(config: Config): Check {
  let dir = resolve(config.dataDir);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const fs = statfsSync(dir);
  const freeGib = (fs.bavail * fs.bsize) / 1024 ** 3;
  const detail = `${freeGib.toFixed(1)} GiB free for ${resolve(config.dataDir)}`;
  return freeGib >= MIN_FREE_GIB
    ? { check: 'disk', status: 'ok', detail }
    : {
        check: 'disk',
        status: 'fail',
        detail,
        fix: `Free space (docker system prune, old sandboxes: previewd rm), or move dataDir (PREVIEWD_DATA_DIR); at least ${MIN_FREE_GIB} GiB.`,
      };
}

/** Every check, in the order they print. */
export async function runChecks(loaded: LoadedConfig): Promise<Check[]> {
  const { config } = loaded;
  const connection = findConnection(() => loaded);
  const serverVersion = await previewdAnswers(connection.url);
  const checks: Check[] = [
    {
      check: 'config',
      status: 'ok',
      detail: loaded.file ? `loaded ${loaded.file}` : 'defaults and PREVIEWD_* variables',
    },
  ];
  checks.push(await engineCheck(config));
  checks.push(...(await imageChecks(config)));
  checks.push(await isolationCheck(config));
  checks.push(...(await portChecks(config, serverVersion)));
  checks.push(frontCheck(config));
  checks.push(caCheck(config));
  checks.push(await containmentCheck(config));
  checks.push(diskCheck(config));
  const { layerStoreCheck } = await import('./doctor-layers.js');
  checks.push(await layerStoreCheck(config));
  checks.push(
    serverVersion
      ? { check: 'server', status: 'ok', detail: `previewd ${serverVersion} answers at ${connection.url}` }
      : {
          check: 'server',
          status: 'warn',
          detail: `nothing answers at ${connection.url}`,
          fix: 'Start it: previewd serve (or make start).',
        },
  );
  if (serverVersion && !connection.apiKey) {
    checks.push({
      check: 'api key',
      status: 'warn',
      detail: 'no key found for the CLI',
      fix: `Set PREVIEWD_API_KEY, or run the CLI where ${config.dataDir}/api-key is readable.`,
    });
  }
  return checks;
}

export function registerDoctorCommand(program: Command, load: () => LoadedConfig): void {
  program
    .command('doctor')
    .description(
      'Check the engine, images, isolation levels, ports, CA bundle, network containment, disk and the layer store; each failing line names its fix',
    )
    .option('--json', 'print the checks as JSON')
    .action(
      run(async (flags: { json?: boolean }) => {
        const checks = await runChecks(load());
        const failed = checks.some((c) => c.status === 'fail');
        if (flags.json) writeJson({ ok: !failed, checks });
        else {
          const width = Math.max(...checks.map((c) => c.check.length));
          for (const c of checks) {
            const mark =
              c.status === 'ok'
                ? colour.green('✓')
                : c.status === 'warn'
                  ? colour.yellow('!')
                  : colour.red('✗');
            writeLine(`${mark} ${c.check.padEnd(width)}  ${c.detail}`);
            if (c.fix && c.status !== 'ok')
              writeLine(`  ${' '.repeat(width)}  ${colour.dim('fix:')} ${c.fix}`);
          }
        }
        if (failed) process.exitCode = exitCodes.failure;
      }),
    );
}
