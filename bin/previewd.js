#!/usr/bin/env node
// Runs the compiled CLI (built by `make setup` / `npm run build`).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('previewd: not built yet; run `make setup` (or `npm run build`) first\n');
    process.exit(1);
  }
  throw err;
});
