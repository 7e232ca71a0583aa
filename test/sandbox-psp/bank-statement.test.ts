import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { currencyExponent } from '../../src/money/currency.js';
import { camt053Statement, type BankStatementInput } from '../../src/sandbox-psp/bank-statement.js';

// Parser settings from reconciliation.md: keep every value a string, so no amount becomes a float.
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  removeNSPrefix: true,
  isArray: (name) => ['Stmt', 'Bal', 'Ntry', 'NtryDtls', 'TxDtls', 'Ustrd'].includes(name),
});

interface Amount { '#text': string; '@_Ccy': string }
interface Balance { Tp: { CdOrPrtry: { Cd: string } }; Amt: Amount; CdtDbtInd: string; Dt: { Dt: string } }
interface Entry {
  Amt: Amount;
  CdtDbtInd: string;
  Sts: { Cd: string };
  BookgDt: { Dt: string };
  ValDt: { Dt: string };
  BkTxCd: { Domn: { Cd: string; Fmly: { Cd: string; SubFmlyCd: string } } };
  NtryDtls: { TxDtls: { RmtInf: { Ustrd: string[] } }[] }[];
}
interface Statement {
  Id: string;
  CreDtTm: string;
  FrToDt: { FrDtTm: string; ToDtTm: string };
  Acct: { Id: { IBAN: string }; Ccy: string };
  Bal: Balance[];
  Ntry?: Entry[];
}
interface Camt053 {
  Document: { '@_xmlns': string; BkToCstmrStmt: { GrpHdr: { MsgId: string; CreDtTm: string }; Stmt: Statement[] } };
}

function readCamt(xml: string): Camt053 {
  return parser.parse(xml) as Camt053;
}

function onlyStatement(xml: string): Statement {
  const statements = readCamt(xml).Document.BkToCstmrStmt.Stmt;
  expect(statements).toHaveLength(1);
  return statements[0] as Statement;
}

function balanceOf(statement: Statement, code: string): Balance {
  const balance = statement.Bal.find((b) => b.Tp.CdOrPrtry.Cd === code);
  expect(balance).toBeDefined();
  return balance as Balance;
}

/** Signed minor units from an amount and its indicator, by integer arithmetic. */
function signedMinor(amount: Amount, indicator: string): bigint {
  const exponent = currencyExponent(amount['@_Ccy']);
  const [whole = '', fraction = ''] = amount['#text'].split('.');
  expect(fraction.length).toBe(exponent);
  const magnitude = BigInt(`${whole}${fraction}`);
  return indicator === 'DBIT' ? -magnitude : magnitude;
}

function statementInput(overrides: Partial<BankStatementInput> = {}): BankStatementInput {
  return {
    statementId: 'SANDBOX-STMT-0001',
    accountIban: 'NL91ABNA0417164300',
    currency: 'EUR',
    openingBalanceMinor: 10_000n,
    createdAt: '2024-05-03T06:00:00Z',
    fromDate: '2024-05-02',
    toDate: '2024-05-02',
    credits: [
      { reference: 'batch-7-EUR', amountMinor: 5566n, currency: 'EUR', bookingDate: '2024-05-02' },
      { reference: 'batch-8-EUR', amountMinor: 1234n, currency: 'EUR', bookingDate: '2024-05-02' },
    ],
    ...overrides,
  };
}

describe('camt053Statement', () => {
  it('is a camt.053.001.08 document', () => {
    // The namespace is an attribute the reading parser strips, so read it with one that keeps it.
    const raw = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_' })
      .parse(camt053Statement(statementInput())) as Camt053;
    expect(raw.Document['@_xmlns']).toBe('urn:iso:std:iso:20022:tech:xsd:camt.053.001.08');
  });

  it('names the message and the statement by the statement id and creation time', () => {
    const document = readCamt(camt053Statement(statementInput())).Document.BkToCstmrStmt;
    expect(document.GrpHdr).toEqual({ MsgId: 'SANDBOX-STMT-0001', CreDtTm: '2024-05-03T06:00:00Z' });
    expect(document.Stmt[0]).toMatchObject({ Id: 'SANDBOX-STMT-0001', CreDtTm: '2024-05-03T06:00:00Z' });
  });

  it('states the period and the account by IBAN and currency', () => {
    const statement = onlyStatement(camt053Statement(statementInput({ fromDate: '2024-05-01' })));
    expect(statement.FrToDt).toEqual({ FrDtTm: '2024-05-01T00:00:00Z', ToDtTm: '2024-05-02T23:59:59Z' });
    expect(statement.Acct).toEqual({ Id: { IBAN: 'NL91ABNA0417164300' }, Ccy: 'EUR' });
  });

  it('opens with the opening balance as a credit, dated the first day', () => {
    const opening = balanceOf(onlyStatement(camt053Statement(statementInput())), 'OPBD');
    expect(opening).toEqual({
      Tp: { CdOrPrtry: { Cd: 'OPBD' } },
      Amt: { '#text': '100.00', '@_Ccy': 'EUR' },
      CdtDbtInd: 'CRDT',
      Dt: { Dt: '2024-05-02' },
    });
  });

  it('closes with the opening balance plus the credits, dated the last day', () => {
    const closing = balanceOf(onlyStatement(camt053Statement(statementInput({ toDate: '2024-05-04' }))), 'CLBD');
    expect(closing).toMatchObject({ Amt: { '#text': '168.00', '@_Ccy': 'EUR' }, CdtDbtInd: 'CRDT', Dt: { Dt: '2024-05-04' } });
  });

  it('writes an overdrawn opening balance as an unsigned debit', () => {
    const opening = balanceOf(onlyStatement(camt053Statement(statementInput({ openingBalanceMinor: -2500n }))), 'OPBD');
    expect(opening).toMatchObject({ Amt: { '#text': '25.00' }, CdtDbtInd: 'DBIT' });
  });

  it('books each credit as one entry: credit, booked, dated, a received credit transfer', () => {
    const entries = onlyStatement(camt053Statement(statementInput())).Ntry ?? [];
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({
      Amt: { '#text': '55.66', '@_Ccy': 'EUR' },
      CdtDbtInd: 'CRDT',
      Sts: { Cd: 'BOOK' },
      BookgDt: { Dt: '2024-05-02' },
      ValDt: { Dt: '2024-05-02' },
      BkTxCd: { Domn: { Cd: 'PMNT', Fmly: { Cd: 'RCDT', SubFmlyCd: 'ESCT' } } },
    });
  });

  it('carries SANDBOX PAYOUT <reference> as the unstructured remittance text', () => {
    const entries = onlyStatement(camt053Statement(statementInput())).Ntry ?? [];
    expect(entries.map((entry) => entry.NtryDtls[0]?.TxDtls[0]?.RmtInf.Ustrd))
      .toEqual([['SANDBOX PAYOUT batch-7-EUR'], ['SANDBOX PAYOUT batch-8-EUR']]);
  });

  it('escapes XML characters in a reference', () => {
    const credits = [{ reference: 'a&b<c>', amountMinor: 1n, currency: 'EUR', bookingDate: '2024-05-02' }];
    const entry = (onlyStatement(camt053Statement(statementInput({ credits }))).Ntry ?? [])[0];
    expect(entry?.NtryDtls[0]?.TxDtls[0]?.RmtInf.Ustrd).toEqual(['SANDBOX PAYOUT a&b<c>']);
  });

  it('writes no entry when there is no credit, and closes at the opening balance', () => {
    const statement = onlyStatement(camt053Statement(statementInput({ credits: [] })));
    expect(statement.Ntry).toBeUndefined();
    expect(balanceOf(statement, 'CLBD').Amt['#text']).toBe('100.00');
  });

  it.each([
    ['JPY', 1000n, '1000'],
    ['USD', 1000n, '10.00'],
    ['KWD', 1000n, '1.000'],
  ])('formats %s amounts with the currency exponent', (currency, amountMinor, text) => {
    const credits = [{ reference: 'batch-1', amountMinor, currency, bookingDate: '2024-05-02' }];
    const statement = onlyStatement(camt053Statement(statementInput({ currency, openingBalanceMinor: 0n, credits })));
    expect(statement.Ntry?.[0]?.Amt).toEqual({ '#text': text, '@_Ccy': currency });
    expect(balanceOf(statement, 'CLBD').Amt).toEqual({ '#text': text, '@_Ccy': currency });
  });

  it('makes closing = opening + credits (property)', () => {
    fc.assert(fc.property(
      fc.constantFrom('JPY', 'USD', 'EUR', 'KWD'),
      fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
      fc.array(fc.bigInt({ min: 1n, max: 10n ** 10n }), { maxLength: 8 }),
      (currency, openingBalanceMinor, amounts) => {
        const credits = amounts.map((amountMinor, i) => ({
          reference: `batch-${i}`, amountMinor, currency, bookingDate: '2024-05-02',
        }));
        const statement = onlyStatement(camt053Statement(statementInput({ currency, openingBalanceMinor, credits })));
        const opening = balanceOf(statement, 'OPBD');
        const closing = balanceOf(statement, 'CLBD');
        const entriesMinor = (statement.Ntry ?? []).reduce((sum, e) => sum + signedMinor(e.Amt, e.CdtDbtInd), 0n);
        expect(signedMinor(opening.Amt, opening.CdtDbtInd)).toBe(openingBalanceMinor);
        expect(signedMinor(closing.Amt, closing.CdtDbtInd))
          .toBe(signedMinor(opening.Amt, opening.CdtDbtInd) + entriesMinor);
        expect(entriesMinor).toBe(amounts.reduce((sum, amount) => sum + amount, 0n));
      },
    ));
  });

  it('refuses a credit in another currency than the account', () => {
    const credits = [{ reference: 'batch-1', amountMinor: 1n, currency: 'USD', bookingDate: '2024-05-02' }];
    expect(() => camt053Statement(statementInput({ credits }))).toThrow(/account currency/);
  });

  it('refuses an entry that moves nothing', () => {
    const credits = [{ reference: 'batch-1', amountMinor: 0n, currency: 'EUR', bookingDate: '2024-05-02' }];
    expect(() => camt053Statement(statementInput({ credits }))).toThrow(/moves money/);
  });

  it('books a negative amount, a PSP\'s direct debit, as a DBIT entry the closing balance subtracts', () => {
    const credits = [{ reference: 'batch-1', amountMinor: -4059n, currency: 'EUR', bookingDate: '2024-05-02' }];
    const xml = camt053Statement(statementInput({ credits, openingBalanceMinor: 10_000n }));
    expect(xml).toContain('<CdtDbtInd>DBIT</CdtDbtInd>');
    expect(xml).toContain('<Cd>IDDT</Cd>');
    expect(xml).toContain('59.41');
  });
});
