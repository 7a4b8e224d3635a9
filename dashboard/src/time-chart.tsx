import { clock } from './time-format';

export interface TimePoint {
  /** ms since the epoch */
  at: number;
  value: number;
}

const WIDTH = 600;
const HEIGHT = 120;

/**
 * Consecutive points as runs: a gap longer than `gapMs` (the sandbox was stopped, sampling missed)
 * breaks the line instead of drawing a slope across it.
 */
function runs(points: readonly TimePoint[], gapMs: number): TimePoint[][] {
  const out: TimePoint[][] = [];
  let run: TimePoint[] = [];
  for (const p of points) {
    const prev = run[run.length - 1];
    if (prev && p.at - prev.at > gapMs) {
      out.push(run);
      run = [];
    }
    run.push(p);
  }
  if (run.length) out.push(run);
  return out;
}

/**
 * A line over a fixed time window (SVG, no library): the axis is the window, not the data, so an
 * hour with ten minutes of samples shows ten minutes at the right end. The figures are in text
 * beside the line (now, peak, scale), and the SVG carries a title and a description for readers
 * that cannot see it.
 */
export function TimeChart(props: {
  id: string;
  title: string;
  points: readonly TimePoint[];
  from: number;
  to: number;
  gapMs: number;
  /** The top of the scale (at least the peak). */
  max: number;
  format: (value: number) => string;
  /** A line at this value, e.g. the memory limit. */
  limit?: { value: number; label: string };
}) {
  const { id, title, points, from, to, gapMs, format, limit } = props;
  const inWindow = points.filter((p) => p.at >= from && p.at <= to);
  const last = inWindow[inWindow.length - 1];
  const peak = inWindow.reduce((m, p) => Math.max(m, p.value), 0);
  const max = Math.max(props.max, peak, limit?.value ?? 0) || 1;
  const x = (at: number) => ((at - from) / (to - from)) * WIDTH;
  const y = (value: number) => HEIGHT - (value / max) * HEIGHT;
  const lines = runs(inWindow, gapMs).map((run) => {
    const line = run.map((p, i) => `${i ? 'L' : 'M'}${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join('');
    const first = run[0] as TimePoint;
    const end = run[run.length - 1] as TimePoint;
    // A lone sample is a short tick, so it shows.
    const solo = run.length === 1 ? `L${(x(first.at) + 2).toFixed(1)},${y(first.value).toFixed(1)}` : '';
    const area = `${line}${solo}L${(x(end.at) + (solo ? 2 : 0)).toFixed(1)},${HEIGHT}L${x(first.at).toFixed(1)},${HEIGHT}Z`;
    return { line: line + solo, area };
  });
  const summary = last
    ? `now ${format(last.value)}, peak ${format(peak)} over ${inWindow.length} samples`
    : 'no samples';
  return (
    <figure class="chart" data-chart={id} data-samples={inWindow.length}>
      <figcaption class="chart-head">
        <span class="chart-title">{title}</span>
        <span class="chart-figures">
          {last ? (
            <>
              now <strong data-chart-now>{format(last.value)}</strong> · peak {format(peak)}
            </>
          ) : (
            'no samples'
          )}
        </span>
      </figcaption>
      <div class="chart-plot">
        <span class="chart-scale">{format(max)}</span>
        <svg
          viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
          preserveAspectRatio="none"
          role="img"
          aria-labelledby={`${id}-title ${id}-desc`}
        >
          <title id={`${id}-title`}>{`${title}, ${clock(new Date(from).toISOString())} to now`}</title>
          <desc id={`${id}-desc`}>{summary}</desc>
          <line class="chart-grid" x1="0" x2={WIDTH} y1={HEIGHT / 2} y2={HEIGHT / 2} />
          {limit ? (
            <line class="chart-limit" x1="0" x2={WIDTH} y1={y(limit.value)} y2={y(limit.value)} />
          ) : null}
          {lines.map((l, i) => (
            <g key={i}>
              <path class="chart-area" d={l.area} />
              <path class="chart-line" d={l.line} />
            </g>
          ))}
          {last ? (
            // The latest sample as a dot (a round cap on a zero-length line keeps its shape when stretched).
            <line class="chart-dot" x1={x(last.at)} x2={x(last.at)} y1={y(last.value)} y2={y(last.value)} />
          ) : null}
        </svg>
      </div>
      <div class="chart-axis">
        <span>{clock(new Date(from).toISOString())}</span>
        {limit ? (
          <span class="chart-limit-label">
            {limit.label} {format(limit.value)}
          </span>
        ) : null}
        <span>now</span>
      </div>
    </figure>
  );
}
