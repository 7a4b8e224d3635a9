import type { Config } from '../config/schema.js';

/**
 * Environment every sandbox gets so dev servers accept their preview host without user config.
 * Vite reads `__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS` (comma-separated; a leading dot allows
 * every subdomain) on top of `server.allowedHosts`. `PREVIEWD_PREVIEW_DOMAIN` names the domain for
 * templates whose config (Next.js `allowedDevOrigins`) reads it.
 */
export function devServerEnv(config: Pick<Config, 'previewDomain'>): Record<string, string> {
  return {
    __VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS: `.${config.previewDomain}`,
    PREVIEWD_PREVIEW_DOMAIN: config.previewDomain,
  };
}
