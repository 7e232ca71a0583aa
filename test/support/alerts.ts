import { metricsRegistry } from '../../src/metrics/metrics.js';

/** How many times this process raised `alert` (penny_alerts_total{alert}), as a scrape would read it. */
export async function alertsRaised(alert: string): Promise<number> {
  const metric = metricsRegistry.getSingleMetric('penny_alerts_total');
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.find((value) => value.labels.alert === alert)?.value ?? 0;
}
