import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  type DependencyRecipe,
  dependencyRecipe,
  type RecipeInput,
  requirementsProblem,
} from '../../src/dependencies/dependency-key.js';
import { planFromInput } from '../../src/runtimes/plan.js';

const images = {
  node: 'previewd/runtime-node:22',
  python: 'previewd/runtime-python:3',
  base: 'b',
  allowed: [],
};
const LOCK = JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, packages: {} });

/** The recipe of a create with these files (and optional overrides), as sandbox-create makes it. */
function recipe(
  files: Record<string, string>,
  opts: {
    runtime?: { install?: string };
    env?: Record<string, string>;
    owner?: string;
    shared?: boolean;
  } = {},
) {
  const plan = planFromInput({ files, ...(opts.runtime ? { runtime: opts.runtime } : {}) }, {
    images,
  } as never);
  const detectedInstall = planFromInput({ files }, { images } as never).install;
  const inputs: RecipeInput['inputs'] = {};
  for (const [name, content] of Object.entries(files))
    (inputs as Record<string, Buffer>)[name] = Buffer.from(content);
  return dependencyRecipe({
    inputs,
    paths: Object.keys(files),
    plan,
    detectedInstall,
    env: { ...plan.env, ...(opts.env ?? {}) },
    owner: opts.owner,
    shared: opts.shared ?? true,
  });
}

const manifest = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    name: 'app',
    version: '1.0.0',
    scripts: { start: 'node server.js' },
    dependencies: { ms: '^2.1.3' },
    ...extra,
  });
const node = (extra: Record<string, unknown> = {}, more: Record<string, string> = {}) => ({
  'package.json': manifest(extra),
  'package-lock.json': LOCK,
  'server.js': '',
  ...more,
});

function eligible(r: ReturnType<typeof dependencyRecipe>): DependencyRecipe {
  if (!r.eligible) throw new Error(`ineligible: ${r.reason}`);
  return r;
}

describe('dependency layer keys', () => {
  it('ignore the name, scripts and other user fields of package.json; the build gets a canonical one', () => {
    const a = eligible(recipe(node()));
    const b = eligible(
      recipe(node({ name: 'other', description: 'secret', scripts: { start: 'node x.js', lint: 'true' } })),
    );
    expect(b.key).toBe(a.key);
    const built = JSON.parse(a.buildFiles['package.json']!);
    expect(built).toEqual({
      name: 'previewd-dependencies',
      version: '0.0.0',
      private: true,
      dependencies: { ms: '^2.1.3' },
    });
    expect(Object.keys(a.buildFiles).sort()).toEqual(['package-lock.json', 'package.json']);
    // The build's lockfile names the build, as its package.json does.
    expect(JSON.parse(a.buildFiles['package-lock.json']!)).toMatchObject({
      name: 'previewd-dependencies',
      version: '0.0.0',
      lockfileVersion: 3,
    });
    expect(a).toMatchObject({ kind: 'node', packageManager: 'npm', image: images.node });
  });

  it("ignore an npm lockfile's own name and version: two apps locked alike share the layer", () => {
    const locked = (name: string, version: string, ms = '2.1.3') =>
      `${JSON.stringify(
        {
          name,
          version,
          lockfileVersion: 3,
          requires: true,
          packages: {
            '': { name, version, dependencies: { ms: '^2.1.3' } },
            'node_modules/ms': { version: ms, integrity: `sha512-${ms}` },
          },
        },
        null,
        2,
      )}\n`;
    const key = (lock: string) => eligible(recipe(node({}, { 'package-lock.json': lock }))).key;
    expect(key(locked('shop-7f3a', '0.0.1'))).toBe(key(locked('blog-91c2', '2.4.0')));
    expect(key(locked('shop-7f3a', '0.0.1'))).not.toBe(key(locked('shop-7f3a', '0.0.1', '2.1.2')));
    const build = JSON.parse(
      eligible(recipe(node({}, { 'package-lock.json': locked('blog', '2.4.0') }))).buildFiles[
        'package-lock.json'
      ]!,
    );
    expect(build.packages['']).toEqual({
      name: 'previewd-dependencies',
      version: '0.0.0',
      dependencies: { ms: '^2.1.3' },
    });
    expect(build.packages['node_modules/ms']).toEqual({ version: '2.1.3', integrity: 'sha512-2.1.3' });
  });

  it('change with the lockfile, the dependency fields, .npmrc, install env, image and (not shared) owner', () => {
    const base = eligible(recipe(node())).key;
    const keys = [
      recipe(node({}, { 'package-lock.json': LOCK.replace('3', '2') })),
      recipe(node({ dependencies: { ms: '^2.1.2' } })),
      recipe(node({ overrides: { ms: '2.1.3' } })),
      recipe(node({}, { '.npmrc': 'registry=https://example.invalid/\n' })),
      recipe(node(), { env: { npm_config_omit: 'dev' } }),
      recipe(node(), { env: { NODE_ENV: 'production' } }),
      recipe(node(), { owner: 'a', shared: false }),
    ].map((r) => eligible(r).key);
    expect(new Set([base, ...keys]).size).toBe(keys.length + 1);
    // The app's own env does not change it; the owner does only when layers are not shared.
    expect(eligible(recipe(node(), { env: { API_URL: 'x', PORT: '1' } })).key).toBe(base);
    expect(eligible(recipe(node(), { owner: 'a' })).key).toBe(base);
    expect(eligible(recipe(node(), { owner: 'a', shared: false })).key).not.toBe(
      eligible(recipe(node(), { owner: 'b', shared: false })).key,
    );
    // Only the install env reaches the build.
    expect(eligible(recipe(node(), { env: { npm_config_omit: 'dev', SECRET: 's' } })).env).toEqual({
      npm_config_omit: 'dev',
    });
  });

  it('without a lockfile: the canonical manifest (key order does not matter)', () => {
    const files = (deps: Record<string, string>) => ({
      'package.json': JSON.stringify({ name: 'x', scripts: { start: 'node s.js' }, dependencies: deps }),
      's.js': '',
    });
    const a = eligible(recipe(files({ ms: '^2', 'is-number': '^7' })));
    expect(eligible(recipe(files({ 'is-number': '^7', ms: '^2' }))).key).toBe(a.key);
    expect(eligible(recipe(files({ ms: '^3', 'is-number': '^7' }))).key).not.toBe(a.key);
    expect(JSON.parse(a.buildFiles['package.json']!).name).toBe('previewd-dependencies');
    expect(canonicalJson({ b: [1, { d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[1,{"c":2,"d":1}]}');
  });

  it('pnpm, yarn classic and yarn berry with nodeLinker node-modules are eligible', () => {
    const pnpm = (name: string) =>
      eligible(
        recipe({
          'package.json': manifest({ name }),
          'pnpm-lock.yaml': 'lockfileVersion: 9\n',
          'server.js': '',
        }),
      );
    expect(pnpm('app').packageManager).toBe('pnpm');
    // pnpm writes the project's name into node_modules: its build keeps it, and its key holds it.
    expect(JSON.parse(pnpm('app').buildFiles['package.json']!).name).toBe('app');
    expect(pnpm('app').key).not.toBe(pnpm('other').key);
    expect(eligible(recipe(node({}, { 'yarn.lock': '# yarn lockfile v1\n' }))).packageManager).toBe('yarn');
    const berry = { 'yarn.lock': '__metadata:\n  version: 8\n' };
    expect(recipe(node({}, berry))).toMatchObject({ eligible: false });
    expect(
      eligible(recipe(node({}, { ...berry, '.yarnrc.yml': 'nodeLinker: node-modules\n' }))).packageManager,
    ).toBe('yarn');
  });
});

describe('dependency layer eligibility', () => {
  it.each([
    ['a root postinstall script', node({ scripts: { start: 'node server.js', postinstall: 'node x.js' } })],
    ['a root prepare script', node({ scripts: { start: 'node server.js', prepare: 'husky' } })],
    ['workspaces', node({ workspaces: ['packages/*'] })],
    ['a file: dependency', node({ dependencies: { ms: '^2', lib: 'file:../lib' } })],
    ['a link: dependency', node({ dependencies: { lib: 'link:./lib' } })],
    ['a workspace: dependency', node({ dependencies: { lib: 'workspace:*' } })],
    ['a relative path dependency', node({ devDependencies: { lib: './lib' } })],
    ['user-sent node_modules', node({}, { 'node_modules/ms/index.js': '' })],
    ['a pnpm workspace', node({}, { 'pnpm-lock.yaml': '', 'pnpm-workspace.yaml': '' })],
    ['a pnpmfile', node({}, { 'pnpm-lock.yaml': '', '.pnpmfile.cjs': '' })],
    ['a yarnPath', node({}, { 'yarn.lock': '', '.yarnrc.yml': 'yarnPath: .yarn/releases/yarn.cjs\n' })],
  ])('%s installs as before', (_what, files) => {
    expect(recipe(files).eligible).toBe(false);
  });

  it('a caller-given install, an env that moves the install, or no install: as before', () => {
    expect(recipe(node(), { runtime: { install: 'npm install && node build.js' } }).eligible).toBe(false);
    expect(recipe(node(), { env: { npm_config_prefix: '/tmp/x' } }).eligible).toBe(false);
    expect(
      recipe({ 'package.json': JSON.stringify({ scripts: { start: 'node s.js' } }), 's.js': '' }).eligible,
    ).toBe(false);
  });

  it('pip: requirements with names and index options; not -e/-r/-c or local paths', () => {
    const py = (requirements: string) =>
      recipe({ 'requirements.txt': requirements, 'main.py': 'print(1)\n' });
    const ok = eligible(py('--index-url http://198.51.100.2:8000/simple\nhello-wheel==1.0  # pinned\n'));
    expect(ok).toMatchObject({ kind: 'pip', packageManager: 'pip', image: images.python });
    expect(ok.buildFiles).toEqual({ 'requirements.txt': expect.stringContaining('hello-wheel==1.0') });
    expect(eligible(py('flask==3.0\n')).key).not.toBe(eligible(py('flask==3.1\n')).key);
    for (const bad of [
      '-e .',
      '-r other.txt',
      '-c constraints.txt',
      './pkg',
      'pkg @ file:///tmp/pkg',
      '../lib.whl',
      '-f ./wheels',
    ]) {
      expect(requirementsProblem(bad), bad).toBeDefined();
      expect(py(`${bad}\n`).eligible, bad).toBe(false);
    }
    expect(
      requirementsProblem(
        'requests[socks]>=2; python_version>"3"\n--extra-index-url https://x.invalid/simple',
      ),
    ).toBe(undefined);
    expect(
      recipe({ 'requirements.txt': 'x\n', 'main.py': '' }, { env: { PIP_TARGET: '/tmp' } }).eligible,
    ).toBe(false);
  });
});
