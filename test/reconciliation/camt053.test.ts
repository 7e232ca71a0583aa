import { describe, expect, it } from 'vitest';
import { readCamt053 } from '../../src/reconciliation/camt053.js';
import { rawObject } from '../../src/reconciliation/recon-records.js';
import { camt053Statement } from '../../src/sandbox-psp/bank-statement.js';
import { checks, parseFixture, parseText } from './parse-support.js';

/** The facts of each genkgo/camt sample, as ../shared/fixtures/README.md lists them. */
describe('camt.053 samples (genkgo/camt, MIT)', () => {
  it('v2 minimal: one EUR entry of 8.85, Sts as text; the closing balance in SEK makes the balances not checkable', async () => {
    const { records, statements } = await parseFixture(readCamt053, 'camt053-genkgo/camt053.v2.minimal.xml');
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({ account: 'NL26VAYB8060476890', currency: 'EUR', entryCount: 1,
      opening: { amountMinor: 1815n, currency: 'EUR' }, closing: { amountMinor: -2700n, currency: 'SEK' },
      balanceCheck: { result: 'not_checkable', reason: expect.stringMatching(/closing booked balance is in SEK/) } });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ kind: 'bank_entry', amountMinor: 885n, currency: 'EUR', status: 'BOOK',
      reversal: false, bookingDate: '2014-12-31', valueDate: '2015-01-02', type: '544', statementPosition: 0 });
    expect(records[0]?.references['TxDtls.EndToEndId']).toBeUndefined();
  });

  it('v2 multi statement: two statements of one account, both adding up (18.15 + 8.85 = 27.00, 27.00 - 7.00 = 20.00)', async () => {
    const { records, statements } = await parseFixture(readCamt053, 'camt053-genkgo/camt053.v2.multi.statement.xml');
    expect(statements.map((statement) => [statement.account, statement.currency, statement.balanceCheck.result]))
      .toEqual([['NL26VAYB8060476890', 'EUR', 'adds_up'], ['NL26VAYB8060476890', 'EUR', 'adds_up']]);
    expect(records.map((record) => [record.amountMinor, record.references['TxDtls.EndToEndId']]))
      .toEqual([[885n, '000000001'], [-700n, '000000002']]);
    expect(statements[1]?.closing?.amountMinor).toBe(2000n);
  });

  it('v2 "five decimals": amounts with 3 decimals read exactly; 18.150 + 8.850 is not 27.050', async () => {
    const { records, statements } = await parseFixture(readCamt053, 'camt053-genkgo/camt053.v2.five.decimals.xml');
    expect(records[0]?.amountMinor).toBe(885n);
    expect(checks(statements)).toEqual(['253EURNL26VAYB8060476890 mismatch 5']);
  });

  it('v2 all balance types: no Acct/Ccy, the account currency comes from the opening balance; 1.01 + 8.85 is not 4.04', async () => {
    const { statements } = await parseFixture(readCamt053, 'camt053-genkgo/camt053.v2.all-balance-types.xml');
    expect(statements[0]).toMatchObject({ account: 'CH2801234000123456789', currency: 'EUR',
      opening: { amountMinor: 101n }, closing: { amountMinor: 404n } });
    expect(checks(statements)).toEqual(['CAMT0532015012200001 mismatch -582']);
    expect((statements[0]?.raw.balances as unknown[]).length).toBe(10);
  });

  it('v2 with account name: no opening or closing booked balance, so not checkable; an entry with no ValDt', async () => {
    const { records, statements } = await parseFixture(readCamt053, 'camt053-genkgo/camt053.v2.with-account-name.xml');
    expect(statements[0]?.balanceCheck).toEqual({ result: 'not_checkable', reason: 'the statement has no opening booked balance' });
    expect(statements[0]?.raw.account_name).toBeTruthy();
    expect(records[0]).toMatchObject({ amountMinor: 885n, bookingDate: '2014-12-31', valueDate: null });
  });

  it('v2 wrong: a GrpHdr and no Stmt is refused', async () => {
    await expect(parseFixture(readCamt053, 'camt053-genkgo/camt053.v2.wrong.xml'))
      .rejects.toMatchObject({ code: 'reconciliation_file_invalid', details: { field: 'Stmt' } });
  });

  it('v3: an Othr/Id account, BkTxCd Domn, no RvslInd; the transaction amount (105.750) is kept apart from the entry', async () => {
    const { records } = await parseFixture(readCamt053, 'camt053-genkgo/camt053.v3.xml');
    expect(records[0]).toMatchObject({ externalId: 'NL26VAYB8060476890|253EURNL26VAYB8060476890|1', amountMinor: 885n,
      type: 'PMNT/RCDT/DMCT', reversal: false });
    expect(records[0]?.references.AcctSvcrRef).toBe('XXXXXXXXXXXXXXXXXXXXXXEUR');
    expect((rawObject(records[0]!.raw).leaves as Record<string, string>)['NtryDtls/TxDtls/Amt']).toBe('105.750 EUR');
  });

  it('v4: the version from the namespace, AcctSvcrRef and a PAYM family; not checkable (CLBD in SEK)', async () => {
    let version = '';
    const { records, statements } = await parseFixture(
      (input, file) => readCamt053(input, file, (found) => { version = found; }),
      'camt053-genkgo/camt053.v4.xml');
    expect(version).toBe('001.04');
    expect(records[0]).toMatchObject({ amountMinor: 885n, type: 'PAYM/0001/0005', references: { AcctSvcrRef: 'AAAASESS-FP-CN_98765/01' } });
    expect(statements[0]?.balanceCheck.result).toBe('not_checkable');
    expect(statements[0]?.closing?.date).toBe('2014-12-30');
  });

  it('v8: Sts/Cd, a DtTm booking date with a zone, Pty-wrapped parties, the EndToEndId and the SCOR reference', async () => {
    let version = '';
    const { records } = await parseFixture((input, file) => readCamt053(input, file, (found) => { version = found; }),
      'camt053-genkgo/camt053.v8.xml');
    expect(version).toBe('001.08');
    expect(records[0]).toMatchObject({ status: 'BOOK', bookingDate: '2014-12-31', amountMinor: 885n, type: 'PMNT/RCDT/BOOK',
      references: { 'TxDtls.EndToEndId': 'MUELL/FINP/RA12345', AcctSvcrRef: 'AAAASESS-FP-CN_98765/01' } });
    expect(records[0]?.references.CdtrRef).toBeTruthy();
    expect(records[0]?.counterpartyName).toBeTruthy();
  });

  it('only Dt with DtTm: an opening balance of RON 5442.09000 with a nanosecond DtTm, no closing balance, no entries', async () => {
    const { records, statements } = await parseFixture(readCamt053, 'camt053-genkgo/camt53.only-Dt-with-DtTm.xml');
    expect(records).toEqual([]);
    expect(statements[0]).toMatchObject({ account: 'GB33BUKB20201555555555', currency: 'RON',
      opening: { amountMinor: 544209n, currency: 'RON', date: '2025-07-23' }, closing: null,
      balanceCheck: { result: 'not_checkable', reason: 'the statement has no closing booked balance' } });
  });
});

/** A v04-shaped statement with a prefixed namespace, a batch booking, a PDNG entry and a reversal. */
function statementXml(options: { namespace?: string; entries?: string; closing?: string } = {}): string {
  const namespace = options.namespace ?? 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.04';
  return `<?xml version="1.0" encoding="UTF-8"?>
<c:Document xmlns:c="${namespace}"><c:BkToCstmrStmt>
<c:GrpHdr><c:MsgId>AAAASESS-FP-STAT001</c:MsgId><c:CreDtTm>2010-10-18T17:00:00+01:00</c:CreDtTm></c:GrpHdr>
<c:Stmt><c:Id>AAAASESS-FP-STAT001</c:Id><c:CreDtTm>2010-10-18T17:00:00+01:00</c:CreDtTm>
<c:Acct><c:Id><c:Othr><c:Id>50000000054910</c:Id></c:Othr></c:Id><c:Ccy>SEK</c:Ccy></c:Acct>
<c:Bal><c:Tp><c:CdOrPrtry><c:Cd>OPBD</c:Cd></c:CdOrPrtry></c:Tp><c:Amt Ccy="SEK">500000</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:Dt><c:Dt>2010-10-15</c:Dt></c:Dt></c:Bal>
<c:Bal><c:Tp><c:CdOrPrtry><c:Cd>CLBD</c:Cd></c:CdOrPrtry></c:Tp><c:Amt Ccy="SEK">${options.closing ?? '435678.50'}</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:Dt><c:Dt>2010-10-18</c:Dt></c:Dt></c:Bal>
${options.entries ?? `<c:Ntry><c:Amt Ccy="SEK">105678.50</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:Sts>BOOK</c:Sts>
<c:BookgDt><c:Dt>2010-10-18</c:Dt></c:BookgDt><c:ValDt><c:Dt>2010-10-18</c:Dt></c:ValDt>
<c:NtryDtls><c:TxDtls><c:Refs><c:EndToEndId>MUELL/FINP/RA12345</c:EndToEndId></c:Refs>
<c:RmtInf><c:Ustrd>SANDBOX PAYOUT po_123</c:Ustrd></c:RmtInf></c:TxDtls></c:NtryDtls></c:Ntry>
<c:Ntry><c:Amt Ccy="SEK">200000</c:Amt><c:CdtDbtInd>DBIT</c:CdtDbtInd><c:Sts>BOOK</c:Sts>
<c:BookgDt><c:Dt>2010-10-18</c:Dt></c:BookgDt><c:ValDt><c:Dt>2010-10-18</c:Dt></c:ValDt>
<c:BkTxCd><c:Domn><c:Cd>PMNT</c:Cd><c:Fmly><c:Cd>ICDT</c:Cd><c:SubFmlyCd>ESCT</c:SubFmlyCd></c:Fmly></c:Domn></c:BkTxCd>
<c:NtryDtls><c:Btch><c:PmtInfId>AAAA100628-123v</c:PmtInfId><c:NbOfTxs>20</c:NbOfTxs></c:Btch></c:NtryDtls></c:Ntry>
<c:Ntry><c:Amt Ccy="SEK">30000</c:Amt><c:CdtDbtInd>DBIT</c:CdtDbtInd><c:Sts><c:Cd>PDNG</c:Cd></c:Sts></c:Ntry>
<c:Ntry><c:Amt Ccy="SEK">30000</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:RvslInd>true</c:RvslInd><c:Sts>BOOK</c:Sts></c:Ntry>`}
</c:Stmt></c:BkToCstmrStmt></c:Document>`;
}

describe('camt.053 shapes', () => {
  it('reads prefixed elements, a batch booking of 20 transactions as one entry, and counts only booked entries', async () => {
    const { records, statements } = await parseText(readCamt053, statementXml());
    expect(records.map((record) => [record.amountMinor, record.status, record.reversal]))
      .toEqual([[10567850n, 'BOOK', false], [-20000000n, 'BOOK', false], [-3000000n, 'PDNG', false], [3000000n, 'BOOK', true]]);
    expect(records[1]).toMatchObject({ type: 'PMNT/ICDT/ESCT', references: { 'Btch.NbOfTxs': '20' }, raw: { transactions: '20' } });
    expect(records[0]?.remittanceText).toBe('SANDBOX PAYOUT po_123');
    // 5000000.00 + 105678.50 - 200000 + 30000 (the pending debit left out) = 435678.50
    expect(checks(statements)).toEqual(['AAAASESS-FP-STAT001 adds_up']);
  });

  it('reports a statement that does not add up with both balances and the difference', async () => {
    const { statements } = await parseText(readCamt053, statementXml({ closing: '435678.49' }));
    expect(statements[0]?.balanceCheck).toEqual({ result: 'mismatch', expectedClosingMinor: 43567850n, differenceMinor: -1n });
  });

  it('reads what the sandbox PSP\'s bank writes (camt.053.001.08)', async () => {
    const xml = camt053Statement({ statementId: 'STMT-2026-03-04', accountIban: 'NL91ABNA0417164300', currency: 'EUR',
      openingBalanceMinor: -500n, createdAt: '2026-03-04T23:59:59Z', fromDate: '2026-03-04', toDate: '2026-03-04',
      credits: [{ reference: 'batch-17-EUR', amountMinor: 6789n, currency: 'EUR', bookingDate: '2026-03-04' }] });
    const { records, statements } = await parseText(readCamt053, xml);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ amountMinor: 6789n, currency: 'EUR', remittanceText: 'SANDBOX PAYOUT batch-17-EUR',
      bookingDate: '2026-03-04', status: 'BOOK' });
    expect(statements[0]).toMatchObject({ account: 'NL91ABNA0417164300', opening: { amountMinor: -500n },
      closing: { amountMinor: 6289n }, balanceCheck: { result: 'adds_up' } });
  });

  it('refuses broken XML, naming the line', async () => {
    const broken = statementXml().replace('</c:Acct>', '</c:Account>');
    await expect(parseText(readCamt053, broken, 'broken.xml')).rejects.toMatchObject({
      code: 'reconciliation_file_invalid', details: { file: 'broken.xml', line: 5, field: 'XML' } });
  });

  it('refuses another document, and a camt.053 version it does not read', async () => {
    await expect(parseText(readCamt053, statementXml({ namespace: 'urn:iso:std:iso:20022:tech:xsd:camt.052.001.02' })))
      .rejects.toThrow(/not a camt\.053 document/);
    await expect(parseText(readCamt053, statementXml({ namespace: 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.13' })))
      .rejects.toThrow(/camt\.053\.001\.13 is not read/);
  });

  it('refuses an amount with more decimals than its currency, and an entry with no CdtDbtInd, by line', async () => {
    const entry = (body: string) => statementXml({ entries: `<c:Ntry>${body}<c:Sts>BOOK</c:Sts></c:Ntry>` });
    await expect(parseText(readCamt053, entry('<c:Amt Ccy="SEK">1.005</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd>')))
      .rejects.toMatchObject({ details: { line: 8, field: 'Ntry/Amt' } });
    await expect(parseText(readCamt053, entry('<c:Amt Ccy="SEK">1.00</c:Amt>')))
      .rejects.toMatchObject({ details: { field: 'Ntry/CdtDbtInd' } });
    await expect(parseText(readCamt053, entry('<c:Amt Ccy="XYZ">1.00</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd>')))
      .rejects.toThrow(/not an ISO 4217 currency code/);
  });

  it('refuses a booking date that is no day', async () => {
    const xml = statementXml({ entries: '<c:Ntry><c:Amt Ccy="SEK">1</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:Sts>BOOK</c:Sts>'
      + '<c:BookgDt><c:Dt>2016-02-30</c:Dt></c:BookgDt></c:Ntry>' });
    await expect(parseText(readCamt053, xml)).rejects.toMatchObject({ details: { field: 'Ntry/BookgDt' },
      message: expect.stringMatching(/no such day/) });
  });
});
