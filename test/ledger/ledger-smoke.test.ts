import { describe, expect, it } from 'vitest';
import { createTestLedger } from '../support/app.js';

describe('ledger smoke', () => {
  it('creates two accounts, posts a transfer, and shows the balances', async () => {
    const penny = await createTestLedger();
    const cash = await penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type: 'asset' } });
    const owed = await penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type: 'liability' } });
    expect(cash.status).toBe(200);
    const entry = await penny.request({
      method: 'POST', url: '/v1/ledger/entries', body: {
        external_reference: 'smoke-1',
        postings: [
          { account: cash.body.id, direction: 'debit', amount: 500 },
          { account: owed.body.id, direction: 'credit', amount: 500 },
        ],
      },
    });
    expect(entry.status).toBe(200);
    const account = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${owed.body.id}` });
    expect(account.body.balances.posted).toBe(500);
  });
});
