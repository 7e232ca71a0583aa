import { describe, expect, it } from 'vitest';
import { amountMaxSafeMinor } from '../../src/config.js';
import {
  fingerprint, parseCreateAccount, parseCreateEntry, parseCreateEntryBatch,
} from '../../src/ledger/ledger-validation.js';
import { refusal } from '../support/refusal.js';

const rules = { amountMaxMinor: amountMaxSafeMinor };
const cash = 'lacc_cash00000001';
const owed = 'lacc_owed00000001';

function transfer(externalReference: string, amount = 500): Record<string, unknown> {
  return {
    external_reference: externalReference,
    postings: [
      { account: cash, direction: 'debit', amount },
      { account: owed, direction: 'credit', amount },
    ],
  };
}

function inOneHour(): string {
  return new Date(Date.now() + 3_600_000).toISOString();
}

describe('parseCreateEntry', () => {
  it('parses a balanced transfer into a command with bigint amounts and defaults', () => {
    const command = parseCreateEntry(transfer('t-1'), rules);
    expect(command).toMatchObject({
      externalReference: 't-1',
      description: undefined,
      metadata: {},
      effectiveAt: undefined,
      pending: false,
      expiresAt: undefined,
    });
    expect(command.postings).toEqual([
      { account: cash, direction: 'debit', amountMinor: 500n, currency: undefined, mustNotOverdraw: false },
      { account: owed, direction: 'credit', amountMinor: 500n, currency: undefined, mustNotOverdraw: false },
    ]);
    expect(command.requestFingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a body without external_reference as parameter_missing', () => {
    const body = transfer('x');
    delete body.external_reference;
    expect(refusal(() => parseCreateEntry(body, rules))).toMatchObject({
      code: 'parameter_missing', param: 'external_reference',
    });
  });

  it('refuses an empty external_reference as parameter_missing', () => {
    expect(refusal(() => parseCreateEntry(transfer(''), rules))).toMatchObject({
      code: 'parameter_missing', param: 'external_reference',
    });
  });

  it('refuses a body without postings as parameter_missing', () => {
    expect(refusal(() => parseCreateEntry({ external_reference: 'p-1' }, rules))).toMatchObject({
      code: 'parameter_missing', param: 'postings',
    });
  });

  it('refuses postings that are not an array', () => {
    expect(refusal(() => parseCreateEntry({ external_reference: 'p-1', postings: {} }, rules)).param)
      .toBe('postings');
  });

  it('refuses a single posting as unbalanced_entry', () => {
    const body = { external_reference: 'one', postings: [{ account: cash, direction: 'debit', amount: 5 }] };
    expect(refusal(() => parseCreateEntry(body, rules))).toMatchObject({ code: 'unbalanced_entry', param: 'postings' });
  });

  it('refuses no postings at all as unbalanced_entry', () => {
    expect(refusal(() => parseCreateEntry({ external_reference: 'none', postings: [] }, rules)).code)
      .toBe('unbalanced_entry');
  });

  it('refuses more than 100 postings', () => {
    const postings = Array.from({ length: 101 }, (_, index) =>
      ({ account: cash, direction: index % 2 === 0 ? 'debit' : 'credit', amount: 1 }));
    expect(refusal(() => parseCreateEntry({ external_reference: 'many', postings }, rules)).param).toBe('postings');
  });

  it('refuses, before any database, postings that all name currencies and do not balance', () => {
    const body = {
      external_reference: 'unbalanced',
      postings: [
        { account: cash, direction: 'debit', amount: 500, currency: 'USD' },
        { account: owed, direction: 'credit', amount: 499, currency: 'USD' },
      ],
    };
    const error = refusal(() => parseCreateEntry(body, rules));
    expect(error).toMatchObject({ code: 'unbalanced_entry', param: 'postings' });
    expect(error.message).toContain('USD');
  });

  it('refuses postings balanced in one currency but not in another', () => {
    const body = {
      external_reference: 'two-currencies',
      postings: [
        { account: cash, direction: 'debit', amount: 500, currency: 'usd' },
        { account: owed, direction: 'credit', amount: 500, currency: 'USD' },
        { account: 'lacc_eurcash0001', direction: 'debit', amount: 300, currency: 'EUR' },
        { account: 'lacc_eurowed0001', direction: 'credit', amount: 200, currency: 'EUR' },
      ],
    };
    const error = refusal(() => parseCreateEntry(body, rules));
    expect(error.code).toBe('unbalanced_entry');
    expect(error.message).toContain('EUR');
  });

  it('accepts postings balanced per currency, normalising currency codes', () => {
    const body = {
      external_reference: 'balanced',
      postings: [
        { account: cash, direction: 'debit', amount: 500, currency: 'usd' },
        { account: owed, direction: 'credit', amount: 500, currency: 'USD' },
      ],
    };
    expect(parseCreateEntry(body, rules).postings.map((posting) => posting.currency)).toEqual(['USD', 'USD']);
  });

  it('leaves unbalanced postings to the database when one of them omits its currency', () => {
    const body = {
      external_reference: 'partly-known',
      postings: [
        { account: cash, direction: 'debit', amount: 500, currency: 'USD' },
        { account: owed, direction: 'credit', amount: 499 },
      ],
    };
    expect(parseCreateEntry(body, rules).postings).toHaveLength(2);
  });

  it('refuses an unknown key in a posting, naming postings[0][foo]', () => {
    const body = transfer('unknown-key');
    (body.postings as Record<string, unknown>[])[0] = { account: cash, direction: 'debit', amount: 500, foo: 1 };
    expect(refusal(() => parseCreateEntry(body, rules))).toMatchObject({
      code: 'parameter_unknown', param: 'postings[0][foo]',
    });
  });

  it('refuses an unknown top-level key', () => {
    expect(refusal(() => parseCreateEntry({ ...transfer('unknown-top'), amount: 5 }, rules))).toMatchObject({
      code: 'parameter_unknown', param: 'amount',
    });
  });

  it('refuses a posting amount that is a string, naming postings[1][amount]', () => {
    const body = transfer('string-amount');
    (body.postings as Record<string, unknown>[])[1] = { account: owed, direction: 'credit', amount: '500' };
    expect(refusal(() => parseCreateEntry(body, rules))).toMatchObject({
      code: 'parameter_invalid_integer', param: 'postings[1][amount]',
    });
  });

  it('refuses a posting amount above the configured maximum', () => {
    expect(refusal(() => parseCreateEntry(transfer('big', 1001), { amountMaxMinor: 1000n }))).toMatchObject({
      code: 'amount_too_large', param: 'postings[0][amount]',
    });
  });

  it('refuses a posting without a direction as parameter_missing', () => {
    const body = transfer('no-direction');
    (body.postings as Record<string, unknown>[])[0] = { account: cash, amount: 500 };
    expect(refusal(() => parseCreateEntry(body, rules))).toMatchObject({
      code: 'parameter_missing', param: 'postings[0][direction]',
    });
  });

  it('refuses expires_at on an entry that is not pending', () => {
    expect(refusal(() => parseCreateEntry({ ...transfer('not-pending'), expires_at: inOneHour() }, rules)))
      .toMatchObject({ code: 'parameter_invalid', param: 'expires_at' });
  });

  it('refuses expires_at in the past on a pending entry', () => {
    const body = { ...transfer('expired'), pending: true, expires_at: '2020-01-01T00:00:00Z' };
    expect(refusal(() => parseCreateEntry(body, rules))).toMatchObject({
      code: 'parameter_invalid', param: 'expires_at',
    });
  });

  it('accepts a pending entry that expires in the future', () => {
    const expiresAt = inOneHour();
    const command = parseCreateEntry({ ...transfer('hold'), pending: true, expires_at: expiresAt }, rules);
    expect(command).toMatchObject({ pending: true, expiresAt });
  });

  it('gives the same fingerprint whatever the order of keys, at every depth', () => {
    const ordered = {
      external_reference: 'fp-1',
      description: 'rent',
      metadata: { a: '1', b: '2' },
      postings: [
        { account: cash, direction: 'debit', amount: 500, currency: 'USD' },
        { account: owed, direction: 'credit', amount: 500, currency: 'USD' },
      ],
    };
    const shuffled = {
      postings: [
        { currency: 'USD', amount: 500, direction: 'debit', account: cash },
        { direction: 'credit', currency: 'USD', account: owed, amount: 500 },
      ],
      metadata: { b: '2', a: '1' },
      description: 'rent',
      external_reference: 'fp-1',
    };
    expect(parseCreateEntry(shuffled, rules).requestFingerprint)
      .toBe(parseCreateEntry(ordered, rules).requestFingerprint);
  });

  it('gives a different fingerprint when an amount differs', () => {
    expect(parseCreateEntry(transfer('fp-2', 501), rules).requestFingerprint)
      .not.toBe(parseCreateEntry(transfer('fp-2', 500), rules).requestFingerprint);
  });

  it('gives a different fingerprint when the description differs', () => {
    expect(parseCreateEntry({ ...transfer('fp-3'), description: 'a' }, rules).requestFingerprint)
      .not.toBe(parseCreateEntry({ ...transfer('fp-3'), description: 'b' }, rules).requestFingerprint);
  });

  it('gives a different fingerprint when the postings are in a different order', () => {
    const body = transfer('fp-4');
    const swapped = { ...body, postings: [...(body.postings as unknown[])].reverse() };
    expect(parseCreateEntry(swapped, rules).requestFingerprint)
      .not.toBe(parseCreateEntry(body, rules).requestFingerprint);
  });

  it('fingerprints as SHA-256 of the RFC 8785 canonical JSON', () => {
    // printf '%s' '{"a":1,"b":[true,"x"]}' | sha256sum
    expect(fingerprint({ b: [true, 'x'], a: 1 }))
      .toBe('63e8063d9dc6f0fd5a24b4706818a165fd57c3531b74466cf5dea62bff09b0b6');
  });
});

describe('parseCreateEntryBatch', () => {
  it('parses each entry, naming nothing when all are valid', () => {
    const commands = parseCreateEntryBatch({ entries: [transfer('b-1'), transfer('b-2')] }, rules);
    expect(commands.map((command) => command.externalReference)).toEqual(['b-1', 'b-2']);
  });

  it('refuses a missing entries array as parameter_missing', () => {
    expect(refusal(() => parseCreateEntryBatch({}, rules))).toMatchObject({
      code: 'parameter_missing', param: 'entries',
    });
  });

  it('refuses an empty batch', () => {
    expect(refusal(() => parseCreateEntryBatch({ entries: [] }, rules))).toMatchObject({
      code: 'parameter_invalid', param: 'entries',
    });
  });

  it('refuses entries that are not an array', () => {
    expect(refusal(() => parseCreateEntryBatch({ entries: transfer('x') }, rules)).param).toBe('entries');
  });

  it('accepts 1000 entries', () => {
    const entries = Array.from({ length: 1000 }, (_, index) => transfer(`b-${index}`));
    expect(parseCreateEntryBatch({ entries }, rules)).toHaveLength(1000);
  });

  it('refuses 1001 entries', () => {
    const entries = Array.from({ length: 1001 }, (_, index) => transfer(`b-${index}`));
    expect(refusal(() => parseCreateEntryBatch({ entries }, rules))).toMatchObject({
      code: 'parameter_invalid', param: 'entries',
    });
  });

  it('refuses a repeated external_reference inside a batch, naming the later entry', () => {
    const error = refusal(() => parseCreateEntryBatch({ entries: [transfer('same'), transfer('same', 700)] }, rules));
    expect(error).toMatchObject({
      code: 'duplicate_external_reference', param: 'entries[1][external_reference]',
    });
  });

  it('names the index of the repeat when the duplicate is not adjacent', () => {
    const entries = [transfer('a'), transfer('b'), transfer('a')];
    expect(refusal(() => parseCreateEntryBatch({ entries }, rules)).param).toBe('entries[2][external_reference]');
  });

  it('names errors inside an entry with the entry index', () => {
    const second = transfer('b-2');
    (second.postings as Record<string, unknown>[])[0] = { account: cash, direction: 'debit', amount: 1.5 };
    expect(refusal(() => parseCreateEntryBatch({ entries: [transfer('b-1'), second] }, rules))).toMatchObject({
      code: 'parameter_invalid_integer', param: 'entries[1][postings][0][amount]',
    });
  });

  it('refuses an unknown key inside an entry, naming entries[0][foo]', () => {
    expect(refusal(() => parseCreateEntryBatch({ entries: [{ ...transfer('u'), foo: 1 }] }, rules)))
      .toMatchObject({ code: 'parameter_unknown', param: 'entries[0][foo]' });
  });
});

describe('parseCreateAccount', () => {
  it('parses currency and type, normalising the currency', () => {
    expect(parseCreateAccount({ currency: 'usd', type: 'asset' })).toEqual({
      currency: 'USD', type: 'asset', code: undefined, owner: undefined, metadata: {}, limit: undefined,
    });
  });

  it('keeps code, owner, metadata and limit', () => {
    expect(parseCreateAccount({
      currency: 'EUR', type: 'liability', code: '2100', owner: 'cus_1', metadata: { k: 'v' },
      limit: 'debits_must_not_exceed_credits',
    })).toEqual({
      currency: 'EUR', type: 'liability', code: '2100', owner: 'cus_1', metadata: { k: 'v' },
      limit: 'debits_must_not_exceed_credits',
    });
  });

  it('refuses an account without currency as parameter_missing', () => {
    expect(refusal(() => parseCreateAccount({ type: 'asset' }))).toMatchObject({
      code: 'parameter_missing', param: 'currency',
    });
  });

  it('refuses an account without type as parameter_missing', () => {
    expect(refusal(() => parseCreateAccount({ currency: 'USD' }))).toMatchObject({
      code: 'parameter_missing', param: 'type',
    });
  });

  it('refuses an unknown account type', () => {
    expect(refusal(() => parseCreateAccount({ currency: 'USD', type: 'cash' }))).toMatchObject({
      code: 'parameter_invalid', param: 'type',
    });
  });

  it('refuses an unsupported currency', () => {
    expect(refusal(() => parseCreateAccount({ currency: 'XAU', type: 'asset' }))).toMatchObject({
      code: 'currency_invalid', param: 'currency',
    });
  });

  it('refuses an unknown limit', () => {
    expect(refusal(() => parseCreateAccount({ currency: 'USD', type: 'asset', limit: 'never_negative' })))
      .toMatchObject({ code: 'parameter_invalid', param: 'limit' });
  });

  it('refuses an unknown key', () => {
    expect(refusal(() => parseCreateAccount({ currency: 'USD', type: 'asset', balance: 5 }))).toMatchObject({
      code: 'parameter_unknown', param: 'balance',
    });
  });
});
