import { Previewd } from '@previewd/sdk';
import { readLocalApiKey } from '../config/api-keys.js';
import { type LoadedConfig, splitHostPort } from '../config/load.js';

export interface Connection {
  url: string;
  apiKey?: string;
  /** Where the url and key came from, for messages. */
  source: string;
}

/**
 * Finds the server and key by itself: PREVIEWD_URL / PREVIEWD_API_KEY, else the configuration
 * (apiAddr, apiKeys) and the key `serve` generated in <dataDir>/api-key.
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
  const apiKey = envKey || config.apiKeys[0] || readLocalApiKey(config.dataDir);
  return { url, apiKey, source: envUrl ? 'PREVIEWD_URL' : `apiAddr and ${config.dataDir}/api-key` };
}

export function connect(load: () => LoadedConfig): Previewd {
  const { url, apiKey } = findConnection(load);
  return new Previewd({ url, apiKey });
}
