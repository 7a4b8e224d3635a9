import { buildDependencyLayer } from '../dependencies/dependency-build.js';
import type { DependencyRecipe } from '../dependencies/dependency-key.js';
import { dependencyLayersFor } from '../dependencies/dependency-layers.js';
import { isoAt } from '../domain/clock.js';
import { PreviewdError } from '../domain/errors.js';
import { newSandboxId } from '../domain/ids.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { CreateSandboxInput, Resources, RuntimePlan } from '../domain/schemas.js';
import { devServerEnv } from '../edge/dev-server-env.js';
import { commandFor, planFromInput, superviseFor } from '../runtimes/plan.js';
import { warmAfterInstall } from '../runtimes/template-warm.js';
import { nodeTemplates, type TemplateName } from '../runtimes/templates.js';
import { checkBaseInput, planFromBase, type SandboxBase, snapshotBase } from '../snapshots/snapshot-base.js';
import {
  type CreateSources,
  type PreparedSources,
  prepareSources,
  writeSources,
} from '../sources/write-sources.js';
import { traefikLabels } from '../traefik/labels.js';
import { checkCreate } from './create-policy.js';
import { allocateIdentity, identityOf } from './identity.js';
import type { SandboxService } from './service.js';
import type { SandboxWriter } from './writer.js';

/** The disk of a sandbox when the configuration's resources.default names none. */
const DEFAULT_DISK_MB = 1024;
/** The disk of previewd's template builds (next's node_modules is about 700 MB). */
const BUILD_DISK_MB = 4096;

function resourcesFor(w: SandboxWriter, requested: Partial<Resources> | undefined): Resources {
  const merged = { ...w.config.resources.default, ...requested };
  const max = w.config.resources.max;
  merged.diskMb ??= Math.min(DEFAULT_DISK_MB, max.diskMb ?? DEFAULT_DISK_MB);
  for (const key of ['cpus', 'memoryMb', 'pids', 'diskMb'] as const) {
    const limit = max[key];
    if (limit !== undefined && (merged[key] ?? 0) > limit) {
      throw new PreviewdError(
        'resource_limit',
        `resources.${key} ${merged[key]} is above this host's maximum ${limit}`,
        {
          details: { field: `resources.${key}`, max: limit },
        },
      );
    }
  }
  return merged;
}

function checkLifecycleLimits(w: SandboxWriter, input: CreateSandboxInput): void {
  const { maxPauseAfterSec, maxIdleTimeoutSec, maxTtlSec } = w.config.lifecycle;
  const limits = [
    ['pauseAfterSec', input.pauseAfterSec, maxPauseAfterSec],
    ['idleTimeoutSec', input.idleTimeoutSec, maxIdleTimeoutSec],
    ['ttlSec', input.ttlSec, maxTtlSec],
  ] as const;
  for (const [field, value, max] of limits) {
    if (value !== undefined && value > max) {
      throw new PreviewdError('resource_limit', `${field} ${value} is above this host's maximum ${max}`, {
        details: { field, max },
        hint: `Ask for at most ${max} (lifecycle.max* in previewd.yaml).`,
      });
    }
  }
}

/**
 * Writes the files, records the sandbox as `creating` and returns; the container is created and
 * started in the background (follow events or poll). Files are on disk before the row exists,
 * so a crash never leaves a row whose files are half written.
 *
 * `build`: previewd's own throwaway sandbox building a template's dependency layer
 * (template-warm.ts): the bare template, the host's download caches writable, a 4 GB disk.
 * Never reachable from the API. `service` is the one a cold template's build runs through.
 * `sources`: the request's archive body (src/sources); `source.git` is cloned before the workspace
 * is made; every source is in the workspace before the row (and so the app) exists.
 * `dependencyBuild`: previewd's own throwaway sandbox building the dependency layer of that key
 * (src/dependencies/dependency-build.ts); never reachable from the API either. A user's project
 * whose dependencies have a layer gets it under its files once the plan is known
 * (src/dependencies/dependency-layers.ts); otherwise its layer is built after its own install.
 */
export async function createSandbox(
  w: SandboxWriter,
  service: SandboxService,
  input: CreateSandboxInput,
  opts: {
    owner?: string;
    build?: TemplateName;
    dependencyBuild?: string;
    base?: SandboxBase;
    sources?: CreateSources;
  },
): Promise<SandboxRecord> {
  const resources = resourcesFor(
    w,
    opts.build || opts.dependencyBuild
      ? {
          ...input.resources,
          diskMb: Math.min(BUILD_DISK_MB, w.config.resources.max.diskMb ?? BUILD_DISK_MB),
        }
      : input.resources,
  );
  checkLifecycleLimits(w, input);
  checkBaseInput(input);
  const isolation = await checkCreate(input, w.config, w.provider);
  const id = newSandboxId();
  await w.gate?.admit({ sandboxId: id, owner: opts.owner, kind: 'create' });
  const identity = await allocateIdentity(w.config, w.store, id);
  // The template's files (and its cached lockfile when warm), the user's files on top; its
  // dependency layer (when warm) is the workspace's read-only lower layer.
  const template = input.template ? await w.templates.filesFor(input.template) : undefined;
  const warm = template?.warm === true;
  if (opts.build) w.templates.markBuild(id, opts.build);
  const dependencies = dependencyLayersFor(w.provider, w.config, w.log);
  if (opts.dependencyBuild) dependencies?.markBuild(id, opts.dependencyBuild);
  let plan: RuntimePlan;
  let dependencyBuild: DependencyRecipe | undefined;
  // A snapshot's (or a fork's) layers instead of a template's: copy-on-write, nothing copied.
  let base = opts.base;
  let prepared: PreparedSources | undefined;
  try {
    // Decoded, fetched and checked before the workspace exists (a refusal writes nothing).
    prepared = await prepareSources(input, opts.sources ?? {}, w.config);
    if (!base && input.snapshot) {
      base = await snapshotBase(
        { store: w.store, config: w.config, nodeId: w.node.id },
        input.snapshot,
        opts.owner,
      );
    }
    const files = await w.provider.prepareWorkspace(id, {
      identity,
      layers: base ? base.layers : template?.layer ? [template.layer] : [],
      diskMb: resources.diskMb,
      build: opts.build !== undefined || opts.dependencyBuild !== undefined,
    });
    const written = await writeSources(files, prepared, template?.files, w.config);
    await prepared.release();
    const withTemplate = { ...input, files: written };
    // After the writes: a bad path is reported as invalid_path before detection reads the files.
    plan = base ? planFromBase(base, withTemplate, w.config) : planFromInput(withTemplate, w.config);
    base?.release();
    // A user's own project (no template, snapshot or fork: those bring their dependencies).
    delete plan.dependencies;
    if (dependencies && !base && !input.template && !opts.build && !opts.dependencyBuild && plan.install) {
      const recipe = await dependencies.recipe(files, written, plan, input, opts.owner);
      const attached = recipe ? await dependencies.attach(id, files, recipe) : undefined;
      plan.dependencies = attached?.outcome ?? 'installed';
      dependencyBuild = attached?.build;
    }
  } catch (err) {
    base?.release();
    await prepared?.release();
    w.templates.unmarkBuild(id);
    dependencies?.unmarkBuild(id);
    await w.provider.destroy(id).then(
      () => w.store.releaseUid(id),
      () => undefined,
    );
    throw err;
  }
  const now = w.nowIso();
  const ports = input.ports ?? (plan.port ? [plan.port] : []);
  const record: SandboxRecord = {
    id,
    state: 'creating',
    image: plan.image,
    isolation,
    runtime: plan,
    ports: [...new Set(ports)],
    env: input.env ?? {},
    resources,
    identity,
    visibility: input.visibility ?? 'public',
    idleTimeoutSec: input.idleTimeoutSec ?? w.config.defaults.idleTimeoutSec,
    pauseAfterSec: input.pauseAfterSec ?? w.config.defaults.pauseAfterSec,
    metadata: input.metadata ?? {},
    labels: input.labels ?? {},
    createdAt: now,
    updatedAt: now,
    lastActivityAt: now,
  };
  if (input.template) record.template = input.template;
  if (input.network) record.network = input.network;
  if (input.ttlSec !== undefined) {
    record.ttlSec = input.ttlSec;
    record.expiresAt = isoAt(w.clock, input.ttlSec * 1000);
  }
  if (opts.owner) record.owner = opts.owner;
  if (input.idlePolicy) record.idlePolicy = input.idlePolicy;
  if (input.preStop) record.preStop = input.preStop;
  record.node = w.node.id;
  await w.store.insertSandbox(record, {
    event: { type: 'sandbox.created', sandboxId: id, data: { image: record.image } },
    ...w.fenced(),
  });
  await w.bus.pump();
  // Env values may be secrets: log their names only.
  w.log.info({ sandboxId: id, runtime: { ...plan, env: Object.keys(plan.env) } }, 'runtime plan');
  w.inBackground(w.lock.run(id, () => provision(w, id)));
  const name = input.template as TemplateName | undefined;
  if (name && !warm && !opts.build && nodeTemplates.includes(name)) {
    // A cold template: previewd builds its layer in a sandbox of its own (never from this one).
    void warmAfterInstall(service, w.provider, name, id)
      .then((r) => r.result === 'failed' && w.log.warn({ template: name }, 'template build failed'))
      .catch((err) => w.log.warn({ err, template: name }, 'template build failed'));
  }
  if (dependencyBuild && dependencies) {
    // Previewd builds this key's layer in a sandbox of its own once this one's install is over.
    const recipe = dependencyBuild;
    void dependencies
      .buildAfterInstall(recipe, id, w.provider, (r) =>
        buildDependencyLayer(service, w.provider, dependencies, r),
      )
      .catch((err) => w.log.warn({ err, layer: recipe.key }, 'dependency layer build failed'));
  }
  return record;
}

/**
 * Creates (if needed) and starts the container of a sandbox in `creating` or `starting`; the
 * caller holds its lock. A failure moves the sandbox to `error` and is returned, not thrown.
 */
export async function provision(w: SandboxWriter, id: string): Promise<unknown> {
  let record = await w.store.getSandbox(id);
  if (!record || (record.state !== 'creating' && record.state !== 'starting')) return undefined;
  try {
    const { instanceId } = await w.provider.spawn({
      sandboxId: id,
      image: record.image,
      cmd: commandFor(record.runtime),
      supervise: superviseFor(record.runtime, w.config.appRestarts),
      env: { ...devServerEnv(w.config), ...record.runtime.env, ...record.env },
      resources: record.resources,
      labels: w.config.edgeMode === 'traefik' ? traefikLabels(w.config, record) : {},
      ports: record.ports,
      identity: identityOf(record),
      isolation: record.isolation,
    });
    if (record.state === 'creating') {
      record = await w.transition(record, 'starting', { containerId: instanceId });
    }
    await w.provider.start(id);
    const now = w.nowIso();
    // The container may be a new one on a start (a warm pool container is removed at its first stop).
    await w.transition(record, 'running', {
      startedAt: now,
      lastActivityAt: now,
      error: undefined,
      containerId: instanceId,
    });
    return undefined;
  } catch (err) {
    await w.fail(id, err);
    return err;
  }
}
