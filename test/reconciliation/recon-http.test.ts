import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, operatorKey, type TestLedger } from '../support/app.js';
import { fixtures } from './parse-support.js';

let penny: TestLedger;

beforeAll(async () => {
  penny = await createTestLedger();
});

function upload(body: Buffer | string, options: { query?: string; contentType?: string; key?: string } = {}) {
  return penny.app.inject({
    method: 'POST',
    url: `/v1/reconciliation/files${options.query === undefined ? '' : `?${options.query}`}`,
    payload: body,
    headers: {
      ...(options.key === '' ? {} : { authorization: `Bearer ${options.key ?? operatorKey}` }),
      ...(options.contentType === undefined ? {} : { 'content-type': options.contentType }),
    },
  });
}

describe('POST /v1/reconciliation/files', () => {
  it('imports the raw body, 201 the first time and 200 with already_known the second', async () => {
    const body = fs.readFileSync(path.join(fixtures, 'mt940-wolph/jejik/postfinance.sta'));
    const first = await upload(body, { query: 'source=postfinance&filename=postfinance.sta', contentType: 'text/plain' });
    expect(first.statusCode).toBe(201);
    const summary = first.json();
    expect(summary).toMatchObject({ object: 'reconciliation.file', format: 'mt940', source: 'postfinance',
      filename: 'postfinance.sta', already_known: false, records: { total: 4, new: 4 }, statement_count: 2 });
    expect(summary.statements[1]).toMatchObject({ balance_check: 'mismatch', difference_minor: 20,
      opening_balance: { amount_minor: 22920, currency: 'CHF' }, closing_balance: { amount_minor: 15960, currency: 'CHF' } });
    const second = await upload(body, { contentType: 'application/octet-stream' });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({ id: summary.id, already_known: true });
    const read = await penny.app.inject({ method: 'GET', url: `/v1/reconciliation/files/${summary.id}`,
      headers: { authorization: `Bearer ${operatorKey}` } });
    expect(read.json()).toMatchObject({ id: summary.id, records: summary.records });
  });

  it('takes a body of any content type or none, and an explicit format', async () => {
    const body = fs.readFileSync(path.join(fixtures, 'psp/stripe-payout-reconciliation.csv'));
    const response = await upload(body, { query: 'format=stripe_payout_reconciliation' });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ format: 'stripe_payout_reconciliation', records: { total: 8 } });
  });

  it('refuses a malformed file with 400 and a Stripe-style error naming the file, line and field', async () => {
    const body = fs.readFileSync(path.join(fixtures, 'mt940-wolph/self-provided/february_30.sta'));
    const response = await upload(body, { query: 'filename=february_30.sta', contentType: 'text/plain' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: { type: 'invalid_request_error', code: 'reconciliation_file_invalid',
      message: 'february_30.sta, line 6 (:61:): "160230" is not a date: no such day',
      file: 'february_30.sta', line: 6, field: ':61:' } });
  });

  it('refuses a bad parameter with 400', async () => {
    const response = await upload('x', { query: 'format=pdf' });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'parameter_invalid', param: 'format' });
  });

  it('streams a large body sent in chunks over a socket', async () => {
    const address = await penny.app.listen({ port: 0, host: '127.0.0.1' });
    const rows = 20_000;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('Merchant Account,Psp Reference,Merchant Reference,Type,Modification Reference,Gross Currency,'
        + 'Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),Net Credit (NC),Batch Number,Creation Date\n');
      for (let start = 1; start <= rows; start += 1000) {
        let text = '';
        for (let index = start; index < start + 1000; index += 1) {
          text += `Stream,s${index},ch_s${index},Settled,s${index},EUR,,10.00,EUR,,9.70,4,2026-03-02 10:00:00\n`;
        }
        yield Buffer.from(text);
      }
    }
    const response = await fetch(`${address}/v1/reconciliation/files?source=stream`, {
      method: 'POST', body: ReadableStream.from(chunks()), duplex: 'half',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'text/csv' },
    } as RequestInit);
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ format: 'adyen_sdr', lines: rows + 1, records: { total: rows, new: rows } });
  });

  it('answers 401 without the operator key, and with a merchant\'s key', async () => {
    expect((await upload('x', { key: '' })).statusCode).toBe(401);
    expect((await upload('x', { key: 'sk_test_notTheOperator' })).statusCode).toBe(401);
  });
});
