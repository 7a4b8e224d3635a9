import { clock } from './time-format';
import { type StatusClass, statusClasses, type Traffic } from './traffic-series';

const HEIGHT = 100;

function minuteLabel(start: number, counts: Record<StatusClass, number>, total: number): string {
  const parts = statusClasses.filter((c) => counts[c] > 0).map((c) => `${c} ${counts[c]}`);
  return `${clock(new Date(start).toISOString())}: ${total} request${total === 1 ? '' : 's'}${
    parts.length ? ` (${parts.join(', ')})` : ''
  }`;
}

/** Requests per minute over the last hour, each bar stacked by status class (SVG, no library). */
export function RequestsPerMinute({ traffic }: { traffic: Traffic }) {
  const { minutes, peak, total } = traffic;
  const max = Math.max(peak, 1);
  const current = minutes[minutes.length - 1];
  return (
    <figure class="chart" data-chart="requests" data-total={total}>
      <figcaption class="chart-head">
        <span class="chart-title">Requests per minute</span>
        <span class="chart-figures">
          <strong data-chart-total>{total}</strong> in the hour · peak {peak}/min · this minute{' '}
          {current?.total ?? 0}
        </span>
      </figcaption>
      <div class="chart-plot">
        <span class="chart-scale">{max}</span>
        <svg
          viewBox={`0 0 ${minutes.length} ${HEIGHT}`}
          preserveAspectRatio="none"
          role="img"
          aria-labelledby="requests-title requests-desc"
        >
          <title id="requests-title">Preview requests per minute, last hour</title>
          <desc id="requests-desc">{`${total} requests, at most ${peak} in one minute`}</desc>
          {minutes.map((m, i) => {
            if (!m.total) return null;
            let top = HEIGHT;
            return (
              <g key={m.start} class="bar" data-minute={m.start} data-count={m.total}>
                <title>{minuteLabel(m.start, m.byClass, m.total)}</title>
                {statusClasses.map((c) => {
                  const h = (m.byClass[c] / max) * HEIGHT;
                  if (!h) return null;
                  top -= h;
                  return <rect key={c} class={`cls-${c}`} x={i + 0.1} width="0.8" y={top} height={h} />;
                })}
              </g>
            );
          })}
        </svg>
      </div>
      <div class="chart-axis">
        <span>{minutes[0] ? clock(new Date(minutes[0].start).toISOString()) : ''}</span>
        <span>now</span>
      </div>
    </figure>
  );
}

/** The hour's requests by status class: a bar each, its count and share written beside it. */
export function StatusClasses({ traffic }: { traffic: Traffic }) {
  const { totals, total } = traffic;
  return (
    <figure class="chart" data-chart="status-classes">
      <figcaption class="chart-head">
        <span class="chart-title">Status classes</span>
        <span class="chart-figures">last hour</span>
      </figcaption>
      <ul class="class-bars">
        {statusClasses.map((c) => {
          const share = total ? totals[c] / total : 0;
          return (
            <li key={c} data-class={c} data-count={totals[c]}>
              <span class="class-name">{c}</span>
              <svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
                <rect class="class-track" width="100" height="10" />
                <rect class={`cls-${c}`} width={share * 100} height="10" />
              </svg>
              <span class="class-count">
                {totals[c]} <span class="muted">({Math.round(share * 100)} %)</span>
              </span>
            </li>
          );
        })}
      </ul>
    </figure>
  );
}
