import { clock } from './time-format';
import type { PreviewdEvent } from './types';

function describe(e: PreviewdEvent): string {
  const d = e.data as Record<string, unknown>;
  switch (e.type) {
    case 'sandbox.state': {
      const err = d.error as { message?: string } | undefined;
      return `${d.from} → ${d.to}${d.reason ? ` (${d.reason})` : ''}${err?.message ? `: ${err.message}` : ''}`;
    }
    case 'port.open':
      return `port ${d.port} open${d.loopback ? ' on loopback only (previews cannot reach it)' : ''}`;
    case 'port.closed':
      return `port ${d.port} closed`;
    case 'files.changed': {
      const paths = (d.paths as string[]) ?? [];
      return `${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ` and ${paths.length - 3} more` : ''}`;
    }
    case 'app.crashed':
      return `exit code ${d.exitCode}${d.oomKilled ? ' (out of memory)' : ''}`;
    case 'process.exit':
      return `pid ${d.pid} exited with ${d.exitCode}`;
    case 'sandbox.ports':
      return `ports: ${((d.ports as number[]) ?? []).join(', ') || 'none'}`;
    default:
      return '';
  }
}

/** The sandbox's events, newest first (from `/v1/sandboxes/:id/events`, replayed then live). */
export function TimelinePanel({ events }: { events: PreviewdEvent[] }) {
  if (!events.length)
    return <p class="empty">No events yet. State changes, ports and file changes show here.</p>;
  return (
    <ol class="timeline" aria-label="Events, newest first">
      {[...events].reverse().map((e) => (
        <li key={e.id} data-event-type={e.type}>
          <time dateTime={e.at}>{clock(e.at)}</time> <span class="event-type">{e.type}</span>{' '}
          <span class="small">{describe(e)}</span>
        </li>
      ))}
    </ol>
  );
}
