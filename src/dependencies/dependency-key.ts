import { createHash } from 'node:crypto';
import type { RuntimePlan } from '../domain/schemas.js';
import { layerKey } from '../workspaces/layers.js';

/**
 * The pure rules of dependency layers (docs/runtimes.md#dependency-layers): which projects may get
 * their installed dependencies from a layer, the key of that layer, and the files previewd's own
 * build of it starts from. Nothing here reads the disk or the network.
 */

/** The files that decide what an install puts down (read raw from the workspace). */
export const NODE_INPUTS = [
  'package.json',
  'package-lock.json',
  'npm-shrinkwrap.json',
  'pnpm-lock.yaml',
  'yarn.lock',
  '.npmrc',
  '.yarnrc',
  '.yarnrc.yml',
] as const;
export const PIP_INPUTS = ['requirements.txt', 'pyproject.toml'] as const;
export type DependencyInput = (typeof NODE_INPUTS)[number] | (typeof PIP_INPUTS)[number];

/** The most a dependency file may hold to be keyed (past it: installs as before). */
export const INPUT_MAX_BYTES = 32 * 1024 * 1024;

/** package.json fields that change what gets installed; the rest (name, scripts…) is the user's alone. */
const MANIFEST_FIELDS = [
  'dependencies',
  'devDependencies',
  'optionalDependencies',
  'peerDependencies',
  'peerDependenciesMeta',
  'bundleDependencies',
  'bundledDependencies',
  'overrides',
  'resolutions',
  'dependenciesMeta',
  'packageManager',
  'engines',
  'os',
  'cpu',
  'pnpm',
] as const;

/** Root scripts npm, pnpm and yarn run around an install: they need the project's own files. */
const LIFECYCLE_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare'];

/** Environment variables an install reads (the rest of the env is the app's). */
const INSTALL_ENV =
  /^(npm_config_|NPM_CONFIG_|YARN_|PNPM_|COREPACK_|PIP_)|^(NODE_ENV|NODE_OPTIONS|NODE_AUTH_TOKEN)$/;
/** Install environment that moves where things go: the layer would not hold them. */
const MOVING_ENV =
  /^(PIP_TARGET|PIP_PREFIX|PIP_ROOT|PIP_USER|PYTHONUSERBASE|npm_config_prefix|NPM_CONFIG_PREFIX|npm_config_global|YARN_MODULES_FOLDER|PNPM_HOME)$/i;

export type DependencyKind = 'node' | 'pip';

export interface DependencyRecipe {
  eligible: true;
  kind: DependencyKind;
  /** The layer key (the layer store's directory name). */
  key: string;
  packageManager: NonNullable<RuntimePlan['packageManager']>;
  image: string;
  install: string;
  /** The files previewd's build sandbox gets (a canonical package.json: no name, scripts or other user fields). */
  buildFiles: Record<string, string>;
  /** The install-relevant env the build runs with (and the key holds). */
  env: Record<string, string>;
}

export interface Ineligible {
  eligible: false;
  reason: string;
}

export interface RecipeInput {
  /** The raw dependency files in the workspace (NODE_INPUTS / PIP_INPUTS), as read. */
  inputs: Partial<Record<DependencyInput, Buffer>>;
  /** Every path the create wrote (user files, archive entries). */
  paths: readonly string[];
  plan: RuntimePlan;
  /** The install command detection alone gives for these files (no overrides). */
  detectedInstall: string | undefined;
  /** The sandbox's env: the plan's, the request's on top. */
  env: Readonly<Record<string, string>>;
  owner?: string;
  /** dependencyLayers.shared: false keys the layer by owner. */
  shared: boolean;
}

const no = (reason: string): Ineligible => ({ eligible: false, reason });

function sha(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted (a canonical text of the manifest's dependency fields). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A dependency spec that points at files of the project (or another package of a workspace). */
export function localSpec(spec: string): boolean {
  return /^(file:|link:|workspace:|portal:|patch:|exec:|\.{0,2}\/|~\/|[A-Za-z]:\\)/.test(spec.trim());
}

function installEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(env).sort()) if (INSTALL_ENV.test(name)) out[name] = env[name]!;
  return out;
}

/**
 * Whether a project may take its dependencies from a layer, and if so the layer's key and the
 * build's inputs. Eligible: a detected install (no `runtime.install` of the caller's), no user
 * files under node_modules/, and per package manager the rules below; anything else installs as
 * before.
 */
export function dependencyRecipe(input: RecipeInput): DependencyRecipe | Ineligible {
  const { plan } = input;
  if (!plan.install || !plan.packageManager) return no('no install');
  if (plan.install !== input.detectedInstall) return no('the install command is not the detected one');
  const env = installEnv(input.env);
  const moving = Object.keys(input.env).find((name) => MOVING_ENV.test(name));
  if (moving) return no(`${moving} moves the install out of the layer`);
  if (plan.packageManager === 'pip') return pipRecipe(input, env);
  return nodeRecipe(input, env);
}

function keyOf(
  input: RecipeInput,
  kind: DependencyKind,
  parts: string[],
  env: Record<string, string>,
): string {
  return layerKey(
    'dependencies',
    kind,
    input.plan.image,
    input.plan.packageManager ?? '',
    input.plan.install ?? '',
    canonicalJson(env),
    input.shared ? '' : `owner:${input.owner ?? ''}`,
    ...parts,
  );
}

function nodeRecipe(input: RecipeInput, env: Record<string, string>): DependencyRecipe | Ineligible {
  const pm = input.plan.packageManager as 'npm' | 'pnpm' | 'yarn';
  if (input.paths.some((p) => p === 'node_modules' || p.startsWith('node_modules/')))
    return no('the project sends its own node_modules');
  if (input.paths.some((p) => p === 'pnpm-workspace.yaml' || /^\.pnpmfile\.c?js$/.test(p)))
    return no('pnpm workspaces and pnpmfiles run with the project');
  const raw = input.inputs['package.json'];
  if (!raw) return no('no package.json');
  let manifest: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
      return no('package.json is not an object');
    manifest = parsed as Record<string, unknown>;
  } catch {
    return no('package.json is not JSON');
  }
  if (manifest.workspaces !== undefined) return no('workspaces');
  const scripts = (manifest.scripts ?? {}) as Record<string, unknown>;
  const lifecycle = LIFECYCLE_SCRIPTS.find((s) => typeof scripts === 'object' && scripts && s in scripts);
  if (lifecycle) return no(`a root ${lifecycle} script`);
  for (const field of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
    const deps = manifest[field];
    if (deps === undefined) continue;
    if (!deps || typeof deps !== 'object' || Array.isArray(deps)) return no(`${field} is not an object`);
    for (const [name, spec] of Object.entries(deps)) {
      if (typeof spec !== 'string') return no(`${field}.${name} is not a string`);
      if (localSpec(spec)) return no(`${name} is a local dependency (${spec})`);
    }
  }
  const yarnrcYml = input.inputs['.yarnrc.yml']?.toString('utf8');
  if (pm === 'yarn' && /\byarnPath\s*:/.test(yarnrcYml ?? ''))
    return no('.yarnrc.yml names a yarnPath (code of the project)');
  const lock = input.inputs['yarn.lock']?.toString('utf8');
  const berry =
    pm === 'yarn' &&
    (lock?.includes('__metadata:') || /^yarn@([2-9]|\d{2,})/.test(String(manifest.packageManager ?? '')));
  if (berry && !/^\s*nodeLinker\s*:\s*["']?node-modules["']?\s*$/m.test(yarnrcYml ?? ''))
    return no('yarn berry without nodeLinker: node-modules');
  const canonical: Record<string, unknown> = {};
  // pnpm writes the project's own name into node_modules/.package-map.json: kept, and keyed. npm
  // copies its lockfile's name and version into node_modules/.package-lock.json: the key leaves
  // them out (two apps from one template share the layer) and the attach writes the sandbox's own.
  const ownName = pm === 'pnpm' && typeof manifest.name === 'string' ? manifest.name : undefined;
  canonical.name = ownName ?? BUILD_NAME;
  canonical.version = BUILD_VERSION;
  canonical.private = true;
  for (const field of MANIFEST_FIELDS) if (manifest[field] !== undefined) canonical[field] = manifest[field];
  const manifestText = `${JSON.stringify(canonical, null, 2)}\n`;
  const buildFiles: Record<string, string> = { 'package.json': manifestText };
  const parts = [
    `manifest:${sha(canonicalJson(Object.fromEntries(MANIFEST_FIELDS.map((f) => [f, manifest[f] ?? null]))))}`,
  ];
  for (const name of NODE_INPUTS) {
    if (name === 'package.json') continue;
    const content = input.inputs[name];
    if (content === undefined) continue;
    const npmLock = name === 'package-lock.json' || name === 'npm-shrinkwrap.json';
    const anonymous = npmLock ? anonymousNpmLock(content) : undefined;
    if (anonymous) {
      buildFiles[name] = anonymous.build;
      parts.push(`${name}:${sha(anonymous.keyed)}`);
    } else {
      buildFiles[name] = content.toString('utf8');
      parts.push(`${name}:${sha(content)}`);
    }
  }
  return {
    eligible: true,
    kind: 'node',
    key: keyOf(input, 'node', [...parts, `identity:${canonical.name}@${canonical.version}`], env),
    packageManager: pm,
    image: input.plan.image,
    install: input.plan.install!,
    buildFiles,
    env,
  };
}

/** The name and version previewd's build gives a project (npm: in place of the lockfile's own). */
export const BUILD_NAME = 'previewd-dependencies';
const BUILD_VERSION = '0.0.0';

/**
 * An npm lockfile without the project's own name and version (top level and the root package):
 * `keyed` is what the key hashes, `build` the lockfile previewd's build installs from (named as the
 * build's package.json). Undefined when it is not a JSON object (keyed raw, installed as sent).
 */
export function anonymousNpmLock(raw: Buffer): { keyed: string; build: string } | undefined {
  let lock: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    lock = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { name: _name, version: _version, ...rest } = lock;
  const packages = rest.packages as Record<string, Record<string, unknown>> | undefined;
  const root = packages && typeof packages === 'object' ? packages[''] : undefined;
  const anonymousPackages =
    packages && root && typeof root === 'object'
      ? {
          ...packages,
          '': Object.fromEntries(Object.entries(root).filter(([k]) => k !== 'name' && k !== 'version')),
        }
      : packages;
  const keyed = canonicalJson({ ...rest, ...(anonymousPackages ? { packages: anonymousPackages } : {}) });
  const buildPackages =
    anonymousPackages && root
      ? { ...anonymousPackages, '': { name: BUILD_NAME, version: BUILD_VERSION, ...anonymousPackages[''] } }
      : anonymousPackages;
  const build = `${JSON.stringify(
    {
      name: BUILD_NAME,
      version: BUILD_VERSION,
      ...rest,
      ...(buildPackages ? { packages: buildPackages } : {}),
    },
    null,
    2,
  )}\n`;
  return { keyed, build };
}

/** The name and version an npm lockfile names its project by (what npm copies into node_modules). */
export function npmLockIdentity(raw: Buffer | undefined): { name?: string; version?: string } | undefined {
  if (!raw) return undefined;
  try {
    const lock = JSON.parse(raw.toString('utf8')) as { name?: unknown; version?: unknown };
    return {
      ...(typeof lock.name === 'string' ? { name: lock.name } : {}),
      ...(typeof lock.version === 'string' ? { version: lock.version } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Options a requirements line may carry that fetch only from an index. */
const PIP_INDEX_OPTIONS =
  /^(-i|--index-url|--extra-index-url|--trusted-host|--no-index|--prefer-binary|--only-binary|--no-binary|--pre)(\s|=|$)/;

/**
 * A requirements file previewd can install alone: names (with versions, extras, markers, hashes) and
 * index options; no -e/-r/-c, no local paths or file: URLs, no --find-links to the disk.
 */
export function requirementsProblem(text: string): string | undefined {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*/, '').trim();
    if (!line) continue;
    if (line.startsWith('-')) {
      if (PIP_INDEX_OPTIONS.test(line)) {
        const value = line.split(/[\s=]+/)[1] ?? '';
        if (value && !/^https?:\/\//.test(value) && !/^--(trusted-host|only-binary|no-binary)/.test(line))
          return `${line}: not an http(s) index`;
        continue;
      }
      if (/^(-f|--find-links)(\s|=)/.test(line)) {
        const value = line.split(/[\s=]+/)[1] ?? '';
        if (/^https?:\/\//.test(value)) continue;
        return `${line}: local links`;
      }
      return `${line.split(/\s/)[0]} needs the project's files`;
    }
    if (/(^|@\s*)(file:|\.{0,2}\/|~\/)/.test(line) || /^[^\s;]*[\\/]/.test(line.split('@')[0]!.trim()))
      return `${line}: a local path`;
  }
  return undefined;
}

function pipRecipe(input: RecipeInput, env: Record<string, string>): DependencyRecipe | Ineligible {
  const requirements = input.inputs['requirements.txt'];
  const pyproject = input.inputs['pyproject.toml'];
  const buildFiles: Record<string, string> = {};
  const parts: string[] = [];
  if (requirements !== undefined) {
    const problem = requirementsProblem(requirements.toString('utf8'));
    if (problem) return no(problem);
    buildFiles['requirements.txt'] = requirements.toString('utf8');
    parts.push(`requirements.txt:${sha(requirements)}`);
  } else if (pyproject !== undefined) {
    // The install names the dependencies on its command line (the key holds it); the file is
    // stamped by the supervisor, so the build gets it too.
    buildFiles['pyproject.toml'] = pyproject.toString('utf8');
    parts.push(`pyproject.toml:${sha(pyproject)}`);
  } else {
    return no('no requirements.txt or pyproject.toml');
  }
  return {
    eligible: true,
    kind: 'pip',
    key: keyOf(input, 'pip', parts, env),
    packageManager: 'pip',
    image: input.plan.image,
    install: input.plan.install!,
    buildFiles,
    env,
  };
}
