import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ZodError } from 'zod';
import { type Config, clientEnvVars, configSchema, envVars } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Where the file came from, if any. */
  file?: string;
  warnings: string[];
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const child = node[key];
    if (typeof child !== 'object' || child === null || Array.isArray(child)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function describeIssues(err: ZodError, origin: (path: string) => string): string {
  return err.issues
    .map((issue) => {
      const key = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') {
        const where = key ? `${key}.` : '';
        return `unknown key ${issue.keys.map((k) => `"${where}${k}"`).join(', ')} in ${origin(key)}`;
      }
      return `${key || '(root)'} (${origin(key)}): ${issue.message}`;
    })
    .join('\n  ');
}

/**
 * Reads previewd.yaml (or PREVIEWD_CONFIG) and PREVIEWD_* variables and validates both with one
 * schema. A bad value or an unknown file key throws a ConfigError naming it; an unknown
 * PREVIEWD_* variable is a warning.
 */
export function loadConfig(
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; file?: string; overrides?: Record<string, unknown> } = {},
): LoadedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const warnings: string[] = [];

  const explicit = opts.file ?? env.PREVIEWD_CONFIG;
  const file = explicit ? resolve(cwd, explicit) : resolve(cwd, 'previewd.yaml');
  let raw: Record<string, unknown> = {};
  let usedFile: string | undefined;
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new ConfigError(`${file} must hold a mapping of configuration keys`);
      }
      raw = parsed as Record<string, unknown>;
    }
    usedFile = file;
  } else if (explicit) {
    throw new ConfigError(`configuration file ${file} does not exist (PREVIEWD_CONFIG)`);
  }

  const fromEnv = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('PREVIEWD_') || value === undefined) continue;
    const spec = envVars[name];
    if (!spec) {
      if (!clientEnvVars.includes(name)) warnings.push(`unknown environment variable ${name} is ignored`);
      continue;
    }
    setPath(raw, spec.path, spec.parse(value));
    fromEnv.set(spec.path.join('.'), name);
  }
  for (const [key, value] of Object.entries(opts.overrides ?? {})) setPath(raw, key.split('.'), value);

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const origin = (key: string) => {
      for (const [path, name] of fromEnv) if (key === path || key.startsWith(`${path}.`)) return name;
      return usedFile ?? 'configuration';
    };
    throw new ConfigError(`invalid configuration:\n  ${describeIssues(result.error, origin)}`);
  }
  const config = result.data;
  config.dataDir = resolve(cwd, config.dataDir);
  return { config, file: usedFile, warnings };
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const idx = addr.lastIndexOf(':');
  const host = addr.slice(0, idx).replace(/^\[|\]$/g, '');
  return { host, port: Number(addr.slice(idx + 1)) };
}
