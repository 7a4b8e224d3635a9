import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type OpenApiDocument,
  renderApiTypes,
  renderErrorCodes,
  renderPythonCodes,
} from '../../scripts/sdk-codegen.js';
import { errorCodes } from '../../src/domain/errors.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const root = join(import.meta.dirname, '..', '..');
const committed = (file: string) => readFileSync(join(root, file), 'utf8');
const fix = 'the SDK drifted from the server: run `npx tsx scripts/generate-sdk.ts` and rebuild (make setup)';

describe('SDK drift: generated files match the live server', () => {
  let server: TestServer;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    server = await startTestServer();
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as OpenApiDocument;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('TS request/response types equal what /openapi.json yields now', () => {
    expect(committed('packages/sdk/src/generated/api-types.ts'), fix).toBe(renderApiTypes(doc));
  });

  it('TS and Python error classes cover exactly the server error-code table', () => {
    expect(committed('packages/sdk/src/generated/error-codes.ts'), fix).toBe(renderErrorCodes(errorCodes));
    expect(committed('packages/sdk-python/src/previewd/_codes.py'), fix).toBe(renderPythonCodes(errorCodes));
  });

  it('every operation of /openapi.json is in the SDK types', () => {
    const types = committed('packages/sdk/src/generated/api-types.ts');
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) {
        expect(types, `${method.toUpperCase()} ${path}`).toContain(`'${method.toUpperCase()} ${path}': {`);
      }
    }
  });
});
