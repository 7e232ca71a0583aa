import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { PennyError } from '../errors.js';
import { parseAmountMinor } from '../money/amount.js';
import {
  invalid, missing, paramName, readBoolean, readCurrency, readEnum, readMetadata, readObject,
  readString, readTimestamp,
} from '../validation.js';
import {
  accountTypes, balanceLimits, directions, type CreateAccountCommand, type CreateEntryCommand,
  type PostingInput,
} from './ledger-types.js';

/** Pure parsing of ledger requests into commands; every refusal names its parameter. */
export interface LedgerValidationRules {
  readonly amountMaxMinor: bigint;
}

export function parseCreateAccount(body: unknown): CreateAccountCommand {
  const object = readObject(body, '', ['currency', 'type', 'code', 'owner', 'metadata', 'limit']);
  const currency = readCurrency(object.currency, 'currency');
  if (currency === undefined) throw missing('currency');
  const type = readEnum(object.type, 'type', accountTypes);
  if (type === undefined) throw missing('type');
  return {
    currency,
    type,
    code: readNonEmptyString(object.code, 'code', limits.accountCodeLengthMax),
    owner: readNonEmptyString(object.owner, 'owner', 255),
    metadata: readMetadata(object.metadata, 'metadata') ?? {},
    limit: readEnum(object.limit, 'limit', balanceLimits),
  };
}

/** An optional text that, when given, has 1 to `lengthMax` characters (an account's code and owner). */
function readNonEmptyString(value: unknown, param: string, lengthMax: number): string | undefined {
  const text = readString(value, param, { lengthMax });
  if (text === '') throw invalid(param, `${param} must be 1 to ${lengthMax} characters.`, 'parameter_invalid_string');
  return text;
}

const entryKeys = ['external_reference', 'description', 'metadata', 'effective_at', 'pending',
  'expires_at', 'postings'] as const;

export function parseCreateEntry(body: unknown, rules: LedgerValidationRules, param = ''): CreateEntryCommand {
  const object = readObject(body, param, entryKeys);
  const at = (key: string) => paramName(param, key);
  const externalReference = readString(object.external_reference, at('external_reference'), {
    lengthMax: limits.externalReferenceLengthMax,
    required: true,
  });
  assertClientReference(externalReference, at('external_reference'));
  const pending = readBoolean(object.pending, at('pending')) ?? false;
  const expiresAt = readTimestamp(object.expires_at, at('expires_at'));
  if (expiresAt !== undefined && !pending) {
    throw invalid(at('expires_at'), 'expires_at is only for pending entries (holds).');
  }
  if (expiresAt !== undefined && Date.parse(expiresAt) <= nowMs()) {
    throw invalid(at('expires_at'), 'expires_at must be in the future.');
  }
  return {
    externalReference,
    requestFingerprint: fingerprint(object),
    description: readString(object.description, at('description'), { lengthMax: limits.descriptionLengthMax }),
    metadata: readMetadata(object.metadata, at('metadata')) ?? {},
    effectiveAt: readTimestamp(object.effective_at, at('effective_at')),
    pending,
    expiresAt,
    postings: parsePostings(object.postings, at('postings'), rules),
  };
}

export function parseCreateEntryBatch(body: unknown, rules: LedgerValidationRules): CreateEntryCommand[] {
  const object = readObject(body, '', ['entries']);
  if (object.entries === undefined) throw missing('entries');
  if (!Array.isArray(object.entries) || object.entries.length === 0) {
    throw invalid('entries', 'entries must be a non-empty array.');
  }
  if (object.entries.length > limits.ledgerBatchEntriesMax) {
    throw invalid('entries', `a batch holds at most ${limits.ledgerBatchEntriesMax} entries.`);
  }
  const commands = object.entries.map((entry, index) =>
    parseCreateEntry(entry, rules, paramName('entries', index)));
  const seen = new Set<string>();
  commands.forEach((command, index) => {
    if (seen.has(command.externalReference)) {
      throw invalid(paramName(paramName('entries', index), 'external_reference'),
        'each entry in a batch needs its own external_reference.', 'duplicate_external_reference');
    }
    seen.add(command.externalReference);
  });
  return commands;
}

function parsePostings(value: unknown, param: string, rules: LedgerValidationRules): PostingInput[] {
  if (value === undefined) throw missing(param);
  if (!Array.isArray(value)) throw invalid(param, `${param} must be an array.`);
  if (value.length < 2) {
    throw new PennyError({
      code: 'unbalanced_entry',
      param,
      message: 'An entry needs at least two postings (a debit and a credit).',
    });
  }
  if (value.length > limits.ledgerPostingsPerEntryMax) {
    throw invalid(param, `an entry holds at most ${limits.ledgerPostingsPerEntryMax} postings.`);
  }
  const postings = value.map((item, index) => parsePosting(item, paramName(param, index), rules));
  assertBalancedWhereKnown(postings, param);
  return postings;
}

function parsePosting(value: unknown, param: string, rules: LedgerValidationRules): PostingInput {
  const object = readObject(value, param, ['account', 'direction', 'amount', 'currency', 'must_not_overdraw']);
  const account = readString(object.account, paramName(param, 'account'), { lengthMax: 100, required: true });
  const direction = readEnum(object.direction, paramName(param, 'direction'), directions);
  if (direction === undefined) throw missing(paramName(param, 'direction'));
  if (object.amount === undefined) throw missing(paramName(param, 'amount'));
  return {
    account,
    direction,
    amountMinor: parseAmountMinor(object.amount, {
      param: paramName(param, 'amount'),
      amountMaxMinor: rules.amountMaxMinor,
    }),
    currency: readCurrency(object.currency, paramName(param, 'currency')),
    mustNotOverdraw: readBoolean(object.must_not_overdraw, paramName(param, 'must_not_overdraw')) ?? false,
  };
}

/**
 * When every posting names its currency, the balance can be checked before touching the
 * database; otherwise the database's commit-time check (which knows the accounts) decides.
 */
function assertBalancedWhereKnown(postings: readonly PostingInput[], param: string): void {
  if (postings.some((posting) => posting.currency === undefined)) return;
  const sums = new Map<string, bigint>();
  for (const posting of postings) {
    const signed = posting.direction === 'debit' ? posting.amountMinor : -posting.amountMinor;
    sums.set(posting.currency as string, (sums.get(posting.currency as string) ?? 0n) + signed);
  }
  for (const [currency, sum] of sums) {
    if (sum !== 0n) {
      throw new PennyError({
        code: 'unbalanced_entry',
        param,
        message: `Debits and credits in ${currency} differ by ${sum < 0n ? -sum : sum}.`,
      });
    }
  }
}

/** SHA-256 over the RFC 8785 canonical JSON of a request as sent. */
export function fingerprint(value: unknown): string {
  const canonical = (canonicalize as unknown as (input: unknown) => string | undefined)(value);
  return createHash('sha256').update(canonical ?? '').digest('hex');
}

export function parseHoldPost(body: unknown, rules: LedgerValidationRules): { amountMinor: bigint | undefined } {
  const object = readObject(body ?? {}, '', ['amount']);
  if (object.amount === undefined) return { amountMinor: undefined };
  return { amountMinor: parseAmountMinor(object.amount, { param: 'amount', amountMaxMinor: rules.amountMaxMinor }) };
}

/** `penny:` references name entries Penny writes itself (hold resolutions, default reversals). */
function assertClientReference(reference: string, param: string): void {
  if (reference.startsWith('penny:')) {
    throw invalid(param, 'external references starting with "penny:" are reserved for Penny\'s own entries.');
  }
}

export function parseReverse(
  body: unknown,
): { externalReference: string | undefined; description: string | undefined } {
  const object = readObject(body ?? {}, '', ['external_reference', 'description']);
  const externalReference = readString(object.external_reference, 'external_reference', {
    lengthMax: limits.externalReferenceLengthMax,
  });
  if (externalReference !== undefined) assertClientReference(externalReference, 'external_reference');
  return {
    externalReference,
    description: readString(object.description, 'description', { lengthMax: limits.descriptionLengthMax }),
  };
}
