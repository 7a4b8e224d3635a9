import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Debian's Chromium, driven by playwright-core (`npx playwright install` cannot work here), with
 * every host under the given preview domains resolved to loopback.
 */
export function launchChromium(domains: readonly string[] = ['preview.localhost']): Promise<Browser> {
  if (!existsSync('/usr/bin/chromium')) {
    throw new Error(
      '/usr/bin/chromium is missing: run ./scripts/ensure-test-tools.sh (apt-get install chromium)',
    );
  }
  const rules = domains.map((domain) => `MAP *.${domain} 127.0.0.1`).join(', ');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      `--host-resolver-rules=${rules}`,
    ],
  });
}
