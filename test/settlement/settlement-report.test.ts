import { describe, expect, it } from 'vitest';
import { decimalToMinor, parseSettlementReport } from '../../src/settlement/settlement-report.js';

/** Penny's reading of a PSP's settlement details report: by header name, amounts in exact minor units. */
const header = 'Type,Merchant Reference,Psp Reference,Modification Reference,Net Currency,Net Debit (NC),'
  + 'Net Credit (NC),Booking Date';

describe('a settlement report line', () => {
  it('nets its credit less its debit in minor units of its currency', () => {
    const lines = parseSettlementReport([header,
      'Settled,ch_1,sbx_1,sbx_1,USD,,97.80,2026-12-07 23:59:59',
      'Refunded,re_1,sbx_2,sbx_2,USD,10.00,,2026-12-07 23:59:59',
      'MerchantPayout,,,batch-1-USD,USD,87.80,,2026-12-07 23:59:59'].join('\n'));
    expect(lines.map((line) => [line.type, line.netMinor])).toEqual([['Settled', 9780n], ['Refunded', -1000n],
      ['MerchantPayout', -8780n]]);
    expect(lines[2]).toMatchObject({ modificationReference: 'batch-1-USD', currency: 'USD', bookingDay: '2026-12-07' });
  });

  it('reads amounts with their currency\'s own exponent', () => {
    expect(decimalToMinor('1000', 'JPY')).toBe(1000n);
    expect(decimalToMinor('10.5', 'USD')).toBe(1050n);
    expect(decimalToMinor('1.000', 'KWD')).toBe(1000n);
    expect(decimalToMinor('', 'USD')).toBe(0n);
  });

  it('leaves an amount it cannot read exactly unread: more decimals than the currency has, or no number', () => {
    expect(decimalToMinor('10.001', 'USD')).toBeUndefined();
    expect(decimalToMinor('1.5', 'JPY')).toBeUndefined();
    expect(decimalToMinor('-1.00', 'USD')).toBeUndefined();
    const [line] = parseSettlementReport([header, 'Settled,ch_1,sbx_1,sbx_1,USD,,9.999,2026-12-07'].join('\n'));
    expect(line?.netMinor).toBeUndefined();
  });
});
