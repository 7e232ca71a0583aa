/** One autocannon run (HTTP/1.1 keep-alive, one request in flight per connection), summarized. */
import http from 'node:http';
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

/**
 * An open-loop run: requests start at evenly spaced moments (`ratePerSecond`), over at most
 * `connections` keep-alive connections, whatever the answers before them. autocannon's
 * `overallRate` does not space them: each connection sends its share of a second back to back at
 * the start of each second, then waits, so its latencies are those of bursts at full concurrency.
 * Each latency runs from the moment the request was due, so time spent waiting for a free
 * connection counts (no coordinated omission).
 */
export async function runPaced(options: {
  readonly url: string; readonly connections: number; readonly ratePerSecond: number; readonly seconds: number;
  readonly request: () => { path: string; method: string; headers: Record<string, string>; body: string };
}): Promise<HttpRun> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const target = new URL(options.url);
  const total = Math.max(1, Math.round(options.ratePerSecond * options.seconds));
  const intervalMs = 1000 / options.ratePerSecond;
  const latenciesMs: number[] = [];
  const statusCounts: Record<string, number> = {};
  let errors = 0;
  const send = (due: number) => new Promise<void>((resolve) => {
    const { path, method, headers, body } = options.request();
    const request = http.request({
      host: target.hostname, port: target.port, path, method, agent,
      headers: { ...headers, 'content-length': Buffer.byteLength(body) },
    }, (response) => {
      response.resume();
      response.once('end', () => {
        const status = response.statusCode ?? 0;
        statusCounts[status] = (statusCounts[status] ?? 0) + 1;
        if (status >= 200 && status < 300) latenciesMs.push(performance.now() - due);
        resolve();
      });
    });
    request.once('error', () => {
      errors += 1;
      resolve();
    });
    request.end(body);
  });
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let index = 0; index < total; index += 1) {
    const due = started + index * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(send(due));
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latenciesMs.sort((left, right) => left - right);
  const responses = Object.values(statusCounts).reduce((sum, count) => sum + count, 0);
  const ok = latenciesMs.length;
  return {
    okPerSecond: Math.round(ok / seconds),
    responsesPerSecond: Math.round(responses / seconds),
    latencyMsP50: round(percentile(latenciesMs, 0.5)),
    latencyMsP99: round(percentile(latenciesMs, 0.99)),
    sent: total, ok, responses, non2xx: responses - ok, statusCounts, errors, seconds,
  };
}
