import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/** The dashboard: Preact + TSX compiled by Vite's own transformer (oxc), served by previewd at `/`. */
export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
  },
  server: {
    // `npx vite --config dashboard/vite.config.ts` during development: API calls go to a local previewd.
    proxy: {
      '/v1': { target: process.env.PREVIEWD_API ?? 'http://127.0.0.1:7070', changeOrigin: false, ws: true },
    },
  },
});
