import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction, type Queryable } from '../db/pool.js';
import { recordEvent } from '../events/event-store.js';
import { newId } from '../ids.js';
import { raiseAlert } from '../metrics/metrics.js';
import * as breakStore from './recon-break-store.js';
import type { BreakRow } from './recon-break-store.js';
import { proposeRepair } from './recon-breaks.js';
import { namesCutShort, namesWhole, normalized } from './recon-references.js';
import { presentBreak } from './recon-presenter.js';
import { lockImports } from './recon-store.js';
import * as store from './recon-match-store.js';
import type { BreakInsert, OpenBankEntryRow, OpenPayoutRow } from './recon-match-store.js';

/**
 * A reconciliation run as of a UTC day D (`penny recon run --date D`, `POST
 * /v1/reconciliation/runs`): every record not yet reconciled up to D (and every item), with windows
 * measured to D, in ordered passes with an amount tolerance of zero (issue 18, "Matching"):
 *
 * 1. **Exact references** (ledger↔PSP): a PSP line names the item Penny booked by Penny's
 *    reference (charge, attempt, refund, payout) or by the PSP reference Penny stored. A matched
 *    pair is compared currency → gross → fee, and the first difference is its break.
 * 2. **Payout grouping** by the PSP's batch key: a batch's payout equals the sum of its lines.
 * 3. **Bank entries** (PSP↔bank) by the payout reference in their remittance text, tolerating a
 *    text cut short (the last word a prefix of the reference) and one credit paying several payouts.
 * 4. **Fallback** on currency, exact amount and the window, only when unique on both sides;
 *    otherwise `ambiguous_match`.
 *
 * What is still inside its window (through the 3rd business day after its date) is pending, not
 * a break. Each difference is a break once: its fingerprint names what it is about, so running
 * again adds nothing, and a break resolved or ignored never reopens. A run is one transaction,
 * under the imports' lock, so it sees whole files and two runs never interleave.
 */

/** Business days an item, a payout or a bank entry may take before it is a break (decisions.md, "Time"). */
export const windowBusinessDays = 3;

/**
 * The most payouts and bank entries one run pairs in memory (the PSP↔bank leg), oldest first; the
 * rest wait for the next run, and while either list is full nothing is called missing or unexpected.
 */
export const bankLegRowsMax = 50_000;

/** The most input files a run lists. */
const inputFilesMax = 10_000;

/**
 * The most `reconciliation.break_opened` events and break log lines one run writes: a systematic
 * difference over a million lines is one alert with counts, not a million messages.
 */
export const breakAnnouncementsMax = 1000;

/**
 * The item a PSP line's type stands for: Adyen's journal types and Stripe's reporting
 * categories. `batch`: a line of the PSP's own (its fees, a balance carried between batches);
 * `payout_record`: the PSP paying a batch out (matched to the bank). Any other type is one Penny
 * does not book, and a `missing_in_ledger` break.
 */
export const lineKinds: Readonly<Record<string, string>> = {
  Settled: 'capture',
  Refunded: 'refund',
  Chargeback: 'chargeback',
  SecondChargeback: 'chargeback',
  ChargebackReversed: 'chargeback_reversed',
  PaidOut: 'payout',
  Fee: 'batch',
  Balancetransfer: 'batch',
  MerchantPayout: 'payout_record',
  charge: 'capture',
  payment: 'capture',
  refund: 'refund',
  dispute: 'chargeback',
  dispute_reversal: 'chargeback_reversed',
  fee: 'batch',
  payout: 'payout_record',
};

const payoutRecordTypes = Object.keys(lineKinds).filter((type) => lineKinds[type] === 'payout_record');

export interface RunResult {
  readonly id: string;
  readonly asOf: string;
  readonly counts: RunCounts;
  readonly inputFileIds: readonly string[];
}

export interface RunCounts {
  readonly items_collected: number;
  readonly lines_considered: number;
  readonly matched: { readonly ledger_psp: number; readonly psp_bank: number; readonly batch_lines: number };
  readonly duplicates: number;
  readonly pending: { readonly ledger_psp: number; readonly psp_bank: number };
  readonly breaks_opened: Readonly<Record<string, number>>;
  readonly breaks_resolved_by_match: number;
}

export class ReconciliationRuns {
  constructor(private readonly pool: pg.Pool, private readonly options: { logger?: Logger } = {}) {}

  /** Runs as of `asOf`, then alerts: a log line per break opened and an `ALERT` line with the counts. */
  async run(request: { asOf: string; scheduledFor?: string }): Promise<RunResult> {
    const { result, opened } = await this.match(request);
    const logger = this.options.logger;
    if (logger !== undefined && opened.length > 0) {
      for (const row of opened) {
        logger.warn({ run: result.id, break: row.id, type: row.type, leg: row.leg, currency: row.currency,
          difference_minor: row.differenceMinor.toString() }, `reconciliation break opened: ${row.detail}`);
      }
      raiseAlert(logger, 'reconciliation_breaks_opened', { run: result.id, as_of: result.asOf,
        breaks_opened: result.counts.breaks_opened }, `reconciliation run ${result.id} opened breaks`);
    }
    return result;
  }

  /** The run, in one transaction; with the breaks it opened (the first `breakAnnouncementsMax`). */
  private async match(request: { asOf: string; scheduledFor?: string }):
  Promise<{ result: RunResult; opened: BreakRow[] }> {
    const id = newId('rrun');
    return withTransaction(this.pool, async (client) => {
      await lockImports(client);
      await store.setRunMemory(client);
      await store.insertRun(client, { id, asOf: request.asOf, scheduledFor: request.scheduledFor });
      const itemsCollected = await store.collectItems(client, { asOf: request.asOf, windowDays: windowBusinessDays });
      const openFileIds = await store.selectOpenFileIds(client);
      const lines = await store.createOpenLines(client, { asOf: request.asOf, types: Object.keys(lineKinds),
        kinds: Object.values(lineKinds), openFileIds });
      await store.createReferencePairs(client, { openLines: lines });
      const reference = await store.insertReferenceMatches(client, id);
      await store.insertPairBreaks(client, id);
      const batchLines = await store.insertBatchLineMatches(client, id);
      await store.insertMissingInLedger(client, id);
      await store.insertPayoutTotalBreaks(client, { runId: id, payoutTypes: payoutRecordTypes });
      const bank = await this.matchBankLeg(client, { runId: id, asOf: request.asOf, openFileIds });
      const pendingItems = await store.insertMissingInPspReport(client, { runId: id, asOf: request.asOf });
      await store.insertStatementBreaks(client, { runId: id, asOf: request.asOf });
      await store.insertConflictBreaks(client, { runId: id, asOf: request.asOf });
      const resolved = await store.resolveMatchedBreaks(client, id);
      // Last, once every pass has matched what it could: later runs skip the files left with nothing open.
      await store.closeDealtWithFiles(client, { runId: id, openFileIds });
      const openedByType = Object.fromEntries((await store.selectBreakCountsOfRun(client, id))
        .map((row) => [row.type, row.count]));
      const counts: RunCounts = {
        items_collected: itemsCollected, lines_considered: lines,
        matched: { ledger_psp: reference.matched, psp_bank: bank.matched, batch_lines: batchLines },
        duplicates: reference.duplicates,
        pending: { ledger_psp: pendingItems, psp_bank: bank.pending },
        breaks_opened: openedByType, breaks_resolved_by_match: resolved,
      };
      const inputFileIds = [...new Set([...await store.selectInputFiles(client, inputFilesMax), ...bank.fileIds])]
        .sort().slice(0, inputFilesMax);
      await store.finishRun(client, { id, inputFileIds, counts: counts as unknown as Record<string, unknown> });
      const opened = await breakStore.selectBreaks(client, { runId: id, limit: breakAnnouncementsMax });
      await announceToMerchants(client, opened);
      return { result: { id, asOf: request.asOf, counts, inputFileIds }, opened };
    });
  }

  /** Passes 3 and 4, and what is left: payouts missing in the bank, bank entries no payout explains. */
  private async matchBankLeg(db: Queryable, run: { runId: string; asOf: string; openFileIds: readonly string[] }):
  Promise<{ matched: number; pending: number; fileIds: string[] }> {
    const payouts = await store.selectOpenPayouts(db, { windowDays: windowBusinessDays, limit: bankLegRowsMax });
    const entries = await store.selectOpenBankEntries(db, { asOf: run.asOf, windowDays: windowBusinessDays,
      limit: bankLegRowsMax, openFileIds: run.openFileIds });
    const plan = planBankLeg(payouts, entries);
    // A list cut at its bound may hold the counterpart of what is left of the other: wait, never guess.
    const complete = payouts.length < bankLegRowsMax && entries.length < bankLegRowsMax;
    for (const match of plan.matches) {
      await store.insertBankMatches(db, { runId: run.runId, pass: match.pass, bankRecordId: match.entry.recordId,
        payoutRecordIds: match.payouts.map((payout) => payout.recordId) });
    }
    const breaks: BreakInsert[] = plan.breaks.map((draft) => ({ ...draft, runId: run.runId }));
    let pending = plan.payoutsInReview.filter((payout) => run.asOf <= payout.deadline).length;
    for (const payout of plan.unmatchedPayouts) {
      if (run.asOf <= payout.deadline || !complete) {
        pending += 1;
        continue;
      }
      breaks.push({ runId: run.runId, type: 'missing_in_bank', leg: 'psp_bank',
        fingerprint: `missing_in_bank|record:${payout.recordId}`, externalRef: payout.reference, internalRef: null,
        currency: payout.currency, expectedMinor: payout.amountMinor, actualMinor: 0n, recordId: payout.recordId,
        itemId: null, detail: `the PSP's payout ${payout.reference} of ${payout.day} reached no bank statement by `
          + `${payout.deadline}` });
    }
    for (const entry of plan.unmatchedEntries) {
      if (run.asOf <= entry.deadline || !complete) {
        pending += 1;
        continue;
      }
      breaks.push({ runId: run.runId, type: 'unexpected_bank_entry', leg: 'psp_bank',
        fingerprint: `unexpected_bank_entry|record:${entry.recordId}`, externalRef: entry.externalId, internalRef: null,
        currency: entry.currency, expectedMinor: 0n, actualMinor: entry.amountMinor, recordId: entry.recordId,
        itemId: null, detail: `bank entry ${entry.externalId} of ${entry.day} (${entry.amountMinor} ${entry.currency}`
          + `${entry.text === '' ? '' : `, "${entry.text.slice(0, 140)}"`}) pays no PSP payout` });
    }
    await store.insertBreaks(db, breaks);
    return { matched: plan.matches.length, pending, fileIds: [...new Set(entries.map((entry) => entry.fileId))] };
  }
}

/**
 * `reconciliation.break_opened` to the merchant whose money a break concerns, written with the
 * run (the events outbox), so its webhook endpoints hear of it; the operator's own breaks (bank,
 * batch, statement) have no merchant and are alerted by the log and `GET /metrics`.
 */
async function announceToMerchants(db: Queryable, breaks: readonly BreakRow[]): Promise<void> {
  for (const row of breaks) {
    if (row.merchantId === null) continue;
    await recordEvent(db, { merchantId: row.merchantId, account: row.ownerId ?? undefined,
      type: 'reconciliation.break_opened', object: presentBreak(row, proposeRepair(row)) });
  }
}

export interface BankMatch {
  readonly pass: 'remittance' | 'fallback';
  readonly entry: OpenBankEntryRow;
  readonly payouts: readonly OpenPayoutRow[];
}

export interface BankLegPlan {
  readonly matches: readonly BankMatch[];
  readonly breaks: readonly Omit<BreakInsert, 'runId'>[];
  readonly unmatchedPayouts: readonly OpenPayoutRow[];
  /** Payouts an `ambiguous_match` entry may pay: pending inside their window, then the ambiguity's, never missing. */
  readonly payoutsInReview: readonly OpenPayoutRow[];
  readonly unmatchedEntries: readonly OpenBankEntryRow[];
}

/**
 * Pairs bank entries with the PSP's payouts (passes 3 and 4), pure so it can be tested alone.
 * Entries are taken oldest first; a payout pairs with one entry at most.
 */
export function planBankLeg(payouts: readonly OpenPayoutRow[], entries: readonly OpenBankEntryRow[]): BankLegPlan {
  const open = new Set(payouts);
  // Payouts an ambiguous entry may pay wait for the person who chooses: not missing meanwhile.
  const inReview = new Set<OpenPayoutRow>();
  const matches: BankMatch[] = [];
  const breaks: Omit<BreakInsert, 'runId'>[] = [];
  const leftEntries: OpenBankEntryRow[] = [];
  for (const entry of entries) {
    const outcome = byRemittance(entry, [...open].filter((payout) => payout.currency === entry.currency));
    if (outcome === undefined) {
      leftEntries.push(entry);
      continue;
    }
    if ('payouts' in outcome) {
      matches.push({ pass: 'remittance', entry, payouts: outcome.payouts });
      for (const payout of outcome.payouts) open.delete(payout);
      if (outcome.expectedMinor !== entry.amountMinor) {
        breaks.push({ type: 'amount_mismatch', leg: 'psp_bank', fingerprint: `amount_mismatch|record:${entry.recordId}`,
          externalRef: entry.externalId, internalRef: outcome.payouts.map((payout) => payout.reference).join(' '),
          currency: entry.currency, expectedMinor: outcome.expectedMinor, actualMinor: entry.amountMinor,
          recordId: entry.recordId, itemId: null, detail: `bank entry ${entry.externalId} pays ${entry.amountMinor} for `
            + `${outcome.payouts.map((payout) => payout.reference).join(', ')}, which the PSP paid as ${outcome.expectedMinor}` });
      }
      continue;
    }
    breaks.push(ambiguity(entry, outcome.candidates));
    for (const payout of outcome.candidates) inReview.add(payout);
  }
  const unmatchedEntries: OpenBankEntryRow[] = [];
  for (const entry of leftEntries) {
    const candidates = [...open].filter((payout) => fitsFallback(payout, entry));
    const rivals = leftEntries.filter((other) => candidates.length === 1 && other !== entry
      && fitsFallback(candidates[0] as OpenPayoutRow, other));
    if (candidates.length === 1 && rivals.length === 0) {
      const payout = candidates[0] as OpenPayoutRow;
      matches.push({ pass: 'fallback', entry, payouts: [payout] });
      open.delete(payout);
      continue;
    }
    if (candidates.length > 1 || rivals.length > 0) {
      breaks.push(ambiguity(entry, candidates));
      for (const payout of candidates) inReview.add(payout);
    } else {
      unmatchedEntries.push(entry);
    }
  }
  const waiting = [...open];
  return { matches, breaks, unmatchedPayouts: waiting.filter((payout) => !inReview.has(payout)),
    payoutsInReview: waiting.filter((payout) => inReview.has(payout)), unmatchedEntries };
}

/**
 * Pass 3 for one entry: the payouts its text names in full (as whole tokens), and those whose reference begins
 * with the end of its text from some word on (a text cut short, as banks show only so many
 * characters: Adyen's `TX…XT Account, batch N` cut to 30 is "TX…XT Account, b"). Full names that
 * add up to the entry pay it; with one name cut short, the one candidate that completes the sum
 * does. Undefined when the text names no payout.
 */
function byRemittance(entry: OpenBankEntryRow, payouts: readonly OpenPayoutRow[]):
{ payouts: OpenPayoutRow[]; expectedMinor: bigint } | { candidates: OpenPayoutRow[] } | undefined {
  const text = normalized(entry.text);
  if (text === '') return undefined;
  const named = payouts.filter((payout) => namesWhole(text, normalized(payout.reference)));
  const cut = payouts.filter((payout) => !named.includes(payout) && namesCutShort(text, normalized(payout.reference)));
  const namedMinor = sumMinor(named);
  if (cut.length === 0) return named.length === 0 ? undefined : { payouts: named, expectedMinor: namedMinor };
  const completing = cut.filter((payout) => namedMinor + payout.amountMinor === entry.amountMinor);
  if (completing.length === 1) {
    const chosen = [...named, completing[0] as OpenPayoutRow];
    return { payouts: chosen, expectedMinor: entry.amountMinor };
  }
  if (named.length > 0 && namedMinor === entry.amountMinor) return { payouts: named, expectedMinor: namedMinor };
  if (named.length === 0 && cut.length === 1) {
    const only = cut[0] as OpenPayoutRow;
    return { payouts: [only], expectedMinor: only.amountMinor };
  }
  return { candidates: [...named, ...cut] };
}

/** Pass 4: the same currency and amount, the entry booked from the payout's day through its window. */
function fitsFallback(payout: OpenPayoutRow, entry: OpenBankEntryRow): boolean {
  return payout.currency === entry.currency && payout.amountMinor === entry.amountMinor
    && entry.day >= payout.day && entry.day <= payout.deadline;
}

function ambiguity(entry: OpenBankEntryRow, candidates: readonly OpenPayoutRow[]): Omit<BreakInsert, 'runId'> {
  return { type: 'ambiguous_match', leg: 'psp_bank', fingerprint: `ambiguous_match|record:${entry.recordId}`,
    externalRef: entry.externalId, internalRef: candidates.map((payout) => payout.reference).join(' ') || null,
    currency: entry.currency, expectedMinor: 0n, actualMinor: entry.amountMinor, recordId: entry.recordId, itemId: null,
    detail: `bank entry ${entry.externalId} (${entry.amountMinor} ${entry.currency}) fits `
      + `${candidates.length === 0 ? 'payouts another entry fits too' : candidates.map((payout) => payout.reference).join(', ')}`
      + ': a person must choose' };
}

function sumMinor(payouts: readonly OpenPayoutRow[]): bigint {
  return payouts.reduce((sum, payout) => sum + payout.amountMinor, 0n);
}
