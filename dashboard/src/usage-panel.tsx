import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api } from './api-client';
import { ErrorNote } from './error-note';
import { TimeChart, type TimePoint } from './time-chart';
import { RequestsPerMinute, StatusClasses } from './traffic-charts';
import { trafficPerMinute } from './traffic-series';
import type { AccessLogEntry, MetricsSample, Sandbox } from './types';

const HOUR = 3600_000;
/** Until the metrics route has said its interval. */
const DEFAULT_INTERVAL_SEC = 10;

type MetricsState =
  | { status: 'loading' }
  /** The route is not there (an older server). */
  | { status: 'missing' }
  /** Sampling is off on the sandbox's node (409 usage_sampling_off). */
  | { status: 'off' }
  | { status: 'ok'; intervalSec: number; retentionSec: number; samples: MetricsSample[] }
  | { status: 'error'; error: unknown };

const percent = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} %`;
const megabytes = (v: number) => (v >= 1024 ? `${(v / 1024).toFixed(2)} GB` : `${Math.round(v)} MB`);

/** Samples merged by time, the ones older than the retention dropped. */
function merge(prev: MetricsSample[], next: MetricsSample[], retentionSec: number, now: number) {
  const byAt = new Map(prev.map((s) => [s.at, s]));
  for (const s of next) byAt.set(s.at, s);
  return [...byAt.values()]
    .filter((s) => Date.parse(s.at) >= now - retentionSec * 1000)
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

/**
 * CPU and memory over the last hour (`GET …/metrics`, new samples asked with `since` every
 * `intervalSec`), and requests per minute and status classes from the access log, refreshed
 * on the same beat.
 */
export function UsagePanel({ sandbox }: { sandbox: Sandbox }) {
  const id = sandbox.id;
  const [metrics, setMetrics] = useState<MetricsState>({ status: 'loading' });
  const [entries, setEntries] = useState<AccessLogEntry[] | null>(null);
  const [logError, setLogError] = useState<unknown>(null);
  const [now, setNow] = useState(Date.now());
  const latest = useRef<MetricsState>(metrics);
  latest.current = metrics;

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      const at = Date.now();
      const prev = latest.current;
      const since = prev.status === 'ok' ? prev.samples[prev.samples.length - 1]?.at : undefined;
      const [m, log] = await Promise.allSettled([
        api.metrics(id, since).catch((err) =>
          // A server that does not take `since` as ISO time: ask for the whole window.
          since && err instanceof ApiError && err.status === 400 ? api.metrics(id) : Promise.reject(err),
        ),
        api.accessLog(id, 10_000),
      ]);
      if (stopped) return;
      setNow(at);
      let intervalSec = DEFAULT_INTERVAL_SEC;
      if (m.status === 'fulfilled') {
        intervalSec = m.value.intervalSec || DEFAULT_INTERVAL_SEC;
        const kept = prev.status === 'ok' && since ? prev.samples : [];
        setMetrics({
          status: 'ok',
          intervalSec,
          retentionSec: m.value.retentionSec,
          samples: merge(kept, m.value.samples, m.value.retentionSec, at),
        });
      } else if (m.reason instanceof ApiError && m.reason.status === 404 && m.reason.code === 'not_found') {
        setMetrics({ status: 'missing' });
      } else if (m.reason instanceof ApiError && m.reason.code === 'usage_sampling_off') {
        setMetrics({ status: 'off' });
      } else {
        setMetrics({ status: 'error', error: m.reason });
      }
      if (log.status === 'fulfilled') {
        setEntries(log.value.entries);
        setLogError(null);
      } else setLogError(log.reason);
      timer = setTimeout(tick, intervalSec * 1000);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [id]);

  const from = now - HOUR;
  const traffic = entries?.length ? trafficPerMinute(entries, now) : undefined;
  return (
    <section class="card usage" aria-labelledby="usage-title" data-metrics={metrics.status}>
      <div class="section-head">
        <h2 id="usage-title">Usage, last hour</h2>
        {metrics.status === 'ok' ? (
          <span class="muted small">a sample every {metrics.intervalSec} s</span>
        ) : null}
      </div>
      <div class="usage-grid">
        <MetricsCharts state={metrics} sandbox={sandbox} from={from} to={now} />
        {logError ? <ErrorNote error={logError} /> : null}
        {traffic?.total ? (
          <>
            <RequestsPerMinute traffic={traffic} />
            <StatusClasses traffic={traffic} />
          </>
        ) : entries ? (
          <p class="empty chart-empty" data-chart-empty="requests">
            No preview requests in the last hour: open the preview and they show here.
          </p>
        ) : null}
      </div>
    </section>
  );
}

function MetricsCharts({
  state,
  sandbox,
  from,
  to,
}: {
  state: MetricsState;
  sandbox: Sandbox;
  from: number;
  to: number;
}) {
  if (state.status === 'loading') return <p class="muted">Loading usage…</p>;
  if (state.status === 'error') return <ErrorNote error={state.error} />;
  if (state.status === 'missing' || state.status === 'off' || state.samples.length === 0) {
    return (
      <p class="empty chart-empty" data-chart-empty="metrics">
        {state.status === 'missing'
          ? 'This server does not sample CPU and memory (no metrics route).'
          : state.status === 'off'
            ? 'CPU and memory are not sampled: usage sampling is off on this node (usage.enabled).'
            : sandbox.state === 'running'
              ? 'No CPU and memory samples yet: the first comes within a sampling interval.'
              : 'No CPU and memory samples in the last hour: samples are taken while the sandbox runs.'}
      </p>
    );
  }
  const gapMs = state.intervalSec * 2500;
  const series = (pick: (s: MetricsSample) => number): TimePoint[] =>
    state.samples.map((s) => ({ at: Date.parse(s.at), value: pick(s) }));
  const cpuCeiling = Math.max(1, sandbox.resources.cpus) * 100;
  return (
    <>
      <TimeChart
        id="cpu"
        title="CPU"
        points={series((s) => s.cpuPercent)}
        from={from}
        to={to}
        gapMs={gapMs}
        max={100}
        format={percent}
        limit={cpuCeiling > 100 ? { value: cpuCeiling, label: `${sandbox.resources.cpus} CPUs:` } : undefined}
      />
      <TimeChart
        id="memory"
        title="Memory"
        points={series((s) => s.memoryMb)}
        from={from}
        to={to}
        gapMs={gapMs}
        max={0}
        format={megabytes}
        limit={{ value: sandbox.resources.memoryMb, label: 'limit' }}
      />
    </>
  );
}
