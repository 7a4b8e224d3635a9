import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Where the CA bundle appears inside every sandbox. */
export const SANDBOX_CA_PATH = '/etc/previewd/ca-certificates.crt';

const WELL_KNOWN_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
];

/**
 * The host CA bundle to mount into sandboxes (corporate networks intercept TLS: npm and pip only
 * work when they trust the host's roots). "auto": NODE_EXTRA_CA_CERTS or SSL_CERT_FILE of the host,
 * else a well-known bundle path; "off": none; anything else: that file, which must exist.
 */
export function resolveCaBundle(setting: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (setting === 'off') return undefined;
  if (setting !== 'auto') {
    const path = resolve(setting);
    if (!existsSync(path))
      throw new Error(
        `caBundle ${path} does not exist (PREVIEWD_CA_BUNDLE); set it to a PEM file, "auto" or "off"`,
      );
    return path;
  }
  for (const candidate of [env.NODE_EXTRA_CA_CERTS, env.SSL_CERT_FILE, ...WELL_KNOWN_BUNDLES]) {
    if (candidate && existsSync(candidate)) return resolve(candidate);
  }
  return undefined;
}

/** Environment that makes common tools inside the sandbox trust the mounted bundle. */
export function caEnv(): Record<string, string> {
  return {
    NODE_EXTRA_CA_CERTS: SANDBOX_CA_PATH,
    SSL_CERT_FILE: SANDBOX_CA_PATH,
    REQUESTS_CA_BUNDLE: SANDBOX_CA_PATH,
    PIP_CERT: SANDBOX_CA_PATH,
    CURL_CA_BUNDLE: SANDBOX_CA_PATH,
    GIT_SSL_CAINFO: SANDBOX_CA_PATH,
  };
}

const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

/** The host's HTTP(S) proxy settings, passed on so installs inside sandboxes use the same proxy. */
export function proxyEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROXY_VARS) {
    const value = env[name];
    if (value) out[name] = value;
  }
  return out;
}
