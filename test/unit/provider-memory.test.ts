import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryProvider } from '../../src/providers/memory/memory-provider.js';
import { providerConformance } from '../conformance/provider.conformance.js';

providerConformance('memory', async () => {
  const root = mkdtempSync(join(tmpdir(), 'previewd-memory-provider-'));
  const provider = new MemoryProvider({ root, images: ['previewd/base:bookworm'] });
  return {
    provider,
    image: 'previewd/base:bookworm',
    workspacePath: (id) => provider.workspaceDir(id),
    cleanup: async () => rmSync(root, { recursive: true, force: true }),
  };
});
