import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // test/engine restarts the Docker engine under everything else: it runs alone, in a separate
    // `vitest run` after the main one (Makefile: test), selected by PREVIEWD_ENGINE_TESTS=1.
    include: process.env.PREVIEWD_ENGINE_TESTS ? ['test/engine/**/*.test.ts'] : ['test/**/*.test.ts'],
    exclude: process.env.PREVIEWD_ENGINE_TESTS ? [] : ['test/engine/**', '**/node_modules/**'],
    // Two cores: at most two test files (and their containers) at a time.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
