/**
 * bench/glob: the worst case of one glob step that GLOB_LIMITS allow — patterns at the limits
 * against 255-character names built to make picomatch's regular expressions backtrack — per
 * directory entry (one `step`: every live pattern position tested against one name). No server.
 *
 *   node --import tsx bench/glob.ts [rounds=200]
 */
import { compileGlob, type GlobState } from '../src/providers/glob-pattern.js';

const ROUNDS = Number(process.argv[2] ?? 200);
const alternatives = (n: number, unit = 'a') =>
  `{${Array.from({ length: n }, (_, i) => unit.repeat(i + 1)).join(',')}}`;

/** Patterns at the limits; each is stepped from the state where the most positions are live. */
const patterns = [
  // The request that froze the process before the limits, cut to what is allowed.
  '*a*b',
  // Two 2-star segments with the largest group, both live at once behind `**`.
  `**/*${alternatives(8)}*b/**/*${alternatives(8)}*b`,
  // The same with classes in one group (the singles' limit allows one such group).
  `**/*${alternatives(8, '[ab]')}*b/**/*${alternatives(8)}*b`,
  // Four groups of eight, one star each, all live at once.
  `**/*${alternatives(8)}b/**/*${alternatives(8)}b/**/*${alternatives(8)}b/**/*${alternatives(8)}b`,
  // 64 single-character wildcards beside 2 stars.
  `**/*${'?'.repeat(32)}*b/**/${'[ab]'.repeat(32)}`,
  // Eight globstars and 24 literal segments: the most positions live at once.
  `${'**/a/a/a/'.repeat(8).slice(0, -1)}`,
];

const names = ['a'.repeat(255), `${'a'.repeat(254)}c`, 'ab'.repeat(127)];

/** The state after walking `depth` directories named `aab` and `a` in turn: every position reachable is live. */
function deepState(pattern: string, depth: number): GlobState {
  const glob = compileGlob(pattern);
  let state = glob.start;
  for (let i = 0; i < depth; i++) state = glob.step(state, i % 2 ? 'a' : 'aab').below ?? state;
  return state;
}

let worst = 0;
for (const pattern of patterns) {
  const glob = compileGlob(pattern);
  const state = deepState(pattern, 40);
  for (const name of names) {
    glob.step(state, name); // compile and warm up
    const started = process.hrtime.bigint();
    for (let i = 0; i < ROUNDS; i++) glob.step(state, name);
    const perStep = Number(process.hrtime.bigint() - started) / ROUNDS / 1e6;
    worst = Math.max(worst, perStep);
    console.log(
      `${perStep.toFixed(4)} ms/entry  live=${state.length}  name=${name.slice(0, 6)}…(${name.length})  pattern=${pattern.slice(0, 60)}${pattern.length > 60 ? '…' : ''} (${pattern.length} chars)`,
    );
  }
}
console.log(`worst: ${worst.toFixed(4)} ms per directory entry`);
