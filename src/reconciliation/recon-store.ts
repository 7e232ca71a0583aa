import { named, type Queryable } from '../db/pool.js';
import { stringifyJson } from '../json.js';
import type { ReconFormat, ReconRecord, ReconStatement } from './recon-records.js';

/** The SQL of reconciliation's imported files, statements and records, one function per statement. */

export interface FileRow {
  readonly id: string;
  readonly source: string;
  readonly format: ReconFormat;
  readonly formatVersion: string | null;
  readonly filename: string;
  readonly contentSha256: string;
  readonly sizeBytes: bigint;
  readonly lineCount: number;
  readonly recordCount: number;
  readonly newRecordCount: number;
  readonly knownRecordCount: number;
  readonly conflictingRecordCount: number;
  readonly importedAt: string;
}

export interface StatementRow {
  readonly position: number;
  readonly statementRef: string;
  readonly account: string;
  readonly currency: string | null;
  readonly openingBalanceMinor: bigint | null;
  readonly openingCurrency: string | null;
  readonly openingDate: string | null;
  readonly closingBalanceMinor: bigint | null;
  readonly closingCurrency: string | null;
  readonly closingDate: string | null;
  readonly entryCount: number;
  readonly bookedSumMinor: bigint;
  readonly balanceCheck: 'adds_up' | 'mismatch' | 'not_checkable';
  readonly expectedClosingMinor: bigint | null;
  readonly balanceCheckReason: string | null;
}

export interface ConflictRow {
  readonly id: bigint;
  readonly externalId: string;
  readonly occurrence: number;
  readonly line: number;
  readonly conflictsWithRecordId: bigint;
}

/** Imports run one at a time: each sees every record the one before it wrote. */
export async function lockImports(db: Queryable): Promise<void> {
  await db.query(named("SELECT pg_advisory_xact_lock(hashtext('penny:reconciliation_import'))"));
}

const fileColumns = `id, source, format, format_version, filename, content_sha256, size_bytes, line_count, record_count,
  new_record_count, known_record_count, conflicting_record_count, imported_at`;

function fileRow(row: Record<string, unknown>): FileRow {
  return {
    id: row.id as string,
    source: row.source as string,
    format: row.format as ReconFormat,
    formatVersion: row.format_version as string | null,
    filename: row.filename as string,
    contentSha256: row.content_sha256 as string,
    sizeBytes: row.size_bytes as bigint,
    lineCount: row.line_count as number,
    recordCount: row.record_count as number,
    newRecordCount: row.new_record_count as number,
    knownRecordCount: row.known_record_count as number,
    conflictingRecordCount: row.conflicting_record_count as number,
    importedAt: row.imported_at as string,
  };
}

export async function selectFileByHash(db: Queryable, contentSha256: string): Promise<FileRow | undefined> {
  const result = await db.query(named(`SELECT ${fileColumns} FROM reconciliation_files WHERE content_sha256 = $1`),
    [contentSha256]);
  return result.rows[0] === undefined ? undefined : fileRow(result.rows[0] as Record<string, unknown>);
}

export async function selectFile(db: Queryable, id: string): Promise<FileRow | undefined> {
  const result = await db.query(named(`SELECT ${fileColumns} FROM reconciliation_files WHERE id = $1`), [id]);
  return result.rows[0] === undefined ? undefined : fileRow(result.rows[0] as Record<string, unknown>);
}

export async function insertFile(db: Queryable, file: Omit<FileRow, 'importedAt'>): Promise<FileRow> {
  const result = await db.query(named(`INSERT INTO reconciliation_files (id, source, format, format_version, filename,
      content_sha256, size_bytes, line_count, record_count, new_record_count, known_record_count, conflicting_record_count)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${fileColumns}`),
  [file.id, file.source, file.format, file.formatVersion, file.filename, file.contentSha256, file.sizeBytes,
    file.lineCount, file.recordCount, file.newRecordCount, file.knownRecordCount, file.conflictingRecordCount]);
  return fileRow(result.rows[0] as Record<string, unknown>);
}

export async function insertStatement(db: Queryable, fileId: string, statement: ReconStatement): Promise<void> {
  const check = statement.balanceCheck;
  await db.query(named(`INSERT INTO reconciliation_statements (file_id, position, line, statement_ref, account, currency,
      opening_balance_minor, opening_currency, opening_date, closing_balance_minor, closing_currency, closing_date,
      entry_count, booked_sum_minor, balance_check, expected_closing_minor, balance_check_reason, raw)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::jsonb)`),
  [fileId, statement.position, statement.line, statement.statementRef, statement.account, statement.currency,
    statement.opening?.amountMinor ?? null, statement.opening?.currency ?? null, statement.opening?.date ?? null,
    statement.closing?.amountMinor ?? null, statement.closing?.currency ?? null, statement.closing?.date ?? null,
    statement.entryCount, statement.bookedSumMinor, check.result,
    check.result === 'not_checkable' ? null : check.expectedClosingMinor,
    check.result === 'not_checkable' ? check.reason : null, stringifyJson(statement.raw)]);
}

export async function selectStatements(db: Queryable, fileId: string, limit: number): Promise<StatementRow[]> {
  const result = await db.query(named(`SELECT position, statement_ref, account, currency, opening_balance_minor,
      opening_currency, opening_date::text AS opening_date, closing_balance_minor, closing_currency,
      closing_date::text AS closing_date, entry_count, booked_sum_minor, balance_check, expected_closing_minor,
      balance_check_reason
    FROM reconciliation_statements WHERE file_id = $1 ORDER BY position LIMIT $2`), [fileId, limit]);
  return result.rows.map((row: Record<string, unknown>) => ({
    position: row.position as number,
    statementRef: row.statement_ref as string,
    account: row.account as string,
    currency: row.currency as string | null,
    openingBalanceMinor: row.opening_balance_minor as bigint | null,
    openingCurrency: row.opening_currency as string | null,
    openingDate: row.opening_date as string | null,
    closingBalanceMinor: row.closing_balance_minor as bigint | null,
    closingCurrency: row.closing_currency as string | null,
    closingDate: row.closing_date as string | null,
    entryCount: row.entry_count as number,
    bookedSumMinor: row.booked_sum_minor as bigint,
    balanceCheck: row.balance_check as StatementRow['balanceCheck'],
    expectedClosingMinor: row.expected_closing_minor as bigint | null,
    balanceCheckReason: row.balance_check_reason as string | null,
  }));
}

export async function countStatements(db: Queryable, fileId: string): Promise<number> {
  const result = await db.query(named('SELECT count(*)::int AS n FROM reconciliation_statements WHERE file_id = $1'), [fileId]);
  return (result.rows[0] as { n: number }).n;
}

/** A scratch table of the external ids the import has seen so far and how often, dropped at commit. */
export async function createSeenTable(db: Queryable): Promise<void> {
  await db.query(`CREATE TEMPORARY TABLE IF NOT EXISTS recon_import_seen (external_id text PRIMARY KEY, seen integer NOT NULL)
    ON COMMIT DROP`);
  await db.query('TRUNCATE recon_import_seen');
}

/** Adds a batch's count of each external id; answers how often each had been seen before the batch. */
export async function countSeen(db: Queryable, counts: ReadonlyMap<string, number>): Promise<Map<string, number>> {
  const result = await db.query(named(`INSERT INTO recon_import_seen (external_id, seen)
      SELECT * FROM unnest($1::text[], $2::int[])
    ON CONFLICT (external_id) DO UPDATE SET seen = recon_import_seen.seen + excluded.seen
    RETURNING external_id, seen`), [[...counts.keys()], [...counts.values()]]);
  const before = new Map<string, number>();
  for (const row of result.rows as { external_id: string; seen: number }[]) {
    before.set(row.external_id, row.seen - (counts.get(row.external_id) ?? 0));
  }
  return before;
}

export interface KnownVersion {
  readonly id: bigint;
  readonly externalId: string;
  readonly occurrence: number;
  readonly contentSha256: string;
  readonly first: boolean;
}

export async function selectKnownVersions(db: Queryable, source: string,
  keys: readonly { externalId: string; occurrence: number }[]): Promise<KnownVersion[]> {
  const result = await db.query(named(`SELECT r.id, r.external_id, r.occurrence, r.content_sha256,
      r.conflicts_with_record_id IS NULL AS first
    FROM unnest($2::text[], $3::int[]) AS k (external_id, occurrence)
    JOIN reconciliation_records r ON r.source = $1 AND r.external_id = k.external_id AND r.occurrence = k.occurrence`),
  [source, keys.map((key) => key.externalId), keys.map((key) => key.occurrence)]);
  type Row = { id: bigint; external_id: string; occurrence: number; content_sha256: string; first: boolean };
  return (result.rows as Row[])
    .map((row) => ({ id: row.id, externalId: row.external_id, occurrence: row.occurrence,
      contentSha256: row.content_sha256, first: row.first }));
}

export interface RecordInsert {
  readonly record: ReconRecord;
  readonly occurrence: number;
  readonly contentSha256: string;
  readonly conflictsWithRecordId: bigint | null;
}

/** Writes a batch of records in one statement. */
export async function insertRecords(db: Queryable, fileId: string, source: string,
  rows: readonly RecordInsert[]): Promise<void> {
  if (rows.length === 0) return;
  const json = stringifyJson(rows.map(({ record, occurrence, contentSha256, conflictsWithRecordId }) => ({
    kind: record.kind, line: record.line, external_id: record.externalId, occurrence, content_sha256: contentSha256,
    conflicts_with_record_id: conflictsWithRecordId === null ? null : String(conflictsWithRecordId),
    type: record.type, currency: record.currency, amount_minor: String(record.amountMinor),
    gross_minor: record.grossMinor === null ? null : String(record.grossMinor), gross_currency: record.grossCurrency,
    fee_minor: record.feeMinor === null ? null : String(record.feeMinor), booking_date: record.bookingDate,
    value_date: record.valueDate, psp_reference: record.pspReference, merchant_reference: record.merchantReference,
    batch_key: record.batchKey, remittance_text: record.remittanceText, counterparty_name: record.counterpartyName,
    counterparty_account: record.counterpartyAccount, status: record.status, reversal: record.reversal,
    statement_position: record.statementPosition, refs: record.references, raw: record.raw,
  })));
  await db.query(named(`INSERT INTO reconciliation_records (file_id, source, kind, line, external_id,
      occurrence, content_sha256, conflicts_with_record_id, type, currency, amount_minor, gross_minor, gross_currency,
      fee_minor, booking_date, value_date, psp_reference, merchant_reference, batch_key, remittance_text,
      counterparty_name, counterparty_account, status, reversal, statement_position, refs, raw)
    SELECT $1, $2, x.kind, x.line, x.external_id, x.occurrence, x.content_sha256, x.conflicts_with_record_id, x.type,
      x.currency, x.amount_minor, x.gross_minor, x.gross_currency, x.fee_minor, x.booking_date, x.value_date,
      x.psp_reference, x.merchant_reference, x.batch_key, x.remittance_text, x.counterparty_name,
      x.counterparty_account, x.status, x.reversal, x.statement_position, x.refs, x.raw
    FROM jsonb_to_recordset($3::jsonb) AS x (kind text, line int, external_id text, occurrence int,
      content_sha256 text, conflicts_with_record_id bigint, type text, currency text, amount_minor bigint,
      gross_minor bigint, gross_currency text, fee_minor bigint, booking_date date, value_date date,
      psp_reference text, merchant_reference text, batch_key text, remittance_text text, counterparty_name text,
      counterparty_account text, status text, reversal boolean, statement_position int, refs jsonb, raw jsonb)
`), [fileId, source, json]);
}

export async function selectConflicts(db: Queryable, fileId: string, limit: number): Promise<ConflictRow[]> {
  const result = await db.query(named(`SELECT id, external_id, occurrence, line, conflicts_with_record_id
    FROM reconciliation_records WHERE file_id = $1 AND conflicts_with_record_id IS NOT NULL
    ORDER BY line, id LIMIT $2`), [fileId, limit]);
  return (result.rows as { id: bigint; external_id: string; occurrence: number; line: number;
    conflicts_with_record_id: bigint }[]).map((row) => ({ id: row.id, externalId: row.external_id,
    occurrence: row.occurrence, line: row.line, conflictsWithRecordId: row.conflicts_with_record_id }));
}
