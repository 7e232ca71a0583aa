import { describe, expect, it } from 'vitest';
import { readMt940 } from '../../src/reconciliation/mt940.js';
import { checks, parseFixture, parseText } from './parse-support.js';

/** The facts of each WoLpH/mt940 sample (BSD-3-Clause, MIT, Apache-2.0), as ../shared/fixtures/README.md lists them. */
describe('MT940 samples (WoLpH/mt940)', () => {
  it('ABN AMRO: header lines, two statements of account 517852257, amounts such as 9, and 107,; neither adds up', async () => {
    const { records, statements } = await parseFixture(readMt940, 'mt940-wolph/jejik/abnamro.sta');
    expect(statements.map((statement) => [statement.account, statement.currency, statement.entryCount]))
      .toEqual([['517852257', 'EUR', 8], ['517852257', 'EUR', 2]]);
    expect(checks(statements)).toEqual(['ABN AMRO BANK NV/19321/1 mismatch -203800', 'ABN AMRO BANK NV/19322/1 mismatch -100260']);
    expect(statements[0]).toMatchObject({ opening: { amountMinor: 323628n }, closing: { amountMinor: 87684n } });
    expect(records[0]).toMatchObject({ amountMinor: -900n, type: 'N192', valueDate: '2011-05-24', bookingDate: '2011-05-24',
      references: { owner_reference: 'NONREF' } });
    expect(records.find((record) => record.amountMinor === -10700n)).toBeDefined();
    expect(records[0]?.remittanceText).toMatch(/^GIRO {3}428428 KPN - DIGITENNE[^]*INCL\. 1,44 BTW$/);
  });

  it('Rabobank: four statements of two accounts with the currency glued on, zero-padded amounts, several :86: per entry', async () => {
    const { records, statements } = await parseFixture(readMt940, 'mt940-wolph/jejik/rabobank.sta');
    expect(statements.map((statement) => statement.account))
      .toEqual(['1291.99.348EUR', '1291.99.348EUR', '1291.99.348EUR', '1526.89.184EUR']);
    expect(checks(statements)).toEqual(['940A110615/00000/00 mismatch 113593', '940A110616/00000/00 adds_up',
      '940A110617/00000/00 mismatch 23656', '940A120829/00000/00 adds_up']);
    expect(statements[1]?.entryCount).toBe(0);
    expect(records[0]).toMatchObject({ amountMinor: -121328n, type: 'N044' });
    expect(records[0]?.remittanceText?.split('\n')).toHaveLength(4);
    expect(records.some((record) => record.valueDate === '2011-07-21')).toBe(true);
  });

  it('PostFinance: statements split by :62M:/:60M:, one-decimal amounts, a bank reference; the second does not add up', async () => {
    const { records, statements } = await parseFixture(readMt940, 'mt940-wolph/jejik/postfinance.sta');
    expect(checks(statements)).toEqual(['2014040708285927/999/1 adds_up', '2014040708285928/999/2 mismatch 20']);
    expect(statements[1]).toMatchObject({ opening: { amountMinor: 22920n }, closing: { amountMinor: 15960n },
      raw: { opening_final: false } });
    expect(records[0]).toMatchObject({ amountMinor: 7970n, type: 'FMSC',
      references: { owner_reference: '01916', bank_reference: 'NONREF', supplementary_details: '20131209007602198765432000000012' } });
  });

  it('ING: header lines, 7 entries, a statement-level :86: after :62F:, -XXX; 0 - 45.59 is not 3.47', async () => {
    const { records, statements } = await parseFixture(readMt940, 'mt940-wolph/jejik/ing.sta');
    expect(records).toHaveLength(7);
    expect(records.filter((record) => record.amountMinor > 0n)).toHaveLength(2);
    expect(checks(statements)).toEqual(['MPBZ/000 mismatch 4906']);
    expect(statements[0]?.raw.information).toEqual(['D000004C000002D25,24C28,71']);
    expect(records[2]?.references.owner_reference).toBe('TMG TANGO');
    expect(records.some((record) => record.remittanceText?.includes('\u00ad'))).toBe(true);
  });

  it('German SEPA: 26 statements of 20 accounts, 97 entries, debit balances, CR/DR funds codes and RC reversals; all add up', async () => {
    const { records, statements } = await parseFixture(readMt940, 'mt940-wolph/betterplace/sepa_mt9401.sta');
    expect(statements).toHaveLength(26);
    expect(new Set(statements.map((statement) => statement.account)).size).toBe(20);
    expect(records).toHaveLength(97);
    expect(statements.every((statement) => statement.balanceCheck.result === 'adds_up')).toBe(true);
    expect(statements.some((statement) => (statement.opening?.amountMinor ?? 0n) < 0n)).toBe(true);
    const reversals = records.filter((record) => record.reversal);
    expect(reversals).toHaveLength(2);
    expect(reversals.every((record) => record.amountMinor === -20488n && record.references.funds_code === 'R')).toBe(true);
  });

  it('mBank: SOH and ETX around the message, three credits of 0,01 with funds code N and a bank reference; adds up', async () => {
    const { records, statements } = await parseFixture(readMt940, 'mt940-wolph/mBank/mt940.sta');
    expect(records.map(({ amountMinor, references: refs }) => [amountMinor, refs.funds_code, refs.bank_reference]))
      .toEqual([[1n, 'N', 'MB170119012058'], [1n, 'N', 'MB170119012085'], [1n, 'N', 'MB170119012121']]);
    expect(statements[0]).toMatchObject({ account: 'PL29114010810000267002001002', currency: 'PLN',
      balanceCheck: { result: 'adds_up', expectedClosingMinor: 43n } });
  });

  it('ASN Bank: 31 SWIFT FIN messages, one a day, 8 entries, an 18-character reference; every statement adds up', async () => {
    const { records, statements } = await parseFixture(readMt940, 'mt940-wolph/ASNB/0708271685_09022020_164516.940.txt');
    expect(statements).toHaveLength(31);
    expect(records).toHaveLength(8);
    expect(statements.every((statement) => statement.balanceCheck.result === 'adds_up')).toBe(true);
    expect(statements[0]?.opening?.amountMinor).toBe(44429n);
    expect(statements[30]?.closing?.amountMinor).toBe(50123n);
    expect(records[0]?.references.owner_reference).toBe('NL47INGB9999999999');
    expect(new Set(records.map((record) => record.externalId)).size).toBe(8);
  });

  it('30 February: the value date 160230 refuses the file, naming its line and field', async () => {
    await expect(parseFixture(readMt940, 'mt940-wolph/self-provided/february_30.sta')).rejects.toMatchObject({
      code: 'reconciliation_file_invalid',
      details: { file: 'mt940-wolph/self-provided/february_30.sta', line: 6, field: ':61:' },
      message: expect.stringMatching(/"160230" is not a date/),
    });
  });
});

describe('MT940 structure', () => {
  const statement = (body: string) => `:20:REF1\n:25:NL91ABNA0417164300\n:28C:1/1\n${body}\n-\n`;

  it('reads an entry date across New Year into the year before its value date', async () => {
    const { records } = await parseText(readMt940, statement(':60F:C260102EUR0,00\n:61:2601021231C1,00NTRFNONREF\n:62F:C260102EUR1,00'));
    expect(records[0]).toMatchObject({ valueDate: '2026-01-02', bookingDate: '2025-12-31' });
  });

  it('takes RD as a credit and RC as a debit', async () => {
    const { records, statements } = await parseText(readMt940,
      statement(':60F:C260102EUR10,00\n:61:260102RD1,00NTRFNONREF\n:61:260102RC3,00NTRFNONREF\n:62F:C260102EUR8,00'));
    expect(records.map((record) => record.amountMinor)).toEqual([100n, -300n]);
    expect(statements[0]?.balanceCheck.result).toBe('adds_up');
  });

  it('refuses an unreadable :61:, a currency that is not one, a missing opening balance and stray text, by line', async () => {
    await expect(parseText(readMt940, statement(':60F:C260102EUR0,00\n:61:26010X21C1,00NTRF'))).rejects
      .toMatchObject({ details: { line: 5, field: ':61:' } });
    await expect(parseText(readMt940, statement(':60F:C260102XYZ0,00'))).rejects
      .toMatchObject({ details: { line: 4, field: ':60F:' }, message: expect.stringMatching(/ISO 4217/) });
    await expect(parseText(readMt940, statement(':61:260102C1,00NTRFNONREF'))).rejects
      .toMatchObject({ details: { field: ':61:' }, message: expect.stringMatching(/before the opening balance/) });
    await expect(parseText(readMt940, statement(':60F:C260102EUR0,00\nstray text\n:62F:C260102EUR0,00'))).rejects
      .toMatchObject({ details: { line: 5 }, message: expect.stringMatching(/belongs to no field/) });
  });

  it('refuses a file with no statement', async () => {
    await expect(parseText(readMt940, 'hello\n')).rejects.toMatchObject({ details: { field: ':20:' } });
  });
});
