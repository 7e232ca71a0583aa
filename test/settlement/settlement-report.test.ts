import { describe, expect, it } from 'vitest';
import { parseSettlementReport } from '../../src/settlement/settlement-report.js';

/**
 * Penny's reading of a PSP's settlement details report for settlement: through reconciliation's
 * one parser (by header name, amounts in exact minor units; its own tests cover the formats), each
 * line netted for the batch's payout, and a report it cannot read refused whole.
 */
const header = 'Merchant Account,Batch Number,Creation Date,Type,Merchant Reference,Psp Reference,'
  + 'Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),'
  + 'Net Credit (NC),Booking Date';

describe('a settlement report line', () => {
  it('nets its credit less its debit in minor units of its currency', async () => {
    const lines = await parseSettlementReport([header,
      'Penny,7,2026-12-07,Settled,ch_1,sbx_1,sbx_1,USD,,100.00,USD,,97.80,2026-12-07 23:59:59',
      'Penny,7,2026-12-07,Refunded,re_1,sbx_2,sbx_2,USD,10.00,,USD,10.00,,2026-12-07 23:59:59',
      'Penny,7,2026-12-07,MerchantPayout,,,batch-1-USD,,,,USD,87.80,,2026-12-07 23:59:59'].join('\n'));
    expect(lines.map((line) => [line.type, line.netMinor])).toEqual([['Settled', 9780n], ['Refunded', -1000n],
      ['MerchantPayout', -8780n]]);
    expect(lines[2]).toMatchObject({ modificationReference: 'batch-1-USD', currency: 'USD', bookingDay: '2026-12-07' });
  });

  it('with an amount it cannot read exactly is refused whole, naming the line and field', async () => {
    const refusal = await parseSettlementReport([header,
      'Penny,7,2026-12-07,Settled,ch_1,sbx_1,sbx_1,USD,,10.00,USD,,9.999,2026-12-07'].join('\n'), 'day.csv')
      .catch((error: unknown) => error);
    expect(String((refusal as Error).message)).toMatch(/day\.csv.*2.*Net Credit/s);
  });
});
