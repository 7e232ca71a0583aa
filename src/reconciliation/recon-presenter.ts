import type { BreakRow, RunRow } from './recon-break-store.js';
import { proposeRepair, type RepairProposal } from './recon-breaks.js';
import type { ConflictRow, FileRow, StatementRow } from './recon-store.js';

/**
 * The answer to an import (`POST /v1/reconciliation/files`, `penny recon import --json`): the
 * file's id, detected format and version, its lines and records (new, known, conflicting), each
 * conflicting external record, and each statement with its balance check.
 */
export interface ImportSummary {
  readonly object: 'reconciliation.file';
  readonly id: string;
  readonly source: string;
  readonly format: string;
  readonly version: string | null;
  readonly filename: string;
  readonly content_sha256: string;
  readonly size_bytes: bigint;
  readonly lines: number;
  readonly imported_at: string;
  /** True when these bytes were imported before: nothing was added, and this is that import's summary. */
  readonly already_known: boolean;
  readonly records: {
    readonly total: number; readonly new: number; readonly known: number; readonly conflicting: number;
  };
  readonly conflicting_external_records: readonly {
    readonly external_id: string;
    readonly occurrence: number;
    readonly line: number;
    readonly record: bigint;
    readonly conflicts_with: bigint;
  }[];
  readonly statement_count: number;
  readonly statements: readonly PresentedStatement[];
}

export interface PresentedStatement {
  readonly position: number;
  readonly statement_ref: string;
  readonly account: string;
  readonly currency: string | null;
  readonly entries: number;
  readonly opening_balance: PresentedBalance | null;
  readonly closing_balance: PresentedBalance | null;
  readonly booked_sum_minor: bigint;
  readonly balance_check: 'adds_up' | 'mismatch' | 'not_checkable';
  /** Opening + booked entries, when checkable. */
  readonly expected_closing_minor: bigint | null;
  /** Stated closing − expected closing, when checkable. */
  readonly difference_minor: bigint | null;
  /** Why the balances could not be checked. */
  readonly reason: string | null;
}

interface PresentedBalance {
  readonly amount_minor: bigint;
  readonly currency: string;
  readonly date: string | null;
}

export function presentImport(input: {
  file: FileRow;
  alreadyKnown: boolean;
  statements: readonly StatementRow[];
  statementCount: number;
  conflicts: readonly ConflictRow[];
}): ImportSummary {
  const { file } = input;
  return {
    object: 'reconciliation.file',
    id: file.id,
    source: file.source,
    format: file.format,
    version: file.formatVersion,
    filename: file.filename,
    content_sha256: file.contentSha256,
    size_bytes: file.sizeBytes,
    lines: file.lineCount,
    imported_at: file.importedAt,
    already_known: input.alreadyKnown,
    records: { total: file.recordCount, new: file.newRecordCount, known: file.knownRecordCount,
      conflicting: file.conflictingRecordCount },
    conflicting_external_records: input.conflicts.map((conflict) => ({ external_id: conflict.externalId,
      occurrence: conflict.occurrence, line: conflict.line, record: conflict.id,
      conflicts_with: conflict.conflictsWithRecordId })),
    statement_count: input.statementCount,
    statements: input.statements.map(presentStatement),
  };
}

function presentStatement(row: StatementRow): PresentedStatement {
  const balance = (amount: bigint | null, currency: string | null, date: string | null): PresentedBalance | null =>
    (amount === null || currency === null ? null : { amount_minor: amount, currency, date });
  const closing = balance(row.closingBalanceMinor, row.closingCurrency, row.closingDate);
  return {
    position: row.position,
    statement_ref: row.statementRef,
    account: row.account,
    currency: row.currency,
    entries: row.entryCount,
    opening_balance: balance(row.openingBalanceMinor, row.openingCurrency, row.openingDate),
    closing_balance: closing,
    booked_sum_minor: row.bookedSumMinor,
    balance_check: row.balanceCheck,
    expected_closing_minor: row.expectedClosingMinor,
    difference_minor: row.expectedClosingMinor === null || closing === null ? null
      : closing.amount_minor - row.expectedClosingMinor,
    reason: row.balanceCheckReason,
  };
}

/**
 * A reconciliation break as JSON (decisions.md, "A reconciliation break in JSON"), with what it is
 * about (`detail`), its merchant, its lifecycle, and the repair Penny proposes (accounts by role).
 */
export function presentBreak(row: BreakRow, proposal: RepairProposal | null) {
  return {
    object: 'reconciliation.break' as const,
    id: row.id,
    type: row.type,
    leg: row.leg,
    status: row.status,
    external_ref: row.externalRef,
    internal_ref: row.internalRef,
    currency: row.currency,
    expected_minor: row.expectedMinor,
    actual_minor: row.actualMinor,
    difference_minor: row.differenceMinor,
    run_id: row.runId,
    opened_at: row.openedAt,
    detail: row.detail,
    merchant: row.merchantId,
    resolution: row.resolution,
    resolved_at: row.resolvedAt,
    resolved_by_run: row.resolvedByRunId,
    repair_entry: row.repairEntryId,
    ignored_reason: row.ignoredReason,
    ignored_at: row.ignoredAt,
    proposed_repair: proposal === null ? null : {
      description: proposal.description,
      currency: proposal.currency,
      owner: proposal.ownerId,
      postings: proposal.postings.map((posting) => ({ role: posting.role, direction: posting.direction,
        amount_minor: posting.amountMinor })),
    },
  };
}

/** A run as JSON: its day, inputs and counts, and the breaks it opened (a bounded page of them). */
export function presentRun(run: RunRow, breaks: { rows: readonly BreakRow[]; hasMore: boolean } | undefined) {
  return {
    object: 'reconciliation.run' as const,
    id: run.id,
    as_of: run.asOf,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
    input_files: run.inputFileIds,
    counts: run.counts,
    ...(breaks === undefined ? {} : {
      breaks: breaks.rows.map((row) => presentBreak(row, proposeRepair(row))),
      breaks_has_more: breaks.hasMore,
    }),
  };
}
