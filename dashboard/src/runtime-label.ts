import type { Sandbox } from './types';

/** "vite-react", "static · fastapi": the template and what detection recognised, without repeats. */
export function runtimeLabel(s: Sandbox): string {
  const parts = [s.template, s.runtime.framework].filter(
    (p, i, all): p is string => Boolean(p) && all.indexOf(p) === i,
  );
  return parts.length ? parts.join(' · ') : s.runtime.image;
}
