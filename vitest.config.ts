import { defineConfig } from 'vitest/config';

const shared = {
  // Two cores: at most two test files (and their containers) at a time.
  pool: 'forks' as const,
  maxWorkers: 2,
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    reporters: ['default', './test/reporters/summary-line.ts'],
    projects: [
      {
        test: {
          ...shared,
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: ['test/engine/**', 'test/cluster/**', '**/node_modules/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // The edge suites once more against the built-in edge alone (no HAProxy front), so both
        // set-ups pass the same acceptance tests; edge-front.test.ts covers what only the front does.
        test: {
          ...shared,
          name: 'edge-builtin',
          include: [
            'test/integration/edge-proxy.test.ts',
            'test/integration/edge-wake.test.ts',
            'test/integration/edge-private.test.ts',
            'test/integration/edge-tls.test.ts',
            'test/integration/edge-loopback.test.ts',
            'test/integration/edge-malformed.test.ts',
            'test/integration/edge-forward.test.ts',
            'test/fuzz/api-edge.fuzz.test.ts',
          ],
          env: { PREVIEWD_TEST_EDGE_FRONT: 'off' },
          sequence: { groupOrder: 0 },
        },
      },
      {
        // test/engine restarts the Docker engine under everything: it runs alone, after the rest.
        test: {
          ...shared,
          name: 'engine',
          include: ['test/engine/**/*.test.ts'],
          sequence: { groupOrder: 1 },
        },
      },
      {
        // test/cluster builds several Docker engines in network namespaces with fixed names (one
        // bed at a time): its files run one by one, after the rest.
        test: {
          ...shared,
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
