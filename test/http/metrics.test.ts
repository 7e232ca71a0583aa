import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { raiseAlert } from '../../src/metrics/metrics.js';
import { createTestLedger, operatorKey, type TestLedger } from '../support/app.js';

/** GET /metrics: Prometheus text for operators, with what waits for a worker or a human. */
let penny: TestLedger;

beforeAll(async () => {
  penny = await createTestLedger();
});

async function scrape(): Promise<string> {
  const response = await penny.request({ method: 'GET', url: '/metrics' });
  expect(response.status).toBe(200);
  expect(String(response.headers['content-type'])).toMatch(/^text\/plain/);
  return response.body as string;
}

function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  it('answers only the operator key', async () => {
    const missing = await penny.request({ method: 'GET', url: '/metrics', headers: { authorization: '' } });
    expect(missing.status).toBe(401);
    const wrong = await penny.request({ method: 'GET', url: '/metrics',
      headers: { authorization: `Bearer ${operatorKey}x` } });
    expect(wrong.status).toBe(401);
  });

  it('counts requests by route pattern, not by URL', async () => {
    await penny.request({ method: 'GET', url: '/v1/ledger/accounts/lacc_missing00' });
    const text = await scrape();
    expect(text).toContain('penny_http_requests_total{route="/v1/ledger/accounts/:id",method="GET",status="404"}');
    expect(text).not.toContain('lacc_missing00');
  });

  it('counts each alert raised', async () => {
    const before = valueOf(await scrape(), 'penny_alerts_total{alert="test_alert"}') ?? 0;
    raiseAlert(createLogger('silent'), 'test_alert', {}, 'a test raised it');
    raiseAlert(createLogger('silent'), 'test_alert', {}, 'a test raised it');
    expect(valueOf(await scrape(), 'penny_alerts_total{alert="test_alert"}')).toBe(before + 2);
  });

  it('reads open cases and waiting work from the database at each scrape', async () => {
    await penny.pool.query(`INSERT INTO payment_cases (merchant_id, id, kind, payment_intent_id, subject_id, detail)
      VALUES ('acct_metrics', 'case_metrics01', 'unmatched_event', 'pi_metrics', 'metrics:1', '{}'),
             ('acct_metrics', 'case_metrics02', 'unmatched_event', 'pi_metrics', 'metrics:2', '{}')`);
    await penny.pool.query(`INSERT INTO recovery_jobs (merchant_id, id, kind, subject_id, next_run_at, connector)
      VALUES ('acct_metrics', 'rcv_metrics01', 'authorize', 'pa_metrics', now() + interval '1 hour', 'sandbox')`);
    const text = await scrape();
    expect(valueOf(text, 'penny_payment_cases_open{kind="unmatched_event"}')).toBe(2);
    expect(valueOf(text, 'penny_waiting{what="recovery_jobs_pending"}')).toBe(1);
    expect(valueOf(text, 'penny_waiting{what="psp_events_parked"}')).toBe(0);
    await penny.pool.query(`UPDATE payment_cases SET status = 'closed', closed_at = now(), resolution = 'checked'
      WHERE id = 'case_metrics01'`);
    expect(valueOf(await scrape(), 'penny_payment_cases_open{kind="unmatched_event"}')).toBe(1);
  });
});
