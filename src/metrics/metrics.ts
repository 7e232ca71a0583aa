import type pg from 'pg';
import type { Logger } from 'pino';
import client from 'prom-client';
import { selectCasesOpenByKind, selectOpenBreakAges, selectWaitingCounts } from './metrics-store.js';

/**
 * Penny's metrics, in Prometheus' text format at GET /metrics (operator key). One registry per
 * process: request counts and latencies, alerts raised, Node's own figures, and, read from the
 * database at each scrape, what is waiting for a worker or a human. Every label takes a bounded
 * set of values (route patterns, not URLs).
 */
export const metricsRegistry = new client.Registry();
client.collectDefaultMetrics({ register: metricsRegistry, prefix: 'penny_' });

const httpRequests = new client.Counter({
  name: 'penny_http_requests_total', help: 'HTTP requests answered, by route pattern, method and status.',
  labelNames: ['route', 'method', 'status'] as const, registers: [metricsRegistry],
});

const httpDuration = new client.Histogram({
  name: 'penny_http_request_duration_seconds', help: 'Time to answer an HTTP request, by route pattern and method.',
  labelNames: ['route', 'method'] as const, registers: [metricsRegistry],
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
});

const alertsRaised = new client.Counter({
  name: 'penny_alerts_total', help: 'Alerts raised (each also logged with its `alert` field), by alert.',
  labelNames: ['alert'] as const, registers: [metricsRegistry],
});

const waiting = new client.Gauge({
  name: 'penny_waiting', help: 'What waits for a worker or a human, read from the database at each scrape.',
  labelNames: ['what'] as const, registers: [metricsRegistry],
});

const casesOpen = new client.Gauge({
  name: 'penny_payment_cases_open', help: 'Payment cases open for a human, by kind.',
  labelNames: ['kind'] as const, registers: [metricsRegistry],
});

const breaksOpen = new client.Gauge({
  name: 'penny_reconciliation_breaks_open',
  help: 'Open reconciliation breaks by type and age band (under_1d, 1d_to_3d, 3d_to_7d, over_7d).',
  labelNames: ['type', 'age'] as const, registers: [metricsRegistry],
});

const oldestBreak = new client.Gauge({
  name: 'penny_reconciliation_break_oldest_open_seconds', help: 'Age of the oldest open reconciliation break, by type.',
  labelNames: ['type'] as const, registers: [metricsRegistry],
});

/**
 * The labelled series of each route, method and status seen, made once: prom-client hashes the
 * labels on every call otherwise. Bounded as the labels are (route patterns, methods Node's parser
 * accepts, statuses); these two metrics are never reset, which would detach the kept series.
 */
const httpSeries = new Map<string,
  { requests: ReturnType<typeof httpRequests.labels>; duration: ReturnType<typeof httpDuration.labels> }>();

export function recordHttpRequest(route: string, method: string, status: number, durationSeconds: number): void {
  const name = `${status} ${method} ${route}`;
  let series = httpSeries.get(name);
  if (series === undefined) {
    series = { requests: httpRequests.labels({ route, method, status: String(status) }),
      duration: httpDuration.labels({ route, method }) };
    httpSeries.set(name, series);
  }
  series.requests.inc();
  series.duration.observe(durationSeconds);
}

/**
 * Raises an alert: an error log line carrying `alert` (what log-based alerting matches) and the
 * alert counter (what metric-based alerting matches).
 */
export function raiseAlert(logger: Logger, alert: string, fields: Record<string, unknown>, message: string): void {
  alertsRaised.inc({ alert });
  logger.error({ alert, ...fields }, `ALERT: ${message}`);
}

/** The metrics as Prometheus text, with the database's figures read now. */
export async function renderMetrics(pool: pg.Pool): Promise<{ contentType: string; text: string }> {
  for (const [what, count] of Object.entries(await selectWaitingCounts(pool))) waiting.set({ what }, Number(count));
  const cases = await selectCasesOpenByKind(pool);
  casesOpen.reset();
  for (const row of cases) casesOpen.set({ kind: row.kind }, Number(row.count));
  const breaks = await selectOpenBreakAges(pool);
  breaksOpen.reset();
  oldestBreak.reset();
  const oldest = new Map<string, number>();
  for (const row of breaks) {
    breaksOpen.set({ type: row.type, age: row.age }, Number(row.count));
    oldest.set(row.type, Math.max(oldest.get(row.type) ?? 0, Number(row.oldestSeconds)));
  }
  for (const [type, seconds] of oldest) oldestBreak.set({ type }, seconds);
  return { contentType: metricsRegistry.contentType, text: await metricsRegistry.metrics() };
}
