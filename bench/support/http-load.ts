/** One autocannon run (HTTP/1.1 keep-alive, one request in flight per connection), summarized. */
import autocannon from 'autocannon';
import { percentile, round } from './penny-server.js';

export interface HttpRun {
  /** 2xx answers per second; non-2xx answers are counted apart. */
  readonly okPerSecond: number;
  readonly responsesPerSecond: number;
  /** Of the 2xx answers. */
  readonly latencyMsP50: number;
  readonly latencyMsP99: number;
  readonly sent: number;
  readonly ok: number;
  readonly responses: number;
  readonly non2xx: number;
  readonly statusCounts: Record<string, number>;
  readonly errors: number;
  readonly seconds: number;
}

export async function runAutocannon(options: autocannon.Options): Promise<HttpRun> {
  const latenciesMs: number[] = [];
  const run = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options,
      (error: unknown, result) => (error ? reject(error as Error) : resolve(result)));
    // autocannon's own histogram keeps whole milliseconds; these keep the fraction.
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latenciesMs.push(responseTime);
    });
  });
  latenciesMs.sort((left, right) => left - right);
  const statusCounts = Object.fromEntries(Object.entries(run.statusCodeStats ?? {})
    .map(([status, stats]) => [status, stats.count ?? 0]));
  const responses = Object.values(statusCounts).reduce((sum, count) => sum + count, 0);
  return {
    okPerSecond: Math.round(run['2xx'] / run.duration),
    responsesPerSecond: Math.round(responses / run.duration),
    latencyMsP50: round(percentile(latenciesMs, 0.5)),
    latencyMsP99: round(percentile(latenciesMs, 0.99)),
    sent: run.requests.sent,
    ok: run['2xx'],
    responses,
    non2xx: run.non2xx,
    statusCounts,
    errors: run.errors,
    seconds: run.duration,
  };
}

/** "0.42 (target ≥ 0.5: not met)"; a ratio of a missing figure is "not measured". */
export interface Ratio {
  readonly name: string;
  /** null: not measured in this run (BENCH_ONLY, or a figure missing). */
  readonly value: number | null;
  readonly target: string;
  readonly met: boolean | null;
}

export type Bound = { readonly atLeast: number } | { readonly atMost: number };

export function ratio(name: string, top: number | undefined, bottom: number | undefined, target: Bound): Ratio {
  return figure(name, top === undefined || bottom === undefined || bottom === 0 ? undefined : top / bottom, target);
}

/** A figure checked against a bound, as a ratio is (a p99 in ms, say). */
export function figure(name: string, value: number | undefined, target: Bound): Ratio {
  const met = value === undefined ? null
    : 'atLeast' in target ? value >= target.atLeast : value <= target.atMost;
  return {
    name,
    value: value === undefined ? null : Math.round(value * 10_000) / 10_000,
    target: 'atLeast' in target ? `≥ ${target.atLeast}` : `≤ ${target.atMost}`,
    met,
  };
}

export function formatRatios(title: string, ratios: readonly Ratio[]): string {
  const lines = [title];
  for (const item of ratios) {
    const verdict = item.met === null ? 'not measured' : item.met ? 'met' : 'not met';
    lines.push(`- ${item.name}: ${item.value ?? '-'} (target ${item.target}: ${verdict})`);
  }
  return lines.join('\n');
}
