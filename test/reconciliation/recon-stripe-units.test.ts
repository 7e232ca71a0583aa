import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureClock, nowMs } from '../../src/clock.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import { operatorKey } from '../support/app.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Charges and refunds keep Stripe's amounts, which for ISK and UGX count hundredths of a unit ISO
 * 4217 does not divide (ISK 500000 is 5,000 kr); a settlement report's lines are in ISO minor units.
 * Reconciliation compares them in minor units.
 */
let penny: ServedLedger;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
});

afterAll(() => configureClock('system'));

async function operator(method: 'GET' | 'POST', url: string, payload?: object) {
  const response = await penny.app.inject({ method, url, headers: { authorization: `Bearer ${operatorKey}` },
    ...(payload === undefined ? {} : { payload }) });
  return { status: response.statusCode, body: response.json() as { breaks: unknown[] } };
}

describe('reconciling a currency whose Stripe unit is finer than its minor unit', () => {
  it('opens no break for an ISK capture and refund the sandbox reports as Penny booked them', async () => {
    const created = await penny.merchants.createMerchant('Krona Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const intent = await stripe.paymentIntents.create({ amount: 500_000, currency: 'isk',
      payment_method: 'pm_card_visa', confirm: true });
    await stripe.refunds.create({ payment_intent: intent.id, amount: 100_000 });
    const day = new Date(nowMs()).toISOString().slice(0, 10);
    await payOutSettlementBatches(penny.pool, day);
    const report = await (await fetch(`${penny.sandbox.url}/v1/settlement_reports/${day}?currency=ISK`)).text();
    await new ReconciliationImports(penny.pool).importFile({ body: Readable.from([Buffer.from(report, 'utf8')]),
      filename: 'isk.csv', source: 'sandbox' });
    const run = await operator('POST', '/v1/reconciliation/runs', { as_of: day });
    expect(run.status).toBe(201);
    expect(run.body.breaks).toEqual([]);
  });
});
