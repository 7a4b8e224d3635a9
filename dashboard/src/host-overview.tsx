import { useEffect, useState } from 'preact/hooks';
import { api } from './api-client';
import type { Capacity, Sandbox, SandboxState } from './types';

const CAPACITY_EVERY_MS = 10_000;

/** What the overview counts: the three the issue names, then the ones in between and the failed. */
const tiles: { label: string; states: SandboxState[] }[] = [
  { label: 'running', states: ['running'] },
  { label: 'paused', states: ['paused'] },
  { label: 'stopped', states: ['stopped'] },
  { label: 'changing', states: ['creating', 'starting', 'stopping'] },
  { label: 'error', states: ['error'] },
];

const megabytes = (v: number) => (v >= 1024 ? `${(v / 1024).toFixed(1)} GB` : `${Math.round(v)} MB`);

/**
 * The list page's overview: sandboxes by state, counted from the live list (so a tenant counts its
 * own), and for an admin the memory budget used (`GET /v1/capacity`, every 10 s and whenever the
 * number of live sandboxes changes).
 */
export function HostOverview({ sandboxes, admin }: { sandboxes: Sandbox[] | null; admin: boolean }) {
  const [capacity, setCapacity] = useState<Capacity | null>(null);
  const live = sandboxes?.filter((s) => s.state === 'running' || s.state === 'paused').length ?? 0;

  useEffect(() => {
    if (!admin) return;
    let stopped = false;
    const load = () =>
      api
        .capacity()
        .then((c) => !stopped && setCapacity(c))
        .catch(() => undefined);
    void load();
    const timer = setInterval(load, CAPACITY_EVERY_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [admin, live]);

  if (!sandboxes) return null;
  return (
    <section class="card overview" aria-labelledby="overview-title">
      <h2 id="overview-title" class="visually-hidden">
        Overview
      </h2>
      <ul class="overview-counts">
        {tiles.map((t) => {
          const count = sandboxes.filter((s) => t.states.includes(s.state)).length;
          return (
            <li key={t.label} data-count-of={t.label} class={`count-${t.label}`}>
              <strong>{count}</strong> <span>{t.label}</span>
            </li>
          );
        })}
      </ul>
      {admin && capacity ? <MemoryBudget capacity={capacity} /> : null}
    </section>
  );
}

function MemoryBudget({ capacity }: { capacity: Capacity }) {
  const { used, budget } = capacity.memoryMb;
  const share = budget > 0 ? Math.min(1, used / budget) : 0;
  const where = capacity.cluster ? `${capacity.nodes} node${capacity.nodes === 1 ? '' : 's'}` : 'this host';
  const level = share >= 0.9 ? 'bad' : share >= 0.7 ? 'warn' : 'ok';
  return (
    <figure class="memory-budget" data-memory-used={used} data-memory-budget={budget}>
      <figcaption>
        Memory budget ({where}): <strong>{megabytes(used)}</strong> of {megabytes(budget)} used (
        {Math.round(share * 100)} %)
        {capacity.running.max > 0
          ? ` · ${capacity.running.count} of at most ${capacity.running.max} live`
          : ''}
      </figcaption>
      <svg
        viewBox="0 0 100 6"
        preserveAspectRatio="none"
        role="img"
        aria-label={`${Math.round(share * 100)} % of the memory budget used`}
      >
        <rect class="class-track" width="100" height="6" />
        <rect class={`budget-${level}`} width={share * 100} height="6" />
      </svg>
    </figure>
  );
}
