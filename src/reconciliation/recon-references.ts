/**
 * How a bank entry's remittance text names a PSP payout's reference: the bank leg's pass 3
 * (recon-run.ts) and the repairs' check that a bank entry is not a payout the ledger booked
 * (recon-breaks.ts).
 */

/**
 * Whether `text` holds `reference` as a whole token: where the reference begins (ends) with a letter
 * or digit, bounded there by the text's start (end) or a character that is not one, so that
 * `…, batch 12` names batch 12, never batch 1.
 */
export function namesWhole(text: string, reference: string): boolean {
  if (reference === '') return false;
  const alphanumeric = /^[\p{L}\p{N}]$/u;
  const boundedBefore = !alphanumeric.test(reference.charAt(0));
  const boundedAfter = !alphanumeric.test(reference.charAt(reference.length - 1));
  for (let at = text.indexOf(reference); at !== -1; at = text.indexOf(reference, at + 1)) {
    const before = at === 0 ? '' : text.charAt(at - 1);
    const after = text.charAt(at + reference.length);
    if ((boundedBefore || !alphanumeric.test(before)) && (boundedAfter || !alphanumeric.test(after))) return true;
  }
  return false;
}

/** Shortest end of a remittance text taken as a reference cut short. */
const truncatedReferenceCharactersMin = 6;

/**
 * Whether `text` ends with `reference` cut short: from one of its words on, the text's end (at
 * least `truncatedReferenceCharactersMin` characters) begins the reference, as banks show only so
 * many characters (Adyen's `TX…XT Account, batch N` cut to 30 is "TX…XT Account, b"). Both normalized.
 */
export function namesCutShort(text: string, reference: string): boolean {
  const words = text.split(' ');
  // Where a cut-short reference may start: at any word, as a reference may hold spaces itself.
  for (let index = 0; index < words.length; index += 1) {
    const tail = words.slice(index).join(' ');
    if (tail.length >= truncatedReferenceCharactersMin && reference.startsWith(tail)) return true;
  }
  return false;
}

/** Upper case, each run of white space one space, trimmed. */
export function normalized(text: string): string {
  return text.toUpperCase().replace(/\s+/g, ' ').trim();
}
