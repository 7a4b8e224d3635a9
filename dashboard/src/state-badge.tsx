import type { SandboxState } from './types';

const busy = new Set<SandboxState>(['creating', 'starting', 'stopping']);

/** A sandbox state as a coloured word (the word carries the meaning; colour only helps). */
export function StateBadge({ state }: { state: SandboxState }) {
  return (
    <span class={`state state-${state}`} data-state={state} aria-busy={busy.has(state) ? 'true' : undefined}>
      {state}
    </span>
  );
}
