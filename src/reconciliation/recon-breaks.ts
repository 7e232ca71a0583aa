import type pg from 'pg';
import type { BalanceAccounts } from '../balances/balance-accounts.js';
import { nowMs } from '../clock.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { limits } from '../config.js';
import { PennyError } from '../errors.js';
import { internalEntry } from '../ledger/ledger-commands.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { Entry } from '../ledger/ledger-types.js';
import * as store from './recon-break-store.js';
import type { BreakRow, BreakStatus } from './recon-break-store.js';
import * as matchStore from './recon-match-store.js';
import { namesCutShort, namesWhole, normalized } from './recon-references.js';

/**
 * Breaks after a run: read, repaired by an approved entry, or ignored with a reason (issue 18,
 * "Breaks"). For each break Penny proposes a balanced entry where the books must move
 * (docs/accounting.md, "Reconciliation repairs"): a fee true-up to PSP fees, a PSP amount or a
 * bank amount nobody booked to settlement suspense. A break whose cause is outside Penny's books
 * (a missing line, a statement that does not add up, an ambiguity) has no proposal: a later match
 * resolves it, or an operator ignores it with a reason.
 *
 * Applying a repair is idempotent: its entry's reference is the break's (`penny:recon_repair:<id>`),
 * the break is locked while it is applied, and approving it again answers the entry it made. The
 * break then shows `resolved` with `resolution: "repaired"` and the entry, and a run never opens it again.
 */

/** Whose account a proposed posting names: the break's merchant (or seller), or the operator. */
export type RepairRole = 'psp_receivable' | 'psp_fees' | 'operator_bank' | 'settlement_suspense';

export interface RepairPosting {
  readonly role: RepairRole;
  readonly direction: 'debit' | 'credit';
  readonly amountMinor: bigint;
}

export interface RepairProposal {
  readonly description: string;
  readonly currency: string;
  /** The merchant or seller whose accounts `psp_receivable` and `psp_fees` are; null when only the operator's move. */
  readonly ownerId: string | null;
  readonly postings: readonly RepairPosting[];
}

/** Two postings moving `amountMinor` (signed) from `credited` to `debited`; the other way when negative. */
function move(debited: RepairRole, credited: RepairRole, amountMinor: bigint): RepairPosting[] {
  const magnitude = amountMinor < 0n ? -amountMinor : amountMinor;
  const [debit, credit] = amountMinor < 0n ? [credited, debited] : [debited, credited];
  return [{ role: debit, direction: 'debit', amountMinor: magnitude }, { role: credit, direction: 'credit', amountMinor: magnitude }];
}

/** The entry a break asks for, or null when none fits (pure: it reads only the break). */
export function proposeRepair(row: BreakRow): RepairProposal | null {
  if (row.currency === null || row.status !== 'open') return null;
  const proposal = (description: string, ownerId: string | null, postings: RepairPosting[]): RepairProposal | null =>
    (postings.every((posting) => posting.amountMinor > 0n) ? { description, currency: row.currency as string, ownerId,
      postings } : null);
  const difference = row.differenceMinor;
  switch (row.type) {
    case 'fee_mismatch':
      // The PSP kept `difference` more than expected: its receivable keeps that much, which is a fee.
      return row.ownerId === null ? null : proposal(`PSP fee true-up for ${row.internalRef ?? row.id}`, row.ownerId,
        move('psp_fees', 'psp_receivable', difference));
    case 'amount_mismatch':
      if (row.leg === 'psp_bank') {
        return proposal(`bank amount of ${row.externalRef ?? row.id} differs from the PSP's payout`, null,
          move('operator_bank', 'settlement_suspense', difference));
      }
      // The PSP settled `difference` more than Penny booked: paid, but owed to nobody Penny knows.
      return row.ownerId === null ? null : proposal(`PSP settled a different amount for ${row.internalRef ?? row.id}`,
        row.ownerId, move('psp_receivable', 'settlement_suspense', difference));
    case 'duplicate_external':
      // The duplicated line's net was paid twice into the batch's payout.
      return row.ownerId === null || row.recordNetMinor === null ? null
        : proposal(`PSP line duplicated for ${row.internalRef ?? row.id}`, row.ownerId,
          move('psp_receivable', 'settlement_suspense', row.recordNetMinor));
    case 'missing_in_bank':
      // Booked in the operator's bank by the settlement pull, never received: a claim on the PSP
      // (approved only once the pull has booked it, `refuseUnbookedPayout`).
      return proposal(`PSP payout ${row.externalRef ?? row.id} never reached the bank`, null,
        move('settlement_suspense', 'operator_bank', row.expectedMinor));
    case 'unexpected_bank_entry':
      // Money no payout explains (refused when it is a payout the pull booked, `refuseUnbookedPayout`).
      return proposal(`bank entry ${row.externalRef ?? row.id} no payout explains`, null,
        move('operator_bank', 'settlement_suspense', row.actualMinor));
    default:
      return null;
  }
}

export interface BreakPage {
  readonly breaks: readonly BreakRow[];
  readonly hasMore: boolean;
}

export class ReconciliationBreaks {
  constructor(private readonly pool: pg.Pool, private readonly dependencies: { ledger: LedgerService;
    accounts: BalanceAccounts }) {}

  async get(id: string): Promise<BreakRow> {
    const found = await store.selectBreak(this.pool, id);
    if (found === undefined) throw missingBreak(id);
    return found;
  }

  async list(query: { runId?: string; status?: BreakStatus; type?: string; limit: number; startingAfter?: string }):
  Promise<BreakPage> {
    const rows = await store.selectBreaks(this.pool, { ...query, limit: query.limit + 1 });
    return { breaks: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
  }

  /** Applies the proposed entry (once) and resolves the break with it. */
  async repair(id: string): Promise<{ break: BreakRow; entry: Entry }> {
    return withTransaction(this.pool, async (client) => {
      const row = await store.selectBreak(client, id, { lock: true });
      if (row === undefined) throw missingBreak(id);
      if (row.resolution === 'repaired' && row.repairEntryId !== null) {
        return { break: row, entry: await this.dependencies.ledger.getEntry(row.repairEntryId, client) };
      }
      if (row.status !== 'open') throw closedBreak(row);
      const proposal = proposeRepair(row);
      if (proposal === null) {
        throw new PennyError({ code: 'reconciliation_break_not_repairable', param: 'id',
          message: `Reconciliation break ${id} (${row.type}) has no repair entry: a later run resolves it when it matches, `
            + 'or ignore it with a reason.' });
      }
      await refuseUnbookedPayout(client, row);
      const legs = await this.legsOf(client, proposal);
      const created = await this.dependencies.ledger.createEntriesIn(client, [internalEntry({
        reference: `penny:recon_repair:${id}`, description: `Reconciliation repair of ${id}: ${proposal.description}`, legs,
      })]);
      const entry = created.entries[0];
      if (entry === undefined) throw new Error(`the repair entry of ${id} was not written`);
      await store.markRepaired(client, { id, entryId: entry.id });
      if ((row.type === 'missing_in_bank' || row.type === 'unexpected_bank_entry') && row.recordId !== null) {
        await store.insertRepairedRecord(client, { recordId: row.recordId, runId: row.runId });
      }
      const repaired = await store.selectBreak(client, id);
      if (repaired === undefined) throw new Error(`break ${id} vanished while it was repaired`);
      return { break: repaired, entry };
    });
  }

  /**
   * Ignores an open break with the operator's reason. The same request again (a retry after a
   * lost answer, a double click) answers the break as ignored; another reason, or a break closed
   * otherwise, is reconciliation_break_closed.
   */
  async ignore(id: string, reason: string): Promise<BreakRow> {
    return withTransaction(this.pool, async (client) => {
      const row = await store.selectBreak(client, id, { lock: true });
      if (row === undefined) throw missingBreak(id);
      if (row.status === 'ignored' && row.ignoredReason === reason) return row;
      if (row.status !== 'open') throw closedBreak(row);
      await store.markIgnored(client, { id, reason });
      const ignored = await store.selectBreak(client, id);
      if (ignored === undefined) throw new Error(`break ${id} vanished while it was ignored`);
      return ignored;
    });
  }

  async run(id: string): Promise<store.RunRow> {
    const found = await store.selectRun(this.pool, id);
    if (found === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such reconciliation run: '${id}'` });
    }
    return found;
  }

  async runs(query: { limit: number; startingAfter?: string }): Promise<{ runs: store.RunRow[]; hasMore: boolean }> {
    const rows = await store.selectRuns(this.pool, { ...query, limit: query.limit + 1 });
    return { runs: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
  }

  private async legsOf(client: Queryable, proposal: RepairProposal): Promise<[string, 'debit' | 'credit', bigint][]> {
    const operator = await this.dependencies.accounts.operatorAccountsFor(client, proposal.currency);
    const owner = proposal.ownerId === null ? undefined
      : await this.dependencies.accounts.accountsFor(client,
        { ownerId: proposal.ownerId, currency: proposal.currency });
    return proposal.postings.map((posting) => {
      const account = posting.role === 'operator_bank' || posting.role === 'settlement_suspense'
        ? operator[posting.role] : owner?.[posting.role];
      if (account === undefined) throw new Error(`a repair names ${posting.role} without its owner`);
      return [account, posting.direction, posting.amountMinor];
    });
  }
}

/** How far around a bank entry's day a PSP payout it may be was booked. */
const bookedPayoutWindowDays = 31;

/**
 * The bank-leg repairs move the operator's bank account, which only the settlement pull's PSP
 * payout entry (`penny:psp_payout:…`) debits: they are right only against what that entry did.
 * `missing_in_bank` takes the payout back out of the bank into a claim on the PSP: refused while
 * the payout is not booked (its report imported but not settled yet, held, or of an account Penny
 * does not settle), since the bank never held it; once the pull books it, the repair is right.
 * `unexpected_bank_entry` puts a credit into the bank against suspense: refused when its text
 * names a PSP payout the pull booked (the bank holds that money already) that reconciliation has
 * not seen paid by another bank entry (its report not imported, so nothing paired them): the
 * repair would count the payout twice. Importing the report pairs them in a later run.
 */
async function refuseUnbookedPayout(db: Queryable, row: BreakRow): Promise<void> {
  if (row.type === 'missing_in_bank') {
    const reference = row.externalRef ?? '';
    if (reference !== '' && await matchStore.selectPspPayoutBooked(db, reference)) return;
    throw new PennyError({ code: 'reconciliation_payout_not_booked', param: 'id',
      message: `Reconciliation break ${row.id} (missing_in_bank) names the PSP's payout '${reference}', which the `
        + 'settlement has not booked: the operator\'s bank never held it, so there is nothing to take back out. '
        + 'Settle its report first (penny settlement pull, or the imported report read), then repair, or ignore '
        + 'the break with a reason.' });
  }
  if (row.type !== 'unexpected_bank_entry' || row.recordId === null) return;
  const entry = await matchStore.selectBankEntryText(db, row.recordId);
  const text = normalized(entry?.text ?? '');
  if (entry === undefined || text === '') return;
  const dayMs = entry.day === null ? nowMs() : Date.parse(`${entry.day}T00:00:00Z`);
  const booked = await matchStore.selectBookedPspPayouts(db, {
    from: new Date(dayMs - bookedPayoutWindowDays * 86_400_000).toISOString(),
    to: new Date(dayMs + bookedPayoutWindowDays * 86_400_000).toISOString(),
    limit: limits.reconciliationBookedPayoutsReadMax + 1 });
  if (booked.length > limits.reconciliationBookedPayoutsReadMax) {
    // More payouts than read: the one the entry names may be among those left out. Unsure, refuse.
    throw new PennyError({ code: 'reconciliation_payout_booked', param: 'id',
      message: `Reconciliation break ${row.id} (unexpected_bank_entry) may name one of the more than `
        + `${limits.reconciliationBookedPayoutsReadMax} PSP payouts the settlement booked within `
        + `${bookedPayoutWindowDays} days of it, which the check cannot read all of: a repair might count one twice. `
        + 'Import the PSP\'s reports of those days, and a later run pairs them; or ignore the break with a reason.' });
  }
  // `<connector>:<reference>`; a connector id may hold a colon (`adyen:<merchant account>`), a reference none.
  const named = [...new Set(booked.map((payout) => payout.slice(payout.lastIndexOf(':') + 1)))]
    // Named in full or cut short, as the bank leg's pass 3 pairs them: either way the bank holds it already.
    .filter((reference) => namesWhole(text, normalized(reference)) || namesCutShort(text, normalized(reference)));
  const answered = await matchStore.selectAnsweredPayoutReferences(db, named);
  const unpaired = named.filter((reference) => !answered.has(reference));
  if (unpaired.length === 0) return;
  throw new PennyError({ code: 'reconciliation_payout_booked', param: 'id',
    message: `Reconciliation break ${row.id} (unexpected_bank_entry) is a bank entry naming the PSP's payout `
      + `'${unpaired.join("', '")}', which the settlement booked in the operator's bank already: a repair would count `
      + 'it twice. Import the PSP\'s report of that payout, and a later run pairs them; or ignore the break with a reason.' });
}

function missingBreak(id: string): PennyError {
  return new PennyError({ code: 'resource_missing', param: 'id', message: `No such reconciliation break: '${id}'` });
}

function closedBreak(row: BreakRow): PennyError {
  return new PennyError({ code: 'reconciliation_break_closed', param: 'id',
    message: `Reconciliation break ${row.id} is ${row.status}${row.resolution === null ? '' : ` (${row.resolution})`}.` });
}
