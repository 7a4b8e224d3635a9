/**
 * Writes the SDKs' generated files and docs/api.md from the server itself:
 *   - the OpenAPI document of the API built in-process (the same Fastify app `serve` runs, never
 *     started: no engine, no listener), or fetched with --url <api base> from a running server;
 *   - the error-code table (src/domain/errors.ts).
 * `--check` writes nothing and exits 1 when a committed file differs (what set-up and CI use).
 *
 *   npx tsx scripts/generate-sdk.ts [--check] [--url http://127.0.0.1:7070]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createPreviewd } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { errorCodes } from '../src/domain/errors.js';
import {
  type OpenApiDocument,
  renderApiDocs,
  renderApiTypes,
  renderErrorCodes,
  renderErrorDocs,
  renderPythonCodes,
} from './sdk-codegen.js';

const root = join(import.meta.dirname, '..');

export const generatedFiles = {
  apiTypes: 'packages/sdk/src/generated/api-types.ts',
  errorCodes: 'packages/sdk/src/generated/error-codes.ts',
  pythonCodes: 'packages/sdk-python/src/previewd/_codes.py',
  apiDocs: 'docs/api.md',
} as const;

async function inProcessDocument(): Promise<OpenApiDocument> {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-gen-'));
  try {
    const { config } = loadConfig({
      env: {},
      cwd: dataDir,
      overrides: { dataDir, apiKeys: ['generator-key-0123456789'], logLevel: 'silent' },
    });
    const app = await createPreviewd(config, pino({ level: 'silent' }));
    await app.api.ready();
    const doc = app.api.swagger() as unknown as OpenApiDocument;
    await app.api.close();
    await app.store.close();
    return doc;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const urlAt = args.indexOf('--url');
  const doc =
    urlAt >= 0
      ? ((await (await fetch(`${args[urlAt + 1]}/openapi.json`)).json()) as OpenApiDocument)
      : await inProcessDocument();
  const contents: Record<string, string> = {
    [generatedFiles.apiTypes]: renderApiTypes(doc),
    [generatedFiles.errorCodes]: renderErrorCodes(errorCodes),
    [generatedFiles.pythonCodes]: renderPythonCodes(errorCodes),
    [generatedFiles.apiDocs]: `${renderApiDocs(doc)}\n${renderErrorDocs(errorCodes)}`,
  };
  let stale = 0;
  for (const [file, text] of Object.entries(contents)) {
    const path = join(root, file);
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      // missing: written below
    }
    if (current === text) continue;
    stale++;
    if (check) process.stderr.write(`generate-sdk: ${file} is out of date\n`);
    else {
      writeFileSync(path, text);
      process.stderr.write(`generate-sdk: wrote ${file}\n`);
    }
  }
  if (check && stale > 0) {
    process.stderr.write('Fix: npx tsx scripts/generate-sdk.ts, then rebuild the SDK (make setup).\n');
    process.exitCode = 1;
  }
}

await main();
