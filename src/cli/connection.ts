import { Previewd } from '@previewd/sdk';
import { parseKeyEntries, readLocalApiKey } from '../config/api-keys.js';
import { type LoadedConfig, splitHostPort } from '../config/load.js';

export interface Connection {
  url: string;
  apiKey?: string;
  /** Where the url and key came from, for messages. */
  source: string;
}

/**
 * Finds the server and key by itself: PREVIEWD_URL / PREVIEWD_API_KEY, else the configuration
 * (apiAddr, the first admin key of apiKeys, else its first tenant key) and the key `serve` generated
 * in <dataDir>/api-key.
 */
export function findConnection(load: () => LoadedConfig, env: NodeJS.ProcessEnv = process.env): Connection {
  const envUrl = env.PREVIEWD_URL?.trim();
  const envKey = env.PREVIEWD_API_KEY?.trim();
  if (envUrl && envKey) return { url: envUrl, apiKey: envKey, source: 'PREVIEWD_URL, PREVIEWD_API_KEY' };
  const { config } = load();
  let url = envUrl;
  if (!url) {
    const { host, port } = splitHostPort(config.apiAddr);
    const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
    url = `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
  }
  // A configured `key:owner` entry is a tenant key sent as `key`; an admin key is preferred.
  const entries = parseKeyEntries(config.apiKeys);
  const configured = (entries.find((e) => !e.owner) ?? entries[0])?.key;
  const apiKey = envKey || configured || readLocalApiKey(config.dataDir);
  return { url, apiKey, source: envUrl ? 'PREVIEWD_URL' : `apiAddr and ${config.dataDir}/api-key` };
}

export function connect(load: () => LoadedConfig): Previewd {
  const { url, apiKey } = findConnection(load);
  return new Previewd({ url, apiKey });
}
