import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type Docker from 'dockerode';
import * as tarFs from 'tar-fs';
import type { Config } from '../../config/schema.js';
import {
  ARTIFACTS_LABEL,
  type ArtifactVersions,
  artifactSpec,
  BASE_RECIPE,
  baseInputs,
  DEFAULT_DEBIAN_MIRROR,
  formatArtifacts,
  hasAllArtifacts,
  highestVersion,
  IMAGE_KINDS,
  type ImageKind,
  INPUTS_LABEL,
  mirrorFromAptSources,
  NODE_ARTIFACT_KEYS,
  NODE_ARTIFACTS,
  type NodeArtifact,
  nodeDockerfile,
  nodeInputs,
  parseArtifacts,
  pythonDockerfile,
  pythonInputs,
  RECIPE_LABEL,
} from './recipes.js';

/**
 * Builds previewd's runtime images without a registry (see recipes.ts for what is in them).
 *
 * Up-to-date check: each image carries `previewd.inputs=<sha256 of its recipe>`; an image is
 * rebuilt only when it is missing, its label differs, or `force` is set. The check reads no
 * network: the exact Node/npm/corepack versions resolved from the npm registry are remembered in
 * `<dataDir>/cache/images/versions.json` (or read back from the Node image's labels) and are
 * re-resolved only with `force`. So a newer Node 22 patch release is picked up by
 * `previewd images build --force`, not by a plain `images build`.
 */

export type ImagePhase = 'check' | 'skip' | 'bootstrap' | 'import' | 'build' | 'done';
export interface ImageProgress {
  image: string;
  phase: ImagePhase;
  message: string;
}

export interface BuildImagesOptions {
  docker: Docker;
  config: Config;
  /** Rebuild the selected images even when up to date (and re-resolve Node/npm versions). */
  force?: boolean;
  /** Images to build; default all. The base is also built when a selected image needs it. */
  only?: ImageKind[];
  onProgress?: (p: ImageProgress) => void;
}

export interface BuiltImage {
  name: string;
  built: boolean;
  inputs: string;
}

export interface ImageState {
  name: string;
  present: boolean;
  upToDate: boolean;
}

interface Ctx {
  docker: Docker;
  config: Config;
  names: Record<ImageKind, string>;
  cacheDir: string;
  mirror: string;
  emit: (kind: ImageKind, phase: ImagePhase, message: string) => void;
}

interface Current {
  id: string;
  labels: Record<string, string>;
}

interface PlanItem {
  kind: ImageKind;
  name: string;
  /** Undefined when the Node versions are not known locally (status only). */
  inputs: string | undefined;
  current: Current | undefined;
  upToDate: boolean;
}

const VERSIONS_FILE = 'versions.json';

export async function buildImages(opts: BuildImagesOptions): Promise<BuiltImage[]> {
  const ctx = makeCtx(opts.docker, opts.config, opts.onProgress);
  const force = opts.force ?? false;
  const wanted = new Set<ImageKind>(opts.only && opts.only.length > 0 ? opts.only : IMAGE_KINDS);
  for (const kind of IMAGE_KINDS) if (wanted.has(kind)) ctx.emit(kind, 'check', 'checking');

  const versions = wanted.has('node') ? await nodeVersions(ctx, force) : undefined;
  const plan = await planImages(ctx, versions);
  const needs = (kind: ImageKind): boolean => wanted.has(kind) && (force || !plan[kind].upToDate);
  const buildBase = needs('base') || (!plan.base.upToDate && (needs('node') || needs('python')));

  const results: BuiltImage[] = [];
  const superseded: string[] = [];
  for (const kind of IMAGE_KINDS) {
    const item = plan[kind];
    const build = kind === 'base' ? buildBase : needs(kind);
    if (!build) {
      if (wanted.has(kind)) {
        ctx.emit(kind, 'skip', 'up to date');
        results.push({ name: item.name, built: false, inputs: item.inputs ?? '' });
      }
      continue;
    }
    const inputs = item.inputs!;
    const started = Date.now();
    await buildOne(ctx, kind, inputs, { force, versions });
    const after = await inspectImage(ctx.docker, item.name);
    if (item.current && after && item.current.id !== after.id) superseded.push(item.current.id);
    ctx.emit(kind, 'done', `built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    results.push({ name: item.name, built: true, inputs });
  }
  if (versions && results.some((r) => r.name === ctx.names.node && r.built)) {
    await pruneTarballs(ctx.cacheDir, versions);
  }
  await removeImages(ctx.docker, superseded.reverse());
  return results;
}

/** Whether each image exists and matches its recipe. Reads no network. */
export async function imageStatus(docker: Docker, config: Config): Promise<ImageState[]> {
  const ctx = makeCtx(docker, config);
  const nodeCurrent = await inspectImage(docker, ctx.names.node);
  const versions =
    (await readVersionsCache(ctx.cacheDir)) ?? parseArtifacts(nodeCurrent?.labels[ARTIFACTS_LABEL]);
  const plan = await planImages(ctx, versions);
  return IMAGE_KINDS.map((kind) => ({
    name: plan[kind].name,
    present: plan[kind].current !== undefined,
    upToDate: plan[kind].upToDate,
  }));
}

function makeCtx(docker: Docker, config: Config, onProgress?: (p: ImageProgress) => void): Ctx {
  const names: Record<ImageKind, string> = {
    base: config.images.base,
    node: config.images.node,
    python: config.images.python,
  };
  return {
    docker,
    config,
    names,
    cacheDir: resolve(config.dataDir, 'cache', 'images'),
    mirror: resolveMirror(config),
    emit: (kind, phase, message) => onProgress?.({ image: names[kind], phase, message }),
  };
}

async function planImages(
  ctx: Ctx,
  versions: ArtifactVersions | undefined,
): Promise<Record<ImageKind, PlanItem>> {
  const baseHash = baseInputs(ctx.mirror);
  const baseImage = ctx.names.base;
  const inputs: Record<ImageKind, string | undefined> = {
    base: baseHash,
    node: hasAllArtifacts(versions) ? nodeInputs({ baseImage, baseHash, versions }) : undefined,
    python: pythonInputs({ baseImage, baseHash }),
  };
  const currents = await Promise.all(IMAGE_KINDS.map((kind) => inspectImage(ctx.docker, ctx.names[kind])));
  const entries = IMAGE_KINDS.map((kind, i): [ImageKind, PlanItem] => {
    const current = currents[i];
    const hash = inputs[kind];
    const upToDate = hash !== undefined && current?.labels[INPUTS_LABEL] === hash;
    return [kind, { kind, name: ctx.names[kind], inputs: hash, current, upToDate }];
  });
  return Object.fromEntries(entries) as Record<ImageKind, PlanItem>;
}

async function buildOne(
  ctx: Ctx,
  kind: ImageKind,
  inputs: string,
  opts: { force: boolean; versions: ArtifactVersions | undefined },
): Promise<void> {
  if (kind === 'base') return buildBase(ctx, inputs);
  if (kind === 'python') {
    return buildFromContext(ctx, 'python', inputs, {
      nocache: opts.force,
      dockerfile: pythonDockerfile(ctx.names.base),
    });
  }
  const versions = opts.versions;
  if (!hasAllArtifacts(versions)) throw new Error('internal: Node artifact versions were not resolved');
  const tarballs = await fetchArtifacts(ctx, versions);
  await buildFromContext(ctx, 'node', inputs, {
    nocache: opts.force,
    dockerfile: nodeDockerfile(ctx.names.base),
    labels: { [ARTIFACTS_LABEL]: formatArtifacts(versions) },
    fill: (dir) => unpackNodeArtifacts(tarballs, dir),
  });
}

// ---------------------------------------------------------------------------------------------
// Debian mirror

function resolveMirror(config: Config): string {
  return (config.images.debianMirror ?? hostDebianMirror() ?? DEFAULT_DEBIAN_MIRROR).replace(/\/+$/, '');
}

/** The mirror the host's apt uses, when the host is Debian (another distribution's mirror has no bookworm). */
function hostDebianMirror(): string | undefined {
  try {
    if (!/^ID="?debian"?$/m.test(readText('/etc/os-release'))) return undefined;
    const dir = '/etc/apt/sources.list.d';
    const parts = existsSync(dir)
      ? readdirSync(dir)
          .sort()
          .filter((f) => f.endsWith('.sources') || f.endsWith('.list'))
          .map((f) => readText(join(dir, f)))
      : [];
    return mirrorFromAptSources([readText('/etc/apt/sources.list'), ...parts].join('\n\n'));
  } catch {
    return undefined;
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// Docker helpers

async function inspectImage(docker: Docker, name: string): Promise<Current | undefined> {
  try {
    const info = await docker.getImage(name).inspect();
    return { id: info.Id, labels: info.Config?.Labels ?? {} };
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw new Error(
      `cannot inspect image ${name}: ${(err as Error).message}. Fix: make sure the Docker engine answers (docker info), or set DOCKER_HOST / docker.socketPath`,
    );
  }
}

function statusCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err) {
    const code = (err as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

interface ProgressEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** Follows a build/import response; resolves with the output lines, rejects on an error event. */
function followStream(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onLine: (line: string) => void,
): Promise<string[]> {
  const lines: string[] = [];
  return new Promise((resolvePromise, reject) => {
    let failure: string | undefined;
    docker.modem.followProgress(
      stream,
      (err) => {
        if (err) reject(err);
        else if (failure !== undefined) reject(new Error(failure));
        else resolvePromise(lines);
      },
      (event: ProgressEvent) => {
        if (event.error) failure = event.errorDetail?.message ?? event.error;
        const text = event.stream ?? event.status ?? '';
        for (const line of text.split('\n')) {
          const trimmed = line.trim();
          if (!trimmed) continue;
          lines.push(trimmed);
          onLine(trimmed);
        }
      },
    );
  });
}

async function removeImages(docker: Docker, ids: string[]): Promise<void> {
  for (const id of ids) {
    // Still used by a container or a child image: keep it; `docker image prune` can do it later.
    await docker
      .getImage(id)
      .remove()
      .catch(() => undefined);
  }
}

function splitName(name: string): { repo: string; tag: string } {
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) return { repo: name.slice(0, colon), tag: name.slice(colon + 1) };
  return { repo: name, tag: 'latest' };
}

// ---------------------------------------------------------------------------------------------
// Processes

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { onLine?: (line: string) => void; missing?: string } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let stdout = '';
    let stderr = '';
    const lineSplitter = (append: (s: string) => void) => {
      let pending = '';
      return (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        append(text);
        if (!opts.onLine) return;
        pending += text;
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        for (const line of parts) if (line.trim()) opts.onLine(line.trim());
      };
    };
    child.stdout.on(
      'data',
      lineSplitter((s) => {
        stdout += s;
      }),
    );
    child.stderr.on(
      'data',
      lineSplitter((s) => {
        stderr += s;
      }),
    );
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' && opts.missing ? new Error(opts.missing) : err);
    });
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
  });
}

function tail(text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Base image: debootstrap + docker import

async function buildBase(ctx: Ctx, inputs: string): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'building the base image needs root (debootstrap creates device nodes and runs chroot). Fix: run `sudo previewd images build`',
    );
  }
  const debootstrap = await ensureDebootstrap(ctx);
  await mkdir(ctx.cacheDir, { recursive: true });
  await removeStaleRootfs(ctx.cacheDir);
  const dir = join(ctx.cacheDir, `rootfs-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await bootstrap(ctx, debootstrap, dir);
    await trimRootfs(dir);
    await importRootfs(ctx, dir, inputs);
  } finally {
    await removeRootfs(dir);
  }
}

async function ensureDebootstrap(ctx: Ctx): Promise<string> {
  const found = findExecutable('debootstrap');
  if (found) return found;
  if (!findExecutable('apt-get')) {
    throw new Error(
      'debootstrap is missing: install it with your package manager (e.g. apt-get install -y debootstrap)',
    );
  }
  ctx.emit('base', 'bootstrap', 'installing debootstrap with apt-get');
  let result = await run('apt-get', ['install', '-y', '-q', 'debootstrap']);
  if (result.code !== 0) {
    await run('apt-get', ['update', '-q']);
    result = await run('apt-get', ['install', '-y', '-q', 'debootstrap']);
  }
  const installed = findExecutable('debootstrap');
  if (result.code !== 0 || !installed) {
    throw new Error(
      `debootstrap is missing and apt-get could not install it:\n${tail(result.stderr)}\nFix: apt-get install -y debootstrap`,
    );
  }
  return installed;
}

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs
    .filter(Boolean)
    .map((d) => join(d, name))
    .find((p) => existsSync(p));
}

async function bootstrap(ctx: Ctx, debootstrap: string, dir: string): Promise<void> {
  const { suite, variant } = BASE_RECIPE;
  ctx.emit('base', 'bootstrap', `debootstrap ${suite} from ${ctx.mirror}`);
  const result = await run(debootstrap, [`--variant=${variant}`, suite, dir, ctx.mirror], {
    onLine: (line) => ctx.emit('base', 'bootstrap', line),
  });
  if (result.code === 0) return;
  const log = readText(join(dir, 'debootstrap', 'debootstrap.log'));
  throw new Error(
    `debootstrap failed (exit ${result.code}):\n${tail(`${result.stdout}\n${result.stderr}\n${log}`)}\n` +
      `Fix: make sure ${ctx.mirror} is reachable over HTTP from this host, or set images.debianMirror ` +
      '(PREVIEWD_DEBIAN_MIRROR) to a reachable Debian mirror',
  );
}

/** Empties apt's caches and debootstrap's leftovers (apt-get update runs in every derived image). */
async function trimRootfs(dir: string): Promise<void> {
  for (const rel of BASE_RECIPE.cleanup) {
    const path = join(dir, rel);
    const info = await stat(path).catch(() => undefined);
    if (!info) continue;
    if (!info.isDirectory() || rel === 'debootstrap') {
      await rm(path, { recursive: true, force: true });
      continue;
    }
    for (const entry of await readdir(path)) {
      if (entry !== 'partial' && entry !== 'lock')
        await rm(join(path, entry), { recursive: true, force: true });
    }
  }
}

async function importRootfs(ctx: Ctx, dir: string, inputs: string): Promise<void> {
  ctx.emit('base', 'import', `importing the root file system as ${ctx.names.base}`);
  await unmountUnder(dir);
  const tar = spawn('tar', ['-C', dir, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tarErr = '';
  tar.stderr.on('data', (chunk: Buffer) => {
    tarErr += chunk.toString('utf8');
  });
  const tarDone = new Promise<number>((resolvePromise, reject) => {
    tar.on('error', reject);
    tar.on('close', (code) => resolvePromise(code ?? 1));
  });
  const { repo, tag } = splitName(ctx.names.base);
  const changes = [...BASE_RECIPE.changes, `LABEL ${INPUTS_LABEL}=${inputs} ${RECIPE_LABEL}=base`];
  const stream = await ctx.docker.importImage(tar.stdout, { repo, tag, changes });
  await followStream(ctx.docker, stream, (line) => ctx.emit('base', 'import', line));
  const code = await tarDone;
  // tar exits 1 when a file changed while being read; only 2+ is a real failure.
  if (code > 1) throw new Error(`tar of the root file system failed (exit ${code}): ${tail(tarErr)}`);
}

async function removeRootfs(dir: string): Promise<void> {
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
}

/** debootstrap mounts /proc and /sys inside the target; a failed run may leave them mounted. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readText('/proc/self/mounts')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const mount of mounts) await run('umount', ['-l', mount]);
}

/** Removes root file systems left by earlier runs that were killed (their process is gone). */
async function removeStaleRootfs(cacheDir: string): Promise<void> {
  for (const entry of await readdir(cacheDir)) {
    const match = /^rootfs-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!match || processAlive(Number(match[1]))) continue;
    await removeRootfs(join(cacheDir, entry));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile builds

async function buildFromContext(
  ctx: Ctx,
  kind: 'node' | 'python',
  inputs: string,
  opts: {
    nocache: boolean;
    dockerfile: string;
    labels?: Record<string, string>;
    fill?: (dir: string) => Promise<void>;
  },
): Promise<void> {
  const name = ctx.names[kind];
  await mkdir(ctx.cacheDir, { recursive: true });
  const dir = await mkdtemp(join(ctx.cacheDir, `context-${kind}-`));
  try {
    await writeFile(join(dir, 'Dockerfile'), opts.dockerfile);
    await opts.fill?.(dir);
    ctx.emit(kind, 'build', `building ${name}`);
    const labels = { ...opts.labels, [INPUTS_LABEL]: inputs, [RECIPE_LABEL]: kind };
    // tar-fs returns a streamx stream; dockerode only pipes it.
    const context = tarFs.pack(dir) as unknown as NodeJS.ReadableStream;
    const stream = await ctx.docker.buildImage(context, {
      t: name,
      labels,
      rm: true,
      forcerm: true,
      nocache: opts.nocache,
    });
    await followStream(ctx.docker, stream, (line) => ctx.emit(kind, 'build', line)).catch((err: Error) => {
      throw new Error(
        `building ${name} failed: ${err.message}\nFix: if apt-get failed, the Debian mirror ${ctx.mirror} must be reachable ` +
          'from containers (set images.debianMirror / PREVIEWD_DEBIAN_MIRROR); then run `previewd images build`',
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Node artifacts from the npm registry

async function readVersionsCache(cacheDir: string): Promise<ArtifactVersions | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(cacheDir, VERSIONS_FILE), 'utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const versions = (parsed as { versions?: unknown }).versions;
    if (typeof versions !== 'object' || versions === null) return undefined;
    const clean = Object.fromEntries(
      Object.entries(versions).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
    return hasAllArtifacts(clean) ? clean : undefined;
  } catch {
    return undefined;
  }
}

async function writeVersionsCache(cacheDir: string, versions: ArtifactVersions): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const body = { resolvedAt: new Date().toISOString(), versions };
  const tmp = join(cacheDir, `${VERSIONS_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`);
  await rename(tmp, join(cacheDir, VERSIONS_FILE));
}

/**
 * The exact artifact versions: remembered ones (cache file, then the Node image's labels) unless
 * `force`; otherwise resolved from the npm registry and remembered.
 */
async function nodeVersions(ctx: Ctx, force: boolean): Promise<ArtifactVersions> {
  if (!force) {
    const cached = await readVersionsCache(ctx.cacheDir);
    if (cached) return cached;
    const fromImage = parseArtifacts(
      (await inspectImage(ctx.docker, ctx.names.node))?.labels[ARTIFACTS_LABEL],
    );
    if (fromImage) {
      await writeVersionsCache(ctx.cacheDir, fromImage);
      return fromImage;
    }
  }
  const versions: ArtifactVersions = {};
  for (const key of NODE_ARTIFACT_KEYS) {
    ctx.emit('node', 'check', `resolving ${artifactSpec(key)} on the npm registry`);
    versions[artifactSpec(key)] = await resolveVersion(artifactSpec(key));
  }
  await writeVersionsCache(ctx.cacheDir, versions);
  return versions;
}

const NPM_MISSING =
  'npm is missing: install Node.js with npm (previewd uses it to fetch Node for the images)';

async function resolveVersion(spec: string): Promise<string> {
  const result = await run('npm', ['view', spec, 'version', '--json'], { missing: NPM_MISSING });
  const version = result.code === 0 ? safeHighest(result.stdout) : undefined;
  if (version) return version;
  throw new Error(
    `could not resolve ${spec} on the npm registry:\n${tail(result.stderr)}\n` +
      'Fix: make sure the npm registry is reachable (npm config get registry; proxy and CA settings)',
  );
}

function safeHighest(json: string): string | undefined {
  try {
    return highestVersion(json);
  } catch {
    return undefined;
  }
}

function tarballPath(cacheDir: string, key: NodeArtifact, version: string): string {
  return join(cacheDir, `${NODE_ARTIFACTS[key].name}-${version}.tgz`);
}

async function fetchArtifacts(ctx: Ctx, versions: ArtifactVersions): Promise<Record<NodeArtifact, string>> {
  await mkdir(ctx.cacheDir, { recursive: true });
  const paths: Partial<Record<NodeArtifact, string>> = {};
  for (const key of NODE_ARTIFACT_KEYS) {
    const version = versions[artifactSpec(key)]!;
    const path = tarballPath(ctx.cacheDir, key, version);
    if (!existsSync(path)) {
      ctx.emit('node', 'build', `fetching ${NODE_ARTIFACTS[key].name}@${version} from the npm registry`);
      await npmPack(ctx.cacheDir, `${NODE_ARTIFACTS[key].name}@${version}`, path);
    }
    paths[key] = path;
  }
  return paths as Record<NodeArtifact, string>;
}

async function npmPack(cacheDir: string, spec: string, dest: string): Promise<void> {
  const tmp = await mkdtemp(join(cacheDir, 'pack-'));
  try {
    const result = await run('npm', ['pack', spec, '--pack-destination', tmp, '--json'], {
      missing: NPM_MISSING,
    });
    const file = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (result.code !== 0 || !file) {
      throw new Error(
        `npm pack ${spec} failed:\n${tail(result.stderr)}\nFix: make sure the npm registry is reachable (proxy and CA settings)`,
      );
    }
    await rename(join(tmp, file), dest);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Puts `node` (the binary), `npm/` and `corepack/` into the build context. */
async function unpackNodeArtifacts(tarballs: Record<NodeArtifact, string>, dir: string): Promise<void> {
  await extractPackage(tarballs.node, dir, (name) => (name === 'package/bin/node' ? 'node' : undefined));
  await extractPackage(tarballs.npm, dir, (name) => name.replace(/^package\//, 'npm/'));
  await extractPackage(tarballs.corepack, dir, (name) => name.replace(/^package\//, 'corepack/'));
}

/** Extracts an npm tarball, renaming entries with `rename` (undefined = skip the entry). */
async function extractPackage(
  tgz: string,
  dir: string,
  rename: (name: string) => string | undefined,
): Promise<void> {
  const skip = '.skipped/';
  const extract = tarFs.extract(dir, {
    map: (header) => {
      header.name = rename(header.name) ?? `${skip}${header.name}`;
      return header;
    },
    ignore: (name) => name.startsWith(join(dir, skip)),
  });
  await pipeline(createReadStream(tgz), createGunzip(), extract);
}

/** Removes cached tarballs of other versions than the ones just built. */
async function pruneTarballs(cacheDir: string, versions: ArtifactVersions): Promise<void> {
  const keep = new Set(
    NODE_ARTIFACT_KEYS.map((key) => tarballPath(cacheDir, key, versions[artifactSpec(key)] ?? '')),
  );
  for (const key of NODE_ARTIFACT_KEYS) {
    const pattern = new RegExp(
      `^${NODE_ARTIFACTS[key].name.replace(/[-.]/g, '\\$&')}-\\d+\\.\\d+\\.\\d+\\.tgz$`,
    );
    for (const entry of await readdir(cacheDir)) {
      const path = join(cacheDir, entry);
      if (pattern.test(entry) && !keep.has(path)) await rm(path, { force: true });
    }
  }
}
