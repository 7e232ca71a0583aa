import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, type CopyStreamQuery } from 'pg-copy-streams';
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

/** The planner's statistics of the records (and statements), read again. */
export async function analyzeRecords(db: Queryable): Promise<void> {
  await db.query('ANALYZE reconciliation_records, reconciliation_statements');
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

/** `csvHeader`: a CSV file's column names, which its records' raw values (JSON arrays) are read by. */
export async function insertFile(db: Queryable, file: Omit<FileRow, 'importedAt'>,
  csvHeader: readonly string[] | null = null): Promise<FileRow> {
  const result = await db.query(named(`INSERT INTO reconciliation_files (id, source, format, format_version, filename,
      content_sha256, size_bytes, line_count, record_count, new_record_count, known_record_count, conflicting_record_count,
      csv_header)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::json) RETURNING ${fileColumns}`),
  [file.id, file.source, file.format, file.formatVersion, file.filename, file.contentSha256, file.sizeBytes,
    file.lineCount, file.recordCount, file.newRecordCount, file.knownRecordCount, file.conflictingRecordCount,
    csvHeader === null ? null : JSON.stringify(csvHeader)]);
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

/**
 * The staging table an import COPYs its records into (recon-import.ts, `writeItems`), dropped at
 * commit: each record with its place in the file (`seq`), its occurrence so far (1, and whether
 * the import may have seen its external id before: `repeated`) and its content hash; then
 * `recordStaged` numbers the repeated ones, classifies and inserts them, set-based. Its columns
 * are listed explicitly, here and in `stagingRow`: columns added later to reconciliation_records
 * take their defaults.
 */
export async function createStagingTable(db: Queryable): Promise<void> {
  await db.query(`CREATE TEMPORARY TABLE IF NOT EXISTS recon_import_staging (${stagingColumns.map(
    (column) => `${column.name} ${column.type}`).join(', ')}) ON COMMIT DROP`);
  await db.query('TRUNCATE recon_import_staging');
}

const stagingColumns: readonly { name: string; type: string }[] = [
  { name: 'seq', type: 'bigint NOT NULL' }, { name: 'line', type: 'integer NOT NULL' },
  { name: 'kind', type: 'text NOT NULL' }, { name: 'external_id', type: 'text NOT NULL' },
  { name: 'occurrence', type: 'integer NOT NULL' }, { name: 'repeated', type: 'boolean NOT NULL' },
  { name: 'content_sha256', type: 'text NOT NULL' }, { name: 'type', type: 'text NOT NULL' },
  { name: 'currency', type: 'text NOT NULL' }, { name: 'amount_minor', type: 'bigint NOT NULL' },
  { name: 'gross_minor', type: 'bigint' }, { name: 'gross_currency', type: 'text' }, { name: 'fee_minor', type: 'bigint' },
  { name: 'booking_date', type: 'date' }, { name: 'value_date', type: 'date' }, { name: 'psp_reference', type: 'text' },
  { name: 'merchant_reference', type: 'text' }, { name: 'batch_key', type: 'text' },
  { name: 'remittance_text', type: 'text' }, { name: 'counterparty_name', type: 'text' },
  { name: 'counterparty_account', type: 'text' }, { name: 'status', type: 'text' },
  { name: 'reversal', type: 'boolean NOT NULL' }, { name: 'statement_position', type: 'integer' },
  { name: 'refs', type: 'jsonb NOT NULL' }, { name: 'raw', type: 'json NOT NULL' },
];

const copyStaging = `COPY recon_import_staging (${stagingColumns.map((column) => column.name).join(', ')}) FROM STDIN`;

const copySpecial = /[\\\n\r\t]/;
const copySpecials = /[\\\n\r\t]/g;
const copyEscapes: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A value in COPY's text format: \N for null; backslash, newline, carriage return and tab escaped. */
function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return copySpecial.test(value) ? value.replace(copySpecials, (special) => copyEscapes[special] ?? special) : value;
}

/**
 * JSON text as JSON.stringify writes it, in COPY's text format: it holds no newline, carriage
 * return or tab (JSON escapes them), so only its backslashes are doubled.
 */
function copyJson(text: string): string {
  return text.includes('\\') ? text.replaceAll('\\', '\\\\') : text;
}

function copyNumber(value: bigint | number | null): string {
  return value === null ? '\\N' : String(value);
}

/** A record's JSON, made once for its content hash and its staging row (recon-import.ts, `recordJson`). */
export interface RecordJson {
  readonly contentSha256: string;
  /** Its references and its raw fields, as JSON. */
  readonly refs: string;
  readonly raw: string;
}

/** One record as a line of COPY text for the staging table, in `stagingColumns` order. */
export function stagingRow(seq: number, record: ReconRecord, repeated: boolean, json: RecordJson): string {
  const fields = new Array<string>(26);
  fields[0] = String(seq);
  fields[1] = String(record.line);
  fields[2] = record.kind;
  fields[3] = copyText(record.externalId);
  fields[4] = '1';
  fields[5] = repeated ? 't' : 'f';
  fields[6] = json.contentSha256;
  return recordTail(fields, 7, record, json);
}

/**
 * The columns of a record COPYed straight into reconciliation_records (`recordColumns` order), the
 * first version of its external id, occurrence 1: what an import writes while every record is
 * new (recon-import.ts, `writeItems`); the table's unique indexes refuse the COPY otherwise.
 */
const recordColumns = ['file_id', 'source', 'kind', 'line', 'external_id', 'occurrence', 'content_sha256', 'type',
  'currency', 'amount_minor', 'gross_minor', 'gross_currency', 'fee_minor', 'booking_date', 'value_date',
  'psp_reference', 'merchant_reference', 'batch_key', 'remittance_text', 'counterparty_name', 'counterparty_account',
  'status', 'reversal', 'statement_position', 'refs', 'raw'];

export const copyRecords = `COPY reconciliation_records (${recordColumns.join(', ')}) FROM STDIN`;

/** The file id and source of a file's records, as the first column of `recordRow`. */
export function recordRowPrefix(fileId: string, source: string): string {
  return `${copyText(fileId)}\t${copyText(source)}`;
}

/** One record as a line of COPY text for reconciliation_records (`copyRecords`), after its `recordRowPrefix`. */
export function recordRow(prefix: string, record: ReconRecord, json: RecordJson): string {
  const fields = new Array<string>(25);
  fields[0] = prefix;
  fields[1] = record.kind;
  fields[2] = String(record.line);
  fields[3] = copyText(record.externalId);
  fields[4] = '1';
  fields[5] = json.contentSha256;
  return recordTail(fields, 6, record, json);
}

/**
 * The columns from `type` on, common to both rows, written into `fields` from `start`: the row
 * is joined once (one flat string, not a rope of sixty pieces to flatten when it is sent).
 */
function recordTail(fields: string[], start: number, record: ReconRecord, json: RecordJson): string {
  let index = start;
  fields[index++] = copyText(record.type);
  fields[index++] = copyText(record.currency);
  fields[index++] = String(record.amountMinor);
  fields[index++] = copyNumber(record.grossMinor);
  fields[index++] = copyText(record.grossCurrency);
  fields[index++] = copyNumber(record.feeMinor);
  fields[index++] = copyText(record.bookingDate);
  fields[index++] = copyText(record.valueDate);
  fields[index++] = copyText(record.pspReference);
  fields[index++] = copyText(record.merchantReference);
  fields[index++] = copyText(record.batchKey);
  fields[index++] = copyText(record.remittanceText);
  fields[index++] = copyText(record.counterpartyName);
  fields[index++] = copyText(record.counterpartyAccount);
  fields[index++] = copyText(record.status);
  fields[index++] = record.reversal ? 't' : 'f';
  fields[index++] = copyNumber(record.statementPosition);
  fields[index++] = copyJson(json.refs);
  fields[index] = `${copyJson(json.raw)}\n`;
  return fields.join('\t');
}

/**
 * Whether a COPY straight into the records was refused because a record is known already: a
 * version under its (source, external id, occurrence) exists, the same content or other.
 */
export function isRecordKnown(error: unknown): boolean {
  const failure = error as { code?: unknown; constraint?: unknown } | null;
  return failure?.code === '23505' && (failure.constraint === 'reconciliation_records_first_version'
    || failure.constraint === 'reconciliation_records_conflicting_version');
}

/**
 * The line of a record of the file whose statement position names no statement of the file, if
 * any: what a foreign key checked row by row before migration 0039, checked once per file.
 */
export async function selectRecordWithoutStatement(db: Queryable, fileId: string): Promise<number | undefined> {
  const result = await db.query(named(`SELECT r.line FROM reconciliation_records r
    WHERE r.file_id = $1 AND r.statement_position IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM reconciliation_statements s WHERE s.file_id = r.file_id
        AND s.position = r.statement_position)
    LIMIT 1`), [fileId]);
  return (result.rows[0] as { line: number } | undefined)?.line;
}

/** Bytes of COPY text gathered before they are sent: few large writes rather than many small ones. */
const copyChunkChars = 256 * 1024;

/**
 * Streams rows into a table with COPY (pg-copy-streams; `copyStaging` by default, or
 * `copyRecords`), waiting for the connection when its buffer is full, so the parse and
 * PostgreSQL's work on the rows sent overlap. The COPY holds the connection: `close` ends it
 * before any other statement (a statement's row, the set-based inserts); the next `write` starts
 * another.
 */
export class StagingCopy {
  private stream: CopyStreamQuery | undefined;
  private failure: Error | undefined;
  private pending: string[] = [];
  private pendingChars = 0;

  constructor(private readonly client: pg.ClientBase, private readonly statement = copyStaging) {}

  async write(row: string): Promise<void> {
    this.pending.push(row);
    this.pendingChars += row.length;
    if (this.pendingChars >= copyChunkChars) await this.flush();
  }

  /** Sends what is gathered and ends the COPY under way, if any. */
  async close(): Promise<void> {
    await this.flush();
    const stream = this.stream;
    if (stream === undefined) return;
    this.stream = undefined;
    stream.end();
    await finished(stream);
  }

  /** Abandons the COPY under way (CopyFail), leaving the connection ready for the rollback. */
  async abort(): Promise<void> {
    const stream = this.stream;
    this.pending = [];
    if (stream === undefined) return;
    this.stream = undefined;
    // A COPY that failed is over: its error ended the query (or its connection is gone). A
    // CopyFail then would wait for PostgreSQL's answer, and on a lost connection wait for ever,
    // holding the pool's connection (found by review: a cut as the COPY began hung the import).
    if (this.failure !== undefined) return;
    stream.destroy(new Error('import abandoned'));
    await finished(stream).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.pending.length === 0) return;
    const stream = this.stream ?? this.open();
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    if (!stream.write(chunk)) await once(stream, 'drain');
  }

  private open(): CopyStreamQuery {
    const stream = this.client.query(copyFrom(this.statement));
    stream.on('error', (error: Error) => { this.failure ??= error; });
    this.stream = stream;
    return stream;
  }
}

export interface StagedCounts {
  readonly recordCount: number;
  readonly newRecordCount: number;
  readonly knownRecordCount: number;
  readonly conflictingRecordCount: number;
}

/**
 * Writes the staged records, set-based. Each record's occurrence (the how-many-th with its
 * external id in the file, in file order) came staged: exact for an id the import had not seen
 * (1), and for the rows marked `repeated` (an id the import may have seen) it is numbered here
 * first. Then each is classified against the versions stored under (source, external id,
 * occurrence): known (a version with the same content: not written), new (none: inserted), or
 * conflicting (only other content: inserted beside the first version, `conflicts_with_record_id`).
 * The reads see the table as it was before the statement, never its own rows.
 */
export async function recordStaged(client: Queryable, fileId: string, source: string,
  staged: { records: number; repeated: number }): Promise<StagedCounts> {
  if (staged.records === 0) {
    return { recordCount: 0, newRecordCount: 0, knownRecordCount: 0, conflictingRecordCount: 0 };
  }
  if (staged.repeated > 0) {
    await client.query(named(`UPDATE recon_import_staging s SET occurrence = n.occurrence
      FROM (SELECT seq, row_number() OVER (PARTITION BY external_id ORDER BY seq)::int AS occurrence
        FROM recon_import_staging
        WHERE external_id IN (SELECT external_id FROM recon_import_staging WHERE repeated)) n
      WHERE s.seq = n.seq AND s.occurrence <> n.occurrence`));
  }
  const result = await client.query(named(`WITH inserted AS (
      INSERT INTO reconciliation_records (file_id, source, kind, line, external_id,
        occurrence, content_sha256, conflicts_with_record_id, type, currency, amount_minor, gross_minor, gross_currency,
        fee_minor, booking_date, value_date, psp_reference, merchant_reference, batch_key, remittance_text,
        counterparty_name, counterparty_account, status, reversal, statement_position, refs, raw)
      SELECT $1, $2, s.kind, s.line, s.external_id, s.occurrence, s.content_sha256, f.id, s.type,
        s.currency, s.amount_minor, s.gross_minor, s.gross_currency, s.fee_minor, s.booking_date, s.value_date,
        s.psp_reference, s.merchant_reference, s.batch_key, s.remittance_text, s.counterparty_name,
        s.counterparty_account, s.status, s.reversal, s.statement_position, s.refs, s.raw
      FROM recon_import_staging s
      LEFT JOIN reconciliation_records f ON f.source = $2 AND f.external_id = s.external_id
        AND f.occurrence = s.occurrence AND f.conflicts_with_record_id IS NULL
      WHERE NOT EXISTS (SELECT FROM reconciliation_records v WHERE v.source = $2 AND v.external_id = s.external_id
        AND v.occurrence = s.occurrence AND v.content_sha256 = s.content_sha256)
      RETURNING conflicts_with_record_id)
    SELECT count(*) FILTER (WHERE conflicts_with_record_id IS NULL)::int AS new,
      count(*) FILTER (WHERE conflicts_with_record_id IS NOT NULL)::int AS conflicting
    FROM inserted`), [fileId, source]);
  const row = result.rows[0] as { new: number; conflicting: number };
  return { recordCount: staged.records, newRecordCount: row.new, conflictingRecordCount: row.conflicting,
    knownRecordCount: staged.records - row.new - row.conflicting };
}

/**
 * A record's raw fields as an object by name, as the file had them: a CSV row's values (a JSON
 * array since migration 0042) by its file's column names, in the file's column order; a bank
 * entry's fields (and a CSV row imported before 0042) as stored.
 */
export async function selectRecordRaw(db: Queryable, recordId: bigint): Promise<Record<string, unknown> | undefined> {
  const result = await db.query<{ raw: unknown; csv_header: string[] | null }>(named(`SELECT r.raw, f.csv_header
    FROM reconciliation_records r JOIN reconciliation_files f ON f.id = r.file_id WHERE r.id = $1`), [recordId]);
  const row = result.rows[0];
  if (row === undefined) return undefined;
  if (!Array.isArray(row.raw)) return row.raw as Record<string, unknown>;
  const values = row.raw as unknown[];
  const object: Record<string, unknown> = {};
  (row.csv_header ?? []).forEach((name, index) => { object[name] = values[index]; });
  return object;
}

export async function selectConflicts(db: Queryable, fileId: string, limit: number): Promise<ConflictRow[]> {
  const result = await db.query(named(`SELECT id, external_id, occurrence, line, conflicts_with_record_id
    FROM reconciliation_records WHERE file_id = $1 AND conflicts_with_record_id IS NOT NULL
    ORDER BY line, id LIMIT $2`), [fileId, limit]);
  return (result.rows as { id: bigint; external_id: string; occurrence: number; line: number;
    conflicts_with_record_id: bigint }[]).map((row) => ({ id: row.id, externalId: row.external_id,
    occurrence: row.occurrence, line: row.line, conflictsWithRecordId: row.conflicts_with_record_id }));
}
