import { describe, expect, it } from 'vitest';
import type { RuntimePlan } from '../../src/domain/schemas.js';
import { commandFor } from '../../src/runtimes/plan.js';

const plan = (start?: string, install?: string): RuntimePlan => ({
  image: 'i',
  env: {},
  source: 'overrides',
  start,
  install,
});

describe('commandFor: the container main process of a plan', () => {
  it.each([
    ['node server.js', undefined, 'exec node server.js'],
    ['exec node server.js', undefined, 'exec node server.js'],
    ['npm run dev -- --host 0.0.0.0', 'npm ci', 'npm ci && exec npm run dev -- --host 0.0.0.0'],
    ['echo a; sleep 1', undefined, 'echo a; sleep 1'],
    ['date >> boots.log && node app.js', undefined, 'date >> boots.log && node app.js'],
    ['cat x | node y', undefined, 'cat x | node y'],
    ['node a.js\nnode b.js', undefined, 'node a.js\nnode b.js'],
  ])('%j (install %j) runs as sh -c %j', (start, install, script) => {
    expect(commandFor(plan(start, install))).toEqual(['sh', '-c', script]);
  });

  it('has no command without a start', () => {
    expect(commandFor(plan())).toBeUndefined();
  });
});
