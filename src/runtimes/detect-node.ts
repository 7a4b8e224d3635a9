import { PreviewdError } from '../domain/errors.js';
import type { RuntimePlan } from '../domain/schemas.js';
import { DETECTION_READ_MAX, type FileTree } from './file-tree.js';

/** The Node side of detection: package.json projects (Next.js, Vite, servers, scripts) and bare server.js. */

export type NodePackageManager = 'npm' | 'pnpm' | 'yarn';

interface PackageJson {
  main?: unknown;
  scripts?: Record<string, unknown>;
  dependencies?: Record<string, unknown>;
  devDependencies?: Record<string, unknown>;
  packageManager?: unknown;
}

interface PackageManagerInfo {
  name: NodePackageManager;
  locked: boolean;
  /** Yarn 2+ ("berry"): `--immutable` instead of `--frozen-lockfile`. */
  berry: boolean;
}

/**
 * Corepack without questions: no download prompt, no `packageManager` pinned into the user's
 * package.json, the version it knows instead of asking the registry for the latest, and no extra
 * registry-signature check (registries and mirrors that omit signatures would stop pnpm/yarn;
 * the download is still checked against its integrity hash, as npm itself does).
 */
const COREPACK_ENV = {
  COREPACK_ENABLE_DOWNLOAD_PROMPT: '0',
  COREPACK_ENABLE_AUTO_PIN: '0',
  COREPACK_DEFAULT_TO_LATEST: '0',
  COREPACK_INTEGRITY_KEYS: '0',
};

export const DEFAULT_PORTS = {
  vite: 5173,
  nextjs: 3000,
  node: 3000,
} as const;

function readPackageJson(tree: FileTree): PackageJson | undefined {
  const raw = tree.read('package.json');
  if (raw === undefined) {
    if (!tree.paths.includes('package.json')) return undefined;
    throw new PreviewdError(
      'file_too_large',
      `package.json is larger than ${DETECTION_READ_MAX} characters`,
      {
        hint: 'Detection reads package.json up to 256 KiB: make it smaller, or pass runtime.start to run the files without detection.',
        details: { path: 'package.json', maxChars: DETECTION_READ_MAX },
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new PreviewdError('invalid_request', `package.json is not valid JSON: ${(err as Error).message}`, {
      hint: 'Fix package.json, or pass runtime.start to run the files without detection.',
      details: { path: 'package.json' },
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PreviewdError('invalid_request', 'package.json must hold a JSON object', {
      details: { path: 'package.json' },
    });
  }
  return parsed as PackageJson;
}

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function packageManagerOf(tree: FileTree, pkg: PackageJson): PackageManagerInfo {
  const has = (path: string) => tree.paths.includes(path);
  const declared = typeof pkg.packageManager === 'string' ? pkg.packageManager : '';
  const declaredBerry = /^yarn@([2-9]|\d{2,})/.test(declared);
  if (has('pnpm-lock.yaml')) return { name: 'pnpm', locked: true, berry: false };
  if (has('yarn.lock')) {
    const berry = declaredBerry || (tree.read('yarn.lock') ?? '').includes('__metadata:');
    return { name: 'yarn', locked: true, berry };
  }
  if (has('package-lock.json') || has('npm-shrinkwrap.json'))
    return { name: 'npm', locked: true, berry: false };
  if (declared.startsWith('pnpm@')) return { name: 'pnpm', locked: false, berry: false };
  if (declared.startsWith('yarn@')) return { name: 'yarn', locked: false, berry: declaredBerry };
  // bun.lockb / bun.lock: the image has no bun; npm installs from package.json.
  return { name: 'npm', locked: false, berry: false };
}

/**
 * pnpm's store outside the workspace (by default it would land in /workspace/.pnpm-store, among the
 * user's files), and dependencies' build scripts allowed, as npm runs them (pnpm 10+ refuses them).
 */
const PNPM_FLAGS = '--store-dir $HOME/.cache/pnpm-store --config.dangerously-allow-all-builds=true';

/**
 * The install command: exactly the lockfile when there is one; when it no longer matches
 * package.json (edited by hand or by an AI), a plain install instead of a preview that never starts.
 */
function installCommand(pm: PackageManagerInfo): string {
  const commands: Record<NodePackageManager, [locked: string, plain: string]> = {
    npm: ['npm ci --no-audit --no-fund', 'npm install --no-audit --no-fund'],
    pnpm: [`corepack pnpm install --frozen-lockfile ${PNPM_FLAGS}`, `corepack pnpm install ${PNPM_FLAGS}`],
    yarn: [
      pm.berry ? 'corepack yarn install --immutable' : 'corepack yarn install --frozen-lockfile',
      'corepack yarn install',
    ],
  };
  const [locked, plain] = commands[pm.name];
  return pm.locked ? `${locked} || ${plain}` : plain;
}

/** `npm run dev -- --host 0.0.0.0`: npm needs `--` before the script's arguments; pnpm and yarn pass them on. */
function runScript(pm: NodePackageManager, script: string, args: string[]): string {
  const extra = args.length > 0 ? ` ${pm === 'npm' ? '-- ' : ''}${args.join(' ')}` : '';
  switch (pm) {
    case 'pnpm':
      return `corepack pnpm run ${script}${extra}`;
    case 'yarn':
      return `corepack yarn run ${script}${extra}`;
    default:
      return `npm run ${script}${extra}`;
  }
}

/** Runs a binary of an installed dependency. */
function runBinary(pm: NodePackageManager, bin: string, args: string[]): string {
  const tail = [bin, ...args].join(' ');
  switch (pm) {
    case 'pnpm':
      return `corepack pnpm exec ${tail}`;
    case 'yarn':
      return `corepack yarn run ${tail}`;
    default:
      return `npm exec --no -- ${tail}`;
  }
}

/** A port a command line names: `--port 4000`, `--port=4000`, `-p 4000`, `PORT=4000`. */
export function portFromCommand(command: string): number | undefined {
  const match =
    /(?:^|\s)--port(?:=|\s+)(\d{2,5})\b/.exec(command) ??
    /(?:^|\s)-p(?:=|\s*)(\d{2,5})\b/.exec(command) ??
    /\bPORT=(\d{2,5})\b/.exec(command);
  return validPort(match?.[1]);
}

function validPort(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const port = Number(raw);
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * The first literal `port: <digits>` inside a `{…}` opened by `opener` (up to the next `}`), in one
 * pass: after a block without a port the search goes on past its `}` (a `{` opened inside it ends at
 * the same `}`, so it holds nothing new). A single regular expression spanning opener and port
 * (`opener[^}]*?port…`) scans to the next `}` from every opener: quadratic in the source.
 */
function portInBlock(source: string, opener: RegExp): string | undefined {
  const openers = new RegExp(opener.source, 'g');
  for (let m = openers.exec(source); m; m = openers.exec(source)) {
    const start = m.index + m[0].length;
    const end = source.indexOf('}', start);
    const port = /\bport\s*:\s*(\d{2,5})\b/.exec(source.slice(start, end === -1 ? undefined : end))?.[1];
    if (port !== undefined || end === -1) return port;
    openers.lastIndex = end + 1;
  }
  return undefined;
}

/** `server: { port: 4000 }` in a Vite config, when the port is a literal. */
export function vitePortFromConfig(source: string): number | undefined {
  return validPort(portInBlock(source, /\bserver\s*:\s*\{/));
}

/**
 * The port a Node server listens on, read from its source: a literal `listen(4000)` or
 * `listen({ port: 4000 })`, else the fallback of `process.env.PORT || 4000`.
 */
export function serverPortFromSource(source: string): number | undefined {
  const literal = /\.listen\(\s*(\d{2,5})\b/.exec(source)?.[1] ?? portInBlock(source, /\.listen\(\s*\{/);
  if (literal !== undefined) return validPort(literal);
  return validPort(/process\.env\.PORT\s*(?:\|\||\?\?)\s*['"]?(\d{2,5})\b/.exec(source)?.[1]);
}

/** Whether a script's command starts with `bin` (after env assignments), e.g. `vite`, `next dev`. */
function scriptRuns(command: string, bin: RegExp): boolean {
  const body = command.replace(/^\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*/, '');
  return bin.test(body);
}

const VITE_DEV = /^vite(?:\s+(?:dev|serve))?(?:\s|$)(?!.*\b(?:build|preview)\b)/;
const NEXT_DEV = /^next\s+dev(?:\s|$)/;

function viteFlavor(deps: Record<string, string>): string {
  if (deps['@sveltejs/kit']) return 'sveltekit';
  if (deps.react || deps['@vitejs/plugin-react'] || deps['@vitejs/plugin-react-swc']) return 'vite-react';
  if (deps.vue || deps['@vitejs/plugin-vue']) return 'vite-vue';
  if (deps.svelte || deps['@sveltejs/vite-plugin-svelte']) return 'vite-svelte';
  return 'vite';
}

const SERVER_FRAMEWORKS = ['express', 'fastify', 'koa', '@hapi/hapi', 'hono'] as const;

/** Entry files tried, in order, for a package without dev/start scripts. */
const NODE_ENTRIES = [
  'server.js',
  'server.mjs',
  'index.js',
  'index.mjs',
  'app.js',
  'app.mjs',
  'main.js',
  'src/server.js',
  'src/index.js',
];

/** Root files that make a folder without package.json a Node server. */
const BARE_SERVER_ENTRIES = ['server.js', 'server.mjs'];

function nodePlan(image: string, fields: Omit<RuntimePlan, 'image' | 'source'>): RuntimePlan {
  return { image, source: 'detected', ...fields };
}

/**
 * Plans a Node project, or returns undefined when the files are not a runnable Node project
 * (no package.json with something to run, no server.js).
 */
export function detectNode(tree: FileTree, image: string): RuntimePlan | undefined {
  const pkg = readPackageJson(tree);
  if (!pkg) {
    const entry = BARE_SERVER_ENTRIES.find((p) => tree.paths.includes(p));
    if (!entry) return undefined;
    const port = serverPortFromSource(tree.read(entry) ?? '') ?? DEFAULT_PORTS.node;
    return nodePlan(image, {
      start: `node --watch ${entry}`,
      port,
      env: { HOST: '0.0.0.0', PORT: String(port) },
      framework: 'node',
    });
  }

  const scripts = stringRecord(pkg.scripts);
  const deps = { ...stringRecord(pkg.devDependencies), ...stringRecord(pkg.dependencies) };
  const pm = packageManagerOf(tree, pkg);
  const install = Object.keys(deps).length > 0 ? installCommand(pm) : undefined;
  const env: Record<string, string> = pm.name === 'npm' ? {} : { ...COREPACK_ENV };
  const common = { env, packageManager: pm.name, ...(install ? { install } : {}) };
  const scriptNames = ['dev', 'start', 'serve'];

  if (deps.next) {
    const script = scriptNames.find((s) => scripts[s] && scriptRuns(scripts[s], NEXT_DEV));
    const scripted = script ? portFromCommand(scripts[script]!) : undefined;
    const port = scripted ?? DEFAULT_PORTS.nextjs;
    const args = ['-H', '0.0.0.0', ...(scripted ? [] : ['-p', String(port)])];
    const start = script ? runScript(pm.name, script, args) : runBinary(pm.name, 'next', ['dev', ...args]);
    return nodePlan(image, { ...common, start, port, framework: 'nextjs' });
  }

  const viteConfig = tree.paths.find((p) => /^vite\.config\.[cm]?[jt]s$/.test(p));
  if (deps.vite || viteConfig) {
    const script = scriptNames.find((s) => scripts[s] && scriptRuns(scripts[s], VITE_DEV));
    const scripted = script ? portFromCommand(scripts[script]!) : undefined;
    const port =
      scripted ??
      (viteConfig ? vitePortFromConfig(tree.read(viteConfig) ?? '') : undefined) ??
      DEFAULT_PORTS.vite;
    const args = ['--host', '0.0.0.0', ...(scripted ? [] : ['--port', String(port)])];
    const start = script ? runScript(pm.name, script, args) : runBinary(pm.name, 'vite', args);
    return nodePlan(image, { ...common, start, port, framework: viteFlavor(deps) });
  }

  const framework = SERVER_FRAMEWORKS.find((name) => deps[name])?.replace('@hapi/', '') ?? 'node';
  const main = typeof pkg.main === 'string' ? pkg.main.replace(/^\.\//, '') : undefined;
  const entry = [...(main ? [main] : []), ...NODE_ENTRIES].find((p) => tree.paths.includes(p));
  const script = scriptNames.slice(0, 2).find((s) => scripts[s]);
  if (!script && !entry) return undefined;
  const port =
    (script ? portFromCommand(scripts[script]!) : undefined) ??
    (entry ? serverPortFromSource(tree.read(entry) ?? '') : undefined) ??
    DEFAULT_PORTS.node;
  // A bare entry restarts on change (node --watch); a script runs as its author wrote it.
  const start = script ? runScript(pm.name, script, []) : `node --watch ${entry}`;
  return nodePlan(image, {
    ...common,
    env: { ...env, HOST: '0.0.0.0', PORT: String(port) },
    start,
    port,
    framework,
  });
}
