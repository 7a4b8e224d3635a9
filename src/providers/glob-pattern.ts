import picomatch from 'picomatch';
import { PreviewdError } from '../domain/errors.js';

/**
 * Glob patterns over workspace-relative paths, matched one path segment at a time so that the cost
 * of a match is bounded whatever the pattern and the names are.
 *
 * Semantics: `*` and `?` stay within a segment, a `**` segment spans zero or more segments, `{a,b}`
 * alternates, `[abc]` / `[!abc]` are classes, `\` escapes; dot files match like any other name.
 * Each segment is compiled by picomatch (extglobs and negation off; parentheses, `|`, `+`, `@` and
 * quotes are literal characters, as in a file name).
 *
 * Why segment by segment, and why the limits: picomatch compiles to a backtracking regular
 * expression, where k stars separated by literals cost O(n^k) against an n-character name
 * (`*a*a*a*b` against 200 `a`s ran for minutes). Matching per segment keeps n ≤ 255 (a file name)
 * and `**` out of the regular expressions (the walk carries the set of pattern positions a path
 * can be at, so each name is tested once per live position, not once per way to split the path);
 * the limits below keep every segment's expression at most quadratic in the name, with a small
 * constant. docs/io.md gives the measured worst case.
 */

export const GLOB_LIMITS = {
  /** Characters in the pattern. */
  length: 512,
  /** Segments (between `/`). */
  segments: 32,
  /** `**` segments. */
  globstars: 8,
  /** `*` in one segment (a segment that is exactly `**` does not count). */
  starsPerSegment: 2,
  /** `*` in the whole pattern, `**` segments not counted. */
  stars: 4,
  /** `{…}` groups in one segment (a nested group counts too). */
  groupsPerSegment: 1,
  /** `{…}` groups in the whole pattern. */
  groups: 4,
  /** Alternatives of one `{…}` group. */
  alternatives: 8,
  /** `?` and `[…]` classes in the whole pattern. */
  singles: 64,
} as const;

/** The set of pattern positions a directory's entries are matched against (sorted, no duplicates). */
export type GlobState = readonly number[];

interface Segment {
  /** A `**` segment. */
  globstar: boolean;
  /** Exact name for segments without glob characters. */
  literal?: string;
  test?: (name: string) => boolean;
}

export interface GlobMatcher {
  readonly pattern: string;
  /** Where a walk starts: the leading segments without glob characters ('' for the workspace root). */
  readonly base: string;
  /** The positions the entries of `base` are matched against. */
  readonly start: GlobState;
  /**
   * An entry `name` in a directory whose entries are matched against `state`: whether the entry's
   * path matches, and the state of its own entries (undefined: nothing below it can match).
   */
  step(state: GlobState, name: string): { matches: boolean; below?: GlobState };
  /** Whether a workspace-relative path matches (the same matching, without a walk). */
  matches(path: string): boolean;
}

function invalidPattern(message: string, details?: Record<string, unknown>): PreviewdError {
  return new PreviewdError('invalid_pattern', message, details ? { details } : {});
}

/** Characters picomatch would read as syntax we do not offer: escaped so they match themselves. */
const LITERAL_SYNTAX = new Set(['(', ')', '|', '+', '@', '"']);
const GLOB_SYNTAX = /[*?[{\\]/;

interface SegmentCounts {
  stars: number;
  singles: number;
  groups: number;
}

/**
 * Counts a segment's wildcards (checking the per-segment limits) and escapes the characters
 * picomatch would otherwise give a meaning. An escaped character (`\*`) is a literal.
 */
function prepareSegment(segment: string): { source: string; counts: SegmentCounts } {
  const counts: SegmentCounts = { stars: 0, singles: 0, groups: 0 };
  const alternatives: number[] = [];
  let source = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '\\') {
      source += segment.slice(i, i + 2);
      i++;
      continue;
    }
    if (c === '*') counts.stars++;
    else if (c === '?' || c === '[') counts.singles++;
    else if (c === '{') {
      counts.groups++;
      alternatives.push(1);
    } else if (c === '}') {
      const n = alternatives.pop();
      if (n !== undefined && n > GLOB_LIMITS.alternatives) {
        throw invalidPattern(`a {…} group has ${n} alternatives; at most ${GLOB_LIMITS.alternatives}`);
      }
    } else if (c === ',' && alternatives.length > 0) {
      alternatives[alternatives.length - 1]!++;
    }
    source += LITERAL_SYNTAX.has(c) ? `\\${c}` : c;
  }
  if (counts.stars > GLOB_LIMITS.starsPerSegment) {
    throw invalidPattern(
      `segment "${segment}" has ${counts.stars} "*"; at most ${GLOB_LIMITS.starsPerSegment} per segment ("**" as a whole segment is free)`,
    );
  }
  if (counts.groups > GLOB_LIMITS.groupsPerSegment) {
    throw invalidPattern(
      `segment "${segment}" has ${counts.groups} {…} groups; at most ${GLOB_LIMITS.groupsPerSegment} per segment`,
    );
  }
  return { source, counts };
}

const PICOMATCH_OPTIONS: picomatch.PicomatchOptions = {
  dot: true,
  nonegate: true,
  noextglob: true,
  // `[!ab]` as a negated class (picomatch reads `!` that way only with POSIX classes on).
  posix: true,
  // Escaping at most doubles a segment.
  maxLength: 2 * GLOB_LIMITS.length,
};

function compileSegment(segment: string, totals: SegmentCounts): Segment {
  if (segment === '**') return { globstar: true };
  if (!GLOB_SYNTAX.test(segment)) return { globstar: false, literal: segment };
  const { source, counts } = prepareSegment(segment);
  totals.stars += counts.stars;
  totals.singles += counts.singles;
  totals.groups += counts.groups;
  let regex: RegExp;
  try {
    regex = picomatch.makeRe(source, PICOMATCH_OPTIONS);
  } catch (err) {
    throw invalidPattern(`segment "${segment}" is not a pattern picomatch reads: ${(err as Error).message}`);
  }
  return { globstar: false, test: (name) => regex.test(name) };
}

/** `./src//a` → ['src', 'a']; `..` is refused (a pattern cannot leave the workspace). */
function splitPattern(pattern: string): string[] {
  if (pattern.includes('\0')) throw new PreviewdError('invalid_path', 'pattern contains a NUL byte');
  if (pattern.length > GLOB_LIMITS.length) {
    throw invalidPattern(`the pattern has ${pattern.length} characters; at most ${GLOB_LIMITS.length}`);
  }
  if (pattern.startsWith('/')) {
    throw new PreviewdError('invalid_path', `pattern ${pattern} leaves the workspace`, {
      details: { reason: 'outside_workspace' },
    });
  }
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '{') depth++;
    else if (c === '}' && depth > 0) depth--;
    else if (c === '/' && depth > 0)
      throw invalidPattern('a {…} group cannot span "/": write one pattern per branch');
  }
  const segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    throw new PreviewdError('invalid_path', `pattern ${pattern} leaves the workspace`, {
      details: { reason: 'outside_workspace' },
    });
  }
  if (segments.length === 0) throw invalidPattern('the pattern is empty');
  if (segments.length > GLOB_LIMITS.segments) {
    throw invalidPattern(`the pattern has ${segments.length} segments; at most ${GLOB_LIMITS.segments}`);
  }
  return segments;
}

/** Compiles a glob, refusing patterns past GLOB_LIMITS with `invalid_pattern`. */
export function compileGlob(pattern: string): GlobMatcher {
  const parts = splitPattern(pattern);
  const totals: SegmentCounts = { stars: 0, singles: 0, groups: 0 };
  const segments = parts.map((part) => compileSegment(part, totals));
  const globstars = segments.filter((s) => s.globstar).length;
  const over = (
    [
      ['"**" segments', globstars, GLOB_LIMITS.globstars],
      ['"*"', totals.stars, GLOB_LIMITS.stars],
      ['{…} groups', totals.groups, GLOB_LIMITS.groups],
      ['"?" and […] classes', totals.singles, GLOB_LIMITS.singles],
    ] as const
  ).find(([, n, max]) => n > max);
  if (over) throw invalidPattern(`the pattern has ${over[1]} ${over[0]}; at most ${over[2]}`);

  const end = segments.length;
  /** Adds the positions a `**` can skip to (it matches zero segments too). */
  const close = (positions: Iterable<number>): GlobState => {
    const set = new Set<number>();
    for (let p of positions) {
      set.add(p);
      while (p < end && segments[p]!.globstar) set.add(++p);
    }
    return [...set].sort((a, b) => a - b);
  };

  // The last segment always takes part in matching, even when literal.
  let baseLength = 0;
  while (baseLength < end - 1 && segments[baseLength]!.literal !== undefined) baseLength++;

  const step: GlobMatcher['step'] = (state, name) => {
    const next: number[] = [];
    for (const p of state) {
      if (p >= end) continue;
      const seg = segments[p]!;
      if (seg.globstar) next.push(p);
      else if (seg.literal !== undefined ? seg.literal === name : seg.test!(name)) next.push(p + 1);
    }
    const closed = close(next);
    const below = closed.filter((p) => p < end);
    return { matches: closed.includes(end), ...(below.length > 0 ? { below } : {}) };
  };

  return {
    pattern,
    base: parts.slice(0, baseLength).join('/'),
    start: close([baseLength]),
    step,
    matches(path) {
      let state: GlobState | undefined = close([0]);
      let matched = false;
      for (const name of path.split('/').filter((s) => s !== '')) {
        if (!state) return false;
        const r = step(state, name);
        matched = r.matches;
        state = r.below;
      }
      return matched;
    },
  };
}
