import { describe, expect, it } from 'vitest';
import { PreviewdError } from '../../src/domain/errors.js';
import type { RuntimePlan } from '../../src/domain/schemas.js';
import { detect } from '../../src/runtimes/detect.js';
import { portFromCommand, serverPortFromSource, vitePortFromConfig } from '../../src/runtimes/detect-node.js';
import { pipInstall, pyprojectDependencies, requirementNames } from '../../src/runtimes/detect-python.js';
import { DETECTION_READ_MAX, fileTreeFromFiles, wantedForDetection } from '../../src/runtimes/file-tree.js';
import { applyOverrides, imageForCommand, planFromInput } from '../../src/runtimes/plan.js';
import { fixtureProjectNames, readFixtureProject } from '../helpers/fixture-projects.js';

const images = { node: 'img/node', python: 'img/python' };
const config = { images: { ...images, base: 'img/base' }, previewDomain: 'preview.localhost' };
const COREPACK = {
  COREPACK_ENABLE_DOWNLOAD_PROMPT: '0',
  COREPACK_ENABLE_AUTO_PIN: '0',
  COREPACK_DEFAULT_TO_LATEST: '0',
  COREPACK_INTEGRITY_KEYS: '0',
};
const PNPM_FLAGS = '--store-dir $HOME/.cache/pnpm-store --config.dangerously-allow-all-builds=true';
const NPM_CI = 'npm ci --no-audit --no-fund || npm install --no-audit --no-fund';

function detectFixture(name: string): RuntimePlan {
  return detect(fileTreeFromFiles(readFixtureProject(name)), images);
}

const expected: Record<string, RuntimePlan> = {
  'static-html': {
    image: 'img/node',
    start: 'node /opt/previewd/static-server.mjs --port 8080',
    port: 8080,
    env: {},
    source: 'detected',
    framework: 'static',
  },
  'static-public': {
    image: 'img/node',
    start: 'node /opt/previewd/static-server.mjs --port 8080 --dir public',
    port: 8080,
    env: {},
    source: 'detected',
    framework: 'static',
  },
  'tooling-package-static': {
    image: 'img/node',
    start: 'node /opt/previewd/static-server.mjs --port 8080',
    port: 8080,
    env: {},
    source: 'detected',
    framework: 'static',
  },
  'express-lockfile': {
    image: 'img/node',
    install: NPM_CI,
    start: 'npm run start',
    port: 3000,
    env: { HOST: '0.0.0.0', PORT: '3000' },
    source: 'detected',
    framework: 'express',
    packageManager: 'npm',
  },
  'express-main-literal-port': {
    image: 'img/node',
    install: 'npm install --no-audit --no-fund',
    start: 'node --watch app.js',
    port: 4000,
    env: { HOST: '0.0.0.0', PORT: '4000' },
    source: 'detected',
    framework: 'express',
    packageManager: 'npm',
  },
  'fastify-dev-script': {
    image: 'img/node',
    install: 'npm install --no-audit --no-fund',
    start: 'npm run dev',
    port: 3001,
    env: { HOST: '0.0.0.0', PORT: '3001' },
    source: 'detected',
    framework: 'fastify',
    packageManager: 'npm',
  },
  'node-script-port-env': {
    image: 'img/node',
    start: 'npm run dev',
    port: 4000,
    env: { HOST: '0.0.0.0', PORT: '4000' },
    source: 'detected',
    framework: 'node',
    packageManager: 'npm',
  },
  'node-bare-server': {
    image: 'img/node',
    start: 'node --watch server.js',
    port: 3000,
    env: { HOST: '0.0.0.0', PORT: '3000' },
    source: 'detected',
    framework: 'node',
  },
  'koa-bun-lockfile': {
    image: 'img/node',
    install: 'npm install --no-audit --no-fund',
    start: 'npm run start',
    port: 3000,
    env: { HOST: '0.0.0.0', PORT: '3000' },
    source: 'detected',
    framework: 'koa',
    packageManager: 'npm',
  },
  'cra-react-scripts': {
    image: 'img/node',
    install: 'npm install --no-audit --no-fund',
    start: 'npm run start',
    port: 3000,
    env: { HOST: '0.0.0.0', PORT: '3000' },
    source: 'detected',
    framework: 'node',
    packageManager: 'npm',
  },
  'vite-react': {
    image: 'img/node',
    install: NPM_CI,
    start: 'npm run dev -- --host 0.0.0.0 --port 5173',
    port: 5173,
    env: {},
    source: 'detected',
    framework: 'vite-react',
    packageManager: 'npm',
  },
  'vite-vue-pnpm': {
    image: 'img/node',
    install: `corepack pnpm install --frozen-lockfile ${PNPM_FLAGS} || corepack pnpm install ${PNPM_FLAGS}`,
    start: 'corepack pnpm run dev --host 0.0.0.0',
    port: 4000,
    env: COREPACK,
    source: 'detected',
    framework: 'vite-vue',
    packageManager: 'pnpm',
  },
  'vite-svelte-yarn': {
    image: 'img/node',
    install: 'corepack yarn install --frozen-lockfile || corepack yarn install',
    start: 'corepack yarn run dev --host 0.0.0.0 --port 3333',
    port: 3333,
    env: COREPACK,
    source: 'detected',
    framework: 'vite-svelte',
    packageManager: 'yarn',
  },
  'vite-vanilla-no-script': {
    image: 'img/node',
    install: 'npm install --no-audit --no-fund',
    start: 'npm exec --no -- vite --host 0.0.0.0 --port 8081',
    port: 8081,
    env: {},
    source: 'detected',
    framework: 'vite',
    packageManager: 'npm',
  },
  'sveltekit-yarn-berry': {
    image: 'img/node',
    install: 'corepack yarn install --immutable || corepack yarn install',
    start: 'corepack yarn run dev --host 0.0.0.0 --port 5173',
    port: 5173,
    env: COREPACK,
    source: 'detected',
    framework: 'sveltekit',
    packageManager: 'yarn',
  },
  nextjs: {
    image: 'img/node',
    install: NPM_CI,
    start: 'npm run dev -- -H 0.0.0.0 -p 3000',
    port: 3000,
    env: {},
    source: 'detected',
    framework: 'nextjs',
    packageManager: 'npm',
  },
  'nextjs-pnpm-port': {
    image: 'img/node',
    install: `corepack pnpm install ${PNPM_FLAGS}`,
    start: 'corepack pnpm run dev -H 0.0.0.0',
    port: 4000,
    env: COREPACK,
    source: 'detected',
    framework: 'nextjs',
    packageManager: 'pnpm',
  },
  'fastapi-requirements': {
    image: 'img/python',
    install: pipInstall('-r requirements.txt'),
    start: 'python3 -m uvicorn main:app --host 0.0.0.0 --port 8000 --reload',
    port: 8000,
    env: { PYTHONUNBUFFERED: '1' },
    source: 'detected',
    framework: 'fastapi',
    packageManager: 'pip',
  },
  'fastapi-pyproject-package': {
    image: 'img/python',
    install: pipInstall(`'fastapi>=0.100' 'uvicorn[standard]'`),
    start: 'python3 -m uvicorn app.main:api --host 0.0.0.0 --port 8000 --reload',
    port: 8000,
    env: { PYTHONUNBUFFERED: '1' },
    source: 'detected',
    framework: 'fastapi',
    packageManager: 'pip',
  },
  'flask-requirements': {
    image: 'img/python',
    install: pipInstall('-r requirements.txt'),
    start: 'python3 -m flask --app app:app run --host=0.0.0.0 --port=5000 --reload',
    port: 5000,
    env: { PYTHONUNBUFFERED: '1' },
    source: 'detected',
    framework: 'flask',
    packageManager: 'pip',
  },
  'flask-factory-poetry': {
    image: 'img/python',
    install: pipInstall('flask'),
    start: 'python3 -m flask --app main run --host=0.0.0.0 --port=5000 --reload',
    port: 5000,
    env: { PYTHONUNBUFFERED: '1' },
    source: 'detected',
    framework: 'flask',
    packageManager: 'pip',
  },
  django: {
    image: 'img/python',
    install: pipInstall('-r requirements.txt'),
    start: 'python3 manage.py runserver 0.0.0.0:8000',
    port: 8000,
    env: { PYTHONUNBUFFERED: '1' },
    source: 'detected',
    framework: 'django',
    packageManager: 'pip',
  },
  'python-script': {
    image: 'img/python',
    start: 'python3 main.py',
    port: 8000,
    env: { PYTHONUNBUFFERED: '1', HOST: '0.0.0.0', PORT: '8000' },
    source: 'detected',
    framework: 'python',
  },
};

const unknown = ['unknown-notes', 'unknown-package-json'];

describe('detect over fixture projects', () => {
  it('has an expectation for every fixture project (and at least 20)', () => {
    expect(fixtureProjectNames()).toEqual([...Object.keys(expected), ...unknown].sort());
    expect(Object.keys(expected).length).toBeGreaterThanOrEqual(20);
  });

  it.each(Object.entries(expected))('%s', (name, plan) => {
    expect(detectFixture(name)).toEqual(plan);
  });

  it.each(unknown)('%s → runtime_unknown (422, hint names runtime.start)', (name) => {
    let caught: unknown;
    try {
      detectFixture(name);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PreviewdError);
    expect(caught).toMatchObject({ code: 'runtime_unknown', status: 422 });
    expect((caught as PreviewdError).hint).toMatch(/runtime\.start/);
  });
});

describe('detection details', () => {
  it.each([
    ['vite --port 4000', 4000],
    ['vite --port=4001', 4001],
    ['next dev -p 4002', 4002],
    ['next dev -p4003', 4003],
    ['PORT=4004 node server.js', 4004],
    ['cross-env PORT=4005 nodemon', 4005],
    ['tsc -p tsconfig.json && node dist', undefined],
    ['vite', undefined],
  ])('portFromCommand(%j) = %j', (command, port) => {
    expect(portFromCommand(command)).toBe(port);
  });

  it.each([
    ['export default defineConfig({ server: { port: 3100 } })', 3100],
    ['export default { plugins: [x()], server: {\n host: true,\n port: 3101,\n} }', 3101],
    ['export default { server: { port: Number(process.env.PORT) } }', undefined],
    ['export default { preview: { port: 4173 } }', undefined],
    // A server block without a port, then one with: the search goes on past the first `}`.
    ['export default { server: { host: true }, x: { server: { port: 3102 } } }', 3102],
    ['server: { server: { server: { port: 3103 } } }', 3103],
    ['server: { host: true, server: {', undefined],
    ['server: { xport: 3104 }', undefined],
  ])('vitePortFromConfig(%j) = %j', (source, port) => {
    expect(vitePortFromConfig(source)).toBe(port);
  });

  it.each([
    ['app.listen(8080)', 8080],
    ["await app.listen({ host: '0.0.0.0', port: 3002 })", 3002],
    ['const port = process.env.PORT || 5050; app.listen(port)', 5050],
    ["const port = process.env.PORT ?? '5051'", 5051],
    ['app.listen(port)', undefined],
    ['app.listen({ host }); app.listen({ port: 3003 })', 3003],
  ])('serverPortFromSource(%j) = %j', (source, port) => {
    expect(serverPortFromSource(source)).toBe(port);
  });

  it('pip tries the packages the image has before downloading', () => {
    expect(pipInstall('-r requirements.txt')).toBe(
      'python3 -m pip install --user --break-system-packages --disable-pip-version-check --no-deps --no-index -r requirements.txt >/dev/null 2>&1' +
        ' || python3 -m pip install --user --break-system-packages --disable-pip-version-check -r requirements.txt',
    );
  });

  it('reads requirement names and pyproject dependencies', () => {
    expect(
      requirementNames(
        '# c\nFlask==3.0\n-r base.txt\nuvicorn[standard]>=0.30 ; python_version>"3"\nmy_pkg\n',
      ),
    ).toEqual(['flask', 'uvicorn', 'my-pkg']);
    expect(pyprojectDependencies('[project]\nname = "x"\ndependencies = ["a>=1", \'b\']\n')).toEqual([
      'a>=1',
      'b',
    ]);
    expect(pyprojectDependencies('[project]\nname = "x"\n')).toEqual([]);
    expect(
      pyprojectDependencies('[project]\n\n\n  dependencies = [\n  "a", # c\n  "b\\"c",\n  \'d]\'\n]\n'),
    ).toEqual(['a', 'b\\"c', 'd]']);
    // An unclosed string ends the list.
    expect(pyprojectDependencies('[project]\ndependencies = ["a", "b\n"c"]\n')).toEqual(['a']);
    expect(pyprojectDependencies('[tool.poetry.dependencies]\n\n python = "^3.11"\nfastapi = "*"\n')).toEqual(
      ['fastapi'],
    );
  });

  it('reads at most DETECTION_READ_MAX characters of a file: a bigger config is unknown content', () => {
    // Repeated text of the kind that made the old single-expression scan quadratic.
    const huge = 'server: { '.repeat(Math.ceil(DETECTION_READ_MAX / 10) + 1);
    const files = {
      'package.json': JSON.stringify({ devDependencies: { vite: '5' } }),
      'vite.config.js': `${huge}server: { port: 3200 } }`,
    };
    expect(fileTreeFromFiles(files).read('vite.config.js')).toBeUndefined();
    expect(detect(fileTreeFromFiles(files), images).port).toBe(5173);
    const small = { ...files, 'vite.config.js': 'server: { host: true } server: { port: 3200 }' };
    expect(detect(fileTreeFromFiles(small), images).port).toBe(3200);
  });

  it('refuses a package.json past DETECTION_READ_MAX with file_too_large', () => {
    const big = JSON.stringify({ scripts: { dev: 'vite' }, description: 'x'.repeat(DETECTION_READ_MAX) });
    expect(() => detect(fileTreeFromFiles({ 'package.json': big }), images)).toThrow(
      expect.objectContaining({ code: 'file_too_large' }),
    );
  });

  it('finds a FastAPI app on one line, not across lines', () => {
    const plan = detect(
      fileTreeFromFiles({ 'main.py': 'from fastapi import FastAPI\napi: FastAPI = FastAPI()\n' }),
      images,
    );
    expect(plan.start).toContain('main:api');
  });

  it('finds a vite.config.ts port and reads yarn berry from packageManager', () => {
    const plan = detect(
      fileTreeFromFiles({
        'package.json': JSON.stringify({ packageManager: 'yarn@4.1.0', devDependencies: { vite: '5' } }),
        'vite.config.ts': 'export default defineConfig({ server: { port: 5200 } });',
      }),
      images,
    );
    expect(plan).toMatchObject({
      install: 'corepack yarn install',
      start: 'corepack yarn run vite --host 0.0.0.0 --port 5200',
      port: 5200,
    });
  });

  it('normalises paths ("./", leading "/") and ignores empty keys', () => {
    const plan = detect(fileTreeFromFiles({ './index.html': '<p>', '/css/a.css': '' }), images);
    expect(plan.framework).toBe('static');
  });

  it('rejects a package.json that is not JSON with invalid_request', () => {
    expect(() => detect(fileTreeFromFiles({ 'package.json': '{ nope' }), images)).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    );
  });

  it('tells disk readers which contents it needs', () => {
    expect(wantedForDetection('package.json')).toBe(true);
    expect(wantedForDetection('vite.config.mts')).toBe(true);
    expect(wantedForDetection('app/main.py')).toBe(true);
    expect(wantedForDetection('node_modules/x/index.js')).toBe(false);
    expect(wantedForDetection('src/components/App.tsx')).toBe(false);
    expect(wantedForDetection('assets/logo.png')).toBe(false);
  });
});

describe('overrides', () => {
  const detected = detectFixture('express-lockfile');

  it('win field by field; env merges with the user winning', () => {
    const plan = applyOverrides(detected, { port: 9000, env: { PORT: '9000', DEBUG: '1' } }, images);
    expect(plan).toEqual({
      ...detected,
      port: 9000,
      env: { HOST: '0.0.0.0', PORT: '9000', DEBUG: '1' },
    });
    expect(detected.env.PORT).toBe('3000'); // the detected plan is not mutated
  });

  it('an overridden start keeps detected install/port and marks the plan as overrides', () => {
    const plan = applyOverrides(detected, { start: 'node --watch server.js' }, images);
    expect(plan).toMatchObject({
      image: 'img/node',
      install: NPM_CI,
      start: 'node --watch server.js',
      port: 3000,
      source: 'overrides',
    });
  });

  it('an empty install removes it; image override wins over the start command guess', () => {
    const plan = applyOverrides(
      detected,
      { install: '', start: 'python3 app.py', image: 'custom:1' },
      images,
    );
    expect(plan.install).toBeUndefined();
    expect(plan.image).toBe('custom:1');
  });

  it('picks the image from an overridden start command when it is clear', () => {
    expect(imageForCommand('python3 -m http.server', images)).toBe('img/python');
    expect(imageForCommand('npm run dev', images)).toBe('img/node');
    expect(imageForCommand('exec sleep infinity', images)).toBeUndefined();
    const staticSite = detectFixture('static-html');
    expect(applyOverrides(staticSite, { start: 'npx serve -l 3000' }, images).image).toBe('img/node');
  });

  it('without detection: the overrides are the plan', () => {
    expect(applyOverrides(undefined, {}, images)).toEqual({ image: 'img/node', env: {}, source: 'none' });
    expect(applyOverrides(undefined, { start: 'sleep 1', port: 3000 }, images)).toEqual({
      image: 'img/node',
      start: 'sleep 1',
      port: 3000,
      env: {},
      source: 'overrides',
    });
  });
});

describe('planFromInput', () => {
  it('detects from the request files and merges the overrides', () => {
    const plan = planFromInput(
      { files: readFixtureProject('fastapi-requirements'), runtime: { port: 8001, env: { X: '1' } } },
      config,
    );
    expect(plan).toMatchObject({
      image: 'img/python',
      framework: 'fastapi',
      port: 8001,
      env: { PYTHONUNBUFFERED: '1', X: '1' },
      source: 'detected',
    });
  });

  it('no files and no start: a valid idle plan', () => {
    expect(planFromInput({}, config)).toEqual({ image: 'img/node', env: {}, source: 'none' });
  });

  it('unrecognisable files without runtime.start → runtime_unknown', () => {
    expect(() => planFromInput({ files: readFixtureProject('unknown-notes') }, config)).toThrow(
      expect.objectContaining({ code: 'runtime_unknown', status: 422 }),
    );
  });

  it('unrecognisable files with runtime.start never fail', () => {
    const plan = planFromInput(
      {
        files: readFixtureProject('unknown-notes'),
        runtime: { start: 'cat notes.txt; exec sleep infinity' },
      },
      config,
    );
    expect(plan).toEqual({
      image: 'img/node',
      start: 'cat notes.txt; exec sleep infinity',
      env: {},
      source: 'overrides',
    });
  });

  it('the top-level image wins over everything', () => {
    expect(planFromInput({ files: readFixtureProject('django'), image: 'mine:1' }, config).image).toBe(
      'mine:1',
    );
  });
});
