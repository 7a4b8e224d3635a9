import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy', 'traefik');

function dockerCompose(args: string[], env: Record<string, string>) {
  const probe = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'docker-compose is not installed: run `apt-get install -y docker-compose` (Debian package) to validate deploy/traefik/docker-compose.yml',
    );
  }
  // Only what the file needs: no stray COMPOSE_* or .env from the caller's shell.
  return spawnSync(
    'docker-compose',
    ['--project-directory', DEPLOY, '-f', join(DEPLOY, 'docker-compose.yml'), ...args],
    {
      cwd: DEPLOY,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    },
  );
}

describe('deploy/traefik', () => {
  it('docker-compose config validates the compose file', () => {
    const ok = dockerCompose(['config'], { PREVIEWD_API_KEY: 'k-0123456789abcdef', DOCKER_GID: '998' });
    expect(ok.stderr).not.toMatch(/ERROR/);
    expect(ok.status).toBe(0);
    const resolved = parseYaml(ok.stdout);
    const { traefik, previewd } = resolved.services;
    expect(traefik.image).toMatch(/^traefik:v3(\.|$)/);
    expect(previewd.build).toMatchObject({ dockerfile: 'Dockerfile' });
    expect(previewd.build.context).toBe(ROOT);
    expect(previewd.environment).toMatchObject({
      PREVIEWD_EDGE_MODE: 'traefik',
      PREVIEWD_API_KEYS: 'k-0123456789abcdef',
      PREVIEWD_TRAEFIK_ACCESS_LOG: '/var/log/traefik/access.log',
    });
    expect(previewd.group_add).toEqual(['998']);
    // The data dir is mounted at the same path (the engine resolves workspace mounts on the host).
    expect(previewd.volumes).toContain('/var/lib/previewd:/var/lib/previewd:rw');
    expect(previewd.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock:rw');
    expect(traefik.environment.PREVIEWD_API_KEY).toBe('k-0123456789abcdef');
  });

  it('docker-compose refuses to run without an API key', () => {
    const missing = dockerCompose(['config'], {});
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('set PREVIEWD_API_KEY');
  });

  it('traefik.yml: docker provider limited to previewd containers, HTTP provider with the key, JSON access log', () => {
    const template = readFileSync(join(DEPLOY, 'traefik.yml'), 'utf8');
    // What the compose entrypoint does with sed.
    const staticConfig = parseYaml(template.replaceAll('@PREVIEWD_API_KEY@', 'k-0123456789abcdef'));
    expect(Object.keys(staticConfig.entryPoints)).toEqual(['web', 'websecure']);
    expect(staticConfig.providers.docker).toMatchObject({
      exposedByDefault: false,
      network: 'previewd',
      constraints: 'Label(`previewd.managed`, `true`)',
    });
    expect(staticConfig.providers.http).toMatchObject({
      endpoint: 'http://127.0.0.1:7070/v1/traefik/dynamic',
      headers: { Authorization: 'Bearer k-0123456789abcdef' },
    });
    expect(staticConfig.providers.file.directory).toBe('/etc/traefik/dynamic');
    expect(staticConfig.accessLog).toMatchObject({ filePath: '/var/log/traefik/access.log', format: 'json' });
    expect(staticConfig.accessLog.fields.headers.defaultMode).toBe('drop');
    // The compose file feeds the same template to Traefik.
    const compose = readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain('./traefik.yml:/etc/traefik/traefik.tmpl.yml:ro');
    expect(compose).toContain('./dynamic:/etc/traefik/dynamic:ro');
  });

  it("the dynamic files follow Traefik's dynamic-configuration schema", () => {
    const schema = JSON.parse(
      readFileSync(join(ROOT, 'test', 'golden', 'traefik-v3-file-provider.schema.json'), 'utf8'),
    );
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const files = readdirSync(join(DEPLOY, 'dynamic')).filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const dynamic = parseYaml(readFileSync(join(DEPLOY, 'dynamic', file), 'utf8'));
      expect(validate(dynamic), `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('the Dockerfile builds in two stages and runs previewd as a non-root user', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const froms = dockerfile.match(/^FROM .+$/gm) ?? [];
    expect(froms).toHaveLength(2);
    expect(froms[0]).toMatch(/ AS build$/);
    expect(dockerfile).toMatch(/\bnpm ci\b/);
    expect(dockerfile).toMatch(/tsc -p tsconfig\.build\.json/);
    expect(dockerfile).toMatch(/COPY --from=build \/src\/dist/);
    const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)$/);
  });
});
