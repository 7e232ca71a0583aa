import crypto, { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { limits } from '../config.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import { stringifyJson } from '../json.js';
import { readAdyenSdr } from './adyen-sdr.js';
import { CsvRow } from './csv-rows.js';
import { readCamt053 } from './camt053.js';
import { readMt940 } from './mt940.js';
import { fileProblem } from './recon-problem.js';
import { presentImport, type ImportSummary } from './recon-presenter.js';
import type { ParsedItem, ReconFormat, ReconRecord, ReconStatement } from './recon-records.js';
import * as store from './recon-store.js';
import { readStripePayoutReconciliation } from './stripe-payout-reconciliation.js';

/**
 * The import of a PSP report or bank statement (`POST /v1/reconciliation/files`, `penny recon
 * import`). The body is first streamed to a temporary file through a meter (SHA-256, bytes,
 * lines, the 1 GiB bound), holding no database connection or lock however slow the upload. Then
 * a file whose bytes are known is answered at once; any other is read back from the temporary
 * file: a format check on its first bytes, and its parser, into one transaction, in batches.
 *
 * - **All or nothing.** A file the parser cannot read is refused whole (`reconciliation_file_invalid`,
 *   naming the file, line and field): the transaction rolls back and nothing of it is kept.
 * - **Idempotent.** A file whose bytes were imported before adds nothing and is not parsed
 *   again: its answer is the first import's, with `already_known: true`. A record is known by
 *   (source, external id, occurrence in its file): the same content again adds nothing; other
 *   content is kept beside the first as a conflicting version and counted
 *   (`conflicting_external_record`, for a later run to report as a break: the file is data to
 *   reconcile, not malformed).
 * - **A statement that does not add up** is imported, its check (`mismatch`, both balances and
 *   the difference) stored with it for the break a run opens.
 * - Imports run one at a time (an advisory lock), so each sees the records the one before wrote.
 */
export interface ImportRequest {
  readonly body: Readable;
  /** Named in errors and kept with the file. */
  readonly filename: string;
  /** The namespace of external ids (a PSP account, a bank); by default the format's name. */
  readonly source?: string;
  /** Skips detection. */
  readonly format?: ReconFormat;
  /** Bytes read so far (the CLI's progress bar). */
  readonly onProgress?: (bytesRead: number) => void;
}

export const sourcePattern = /^[a-z0-9][a-z0-9_.:-]{0,63}$/;

const peekBytes = 8192;

/** An import of at least this many new records refreshes the records' planner statistics after it commits. */
export const analyzeAfterRecordsMin = 50_000;

export class ReconciliationImports {
  private readonly fileBytesMax: number;

  /** `fileBytesMax`: the largest file taken (default `limits.reconciliationFileBytesMax`, 1 GiB). */
  constructor(private readonly pool: pg.Pool, options: { fileBytesMax?: number } = {}) {
    this.fileBytesMax = options.fileBytesMax ?? limits.reconciliationFileBytesMax;
  }

  async importFile(request: ImportRequest): Promise<ImportSummary> {
    // The body may fail before the spool listens to it (an inbox file moved away by another
    // process, a download cut): listened to from here on, so that Node does not end the process;
    // the spool reads the failure from the stream.
    request.body.on('error', () => undefined);
    checkSource(request.source);
    const directory = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'penny-recon-'));
    try {
      const spooled = await spool(request, path.join(directory, 'upload'), this.fileBytesMax);
      const known = await store.selectFileByHash(this.pool, spooled.contentSha256);
      if (known !== undefined) return await this.summaryOf(this.pool, known, true);
      return await this.importSpooled(request, spooled);
    } finally {
      await fs.promises.rm(directory, { recursive: true, force: true });
    }
  }

  /** Detects the format and parses the spooled file into one transaction, under the import lock. */
  private async importSpooled(request: ImportRequest, spooled: SpooledFile): Promise<ImportSummary> {
    const first = fs.createReadStream(spooled.path);
    let head: Buffer;
    try {
      head = (await peek(first, peekBytes)).head;
    } finally {
      first.destroy();
    }
    const format = request.format ?? detectFormat(head, request.filename);
    const source = request.source ?? format;
    let version: string | null = null;
    const streams: Readable[] = [];
    /** The file's items, read from its start (a second time when the direct write gives way). */
    const readItems = (): AsyncIterable<ParsedItem> => {
      const input = fs.createReadStream(spooled.path);
      streams.push(input);
      return parserFor(format)(input, request.filename, (found) => { version = found; });
    };
    const fileId = newId('rfile');
    try {
      const summary = await withTransaction(this.pool, async (client) => {
        await store.lockImports(client);
        // The same bytes, imported by an upload that finished while this one was arriving.
        const known = await store.selectFileByHash(client, spooled.contentSha256);
        if (known !== undefined) return this.summaryOf(client, known, true);
        const { csvHeader, ...counts } = await writeRecords(client, { fileId, source, filename: request.filename },
          readItems, spooled.lines);
        // The file's row comes last, with its counts; the references to it wait for the commit.
        const file = await store.insertFile(client, { id: fileId, source, format, formatVersion: version,
          filename: request.filename.slice(0, 255), contentSha256: spooled.contentSha256,
          sizeBytes: BigInt(spooled.bytes), lineCount: spooled.lines, ...counts }, csvHeader);
        return this.summaryOf(client, file, false);
      });
      // A large file changes the records' statistics enough to mislead the next run's plans: read them again now.
      if (summary.records.new >= analyzeAfterRecordsMin) await store.analyzeRecords(this.pool);
      return summary;
    } finally {
      for (const input of streams) input.destroy();
    }
  }

  /** What an import answered, read back (`GET /v1/reconciliation/files/:id`). */
  async describe(fileId: string): Promise<ImportSummary> {
    const file = await store.selectFile(this.pool, fileId);
    if (file === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such reconciliation file: '${fileId}'` });
    }
    return this.summaryOf(this.pool, file, false);
  }

  private async summaryOf(db: Queryable, file: store.FileRow, alreadyKnown: boolean): Promise<ImportSummary> {
    const itemsMax = limits.reconciliationSummaryItemsMax;
    return presentImport({
      file,
      alreadyKnown,
      statements: await store.selectStatements(db, file.id, itemsMax),
      statementCount: await store.countStatements(db, file.id),
      // None to list is the common case: no query (its plan can read every record of a large file).
      conflicts: file.conflictingRecordCount === 0 ? [] : await store.selectConflicts(db, file.id, itemsMax),
    });
  }
}

function checkSource(source: string | undefined): void {
  if (source !== undefined && !sourcePattern.test(source)) {
    throw new PennyError({ code: 'parameter_invalid', param: 'source',
      message: 'source must be 1 to 64 lower-case letters, digits and _ . : - (starting with a letter or digit).' });
  }
}

interface SpooledFile {
  readonly path: string;
  readonly contentSha256: string;
  readonly bytes: number;
  readonly lines: number;
}

/**
 * Streams the body to `file` through the meter (the bound, progress, hash and line count). No
 * database connection or lock is held meanwhile: a slow upload keeps nothing from payments or
 * from another import.
 */
async function spool(request: ImportRequest, file: string, bytesMax: number): Promise<SpooledFile> {
  if (request.body.errored !== null) throw request.body.errored;
  if (request.body.destroyed) throw new Error('the file\'s body was closed before it was read');
  const meter = new FileMeter(bytesMax, request.onProgress);
  request.body.on('error', (error) => meter.destroy(error));
  request.body.pipe(meter);
  try {
    await pipeline(meter, fs.createWriteStream(file, { flags: 'wx' }));
    return { path: file, ...meter.digest() };
  } finally {
    // What is left of a refused body is for its owner to drain or close (src/http/body-drain.ts, the CLI's file).
    request.body.unpipe(meter);
    meter.destroy();
  }
}

/** Statements held while records stream, then written between two COPYs (a few rows each). */
const statementsHeldMax = 100;

/** The direct write gives way: a record's external id may be repeated in the file. */
class NotAllNew extends Error {}

/**
 * Writes the file's records, the fast way first when it can be: while every record is new (no
 * external id repeated in the file, none known from another file), they are COPYed straight into
 * reconciliation_records, in a savepoint, the parse overlapping PostgreSQL's inserts. The first
 * record that is not new (the table's unique indexes refuse it, or the import has maybe seen its
 * id) rolls that back, and the file is read again into the staging table, then numbered,
 * classified and inserted set-based (`recordStaged`): known, new or conflicting, exactly as before.
 */
async function writeRecords(client: pg.PoolClient, target: ImportTarget, readItems: () => AsyncIterable<ParsedItem>,
  lines: number): Promise<WrittenRecords> {
  if (lines <= SeenExternalIds.idsMax) {
    await client.query('SAVEPOINT recon_import_direct');
    try {
      const counts = await writeItems(client, target, readItems(), 'direct');
      await client.query('RELEASE SAVEPOINT recon_import_direct');
      return counts;
    } catch (error) {
      if (!(error instanceof NotAllNew) && !store.isRecordKnown(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT recon_import_direct');
    }
  }
  return writeItems(client, target, readItems(), 'staged');
}

/** What an import wrote: its counts, and a CSV file's header (its records' raw fields are arrays of values). */
interface WrittenRecords extends store.StagedCounts {
  readonly csvHeader: readonly string[] | null;
}

interface ImportTarget {
  readonly fileId: string;
  readonly source: string;
  readonly filename: string;
}

/**
 * Writes the parsed items: records COPYed as they come (nothing of the file held in memory),
 * statements in small groups between COPYs. `direct`: straight into reconciliation_records, every
 * record new, or `NotAllNew` thrown. `staged`: into the staging table, then numbered, classified
 * and inserted set-based (recon-store.ts, `recordStaged`).
 */
async function writeItems(client: pg.PoolClient, target: ImportTarget, items: AsyncIterable<ParsedItem>,
  mode: 'direct' | 'staged'): Promise<WrittenRecords> {
  const direct = mode === 'direct';
  if (!direct) await store.createStagingTable(client);
  const copy = new store.StagingCopy(client, direct ? store.copyRecords : undefined);
  const prefix = store.recordRowPrefix(target.fileId, target.source);
  let statements: ReconStatement[] = [];
  const writeStatements = async () => {
    await copy.close();
    for (const statement of statements) await store.insertStatement(client, target.fileId, statement);
    statements = [];
  };
  const seen = new SeenExternalIds();
  let seq = 0;
  let repeated = 0;
  let inStatements = false;
  let csvHeader: readonly string[] | null = null;
  try {
    for await (const item of items) {
      if (item.kind === 'statement') {
        statements.push(item.statement);
        if (statements.length >= statementsHeldMax) await writeStatements();
        continue;
      }
      const { record } = item;
      const json = recordJson(record, target.filename);
      if (csvHeader === null && record.raw instanceof CsvRow) csvHeader = record.raw.header.names;
      seq += 1;
      if (record.statementPosition !== null) inStatements = true;
      const maybeSeen = seen.add(record.externalId);
      if (maybeSeen) {
        if (direct) throw new NotAllNew();
        repeated += 1;
      }
      await copy.write(direct ? store.recordRow(prefix, record, json) : store.stagingRow(seq, record, maybeSeen, json));
    }
    await writeStatements();
  } catch (error) {
    await copy.abort();
    throw error;
  }
  const counts = direct
    ? { recordCount: seq, newRecordCount: seq, knownRecordCount: 0, conflictingRecordCount: 0 }
    : await store.recordStaged(client, target.fileId, target.source, { records: seq, repeated });
  if (inStatements) {
    // A record's statement is no foreign key (migration 0039): checked here, once for the file.
    const line = await store.selectRecordWithoutStatement(client, target.fileId);
    if (line !== undefined) throw new Error(`${target.filename}, line ${line}: the parser placed a record in no statement`);
  }
  return { ...counts, csvHeader };
}

/**
 * The external ids an import has seen, as 64-bit fingerprints (two 32-bit FNV-1a hashes) in an
 * open-addressing table: an id whose fingerprint is absent is certainly new in the file (its
 * occurrence is 1, staged as such); one whose fingerprint is present may have been seen (a
 * repeated line, or, about once in 2^64 / n, two ids that share a fingerprint), and the database
 * numbers it exactly (`recordStaged`). Memory is bounded: past `slotsMax` slots (8 bytes each,
 * 64 MB at most, four million ids) the table stops growing and every id after is a maybe.
 */
export class SeenExternalIds {
  /** The ids the table tells apart at its largest (past them, every id is a maybe). */
  static readonly idsMax = (1 << 23) / 2;

  private slots = new Uint32Array(2 << 16);
  private count = 0;
  private full = false;

  constructor(private readonly slotsMax = 1 << 23) {}

  /** Adds the id; answers whether it may have been added before. */
  add(externalId: string): boolean {
    if (this.full) return true;
    let high = 0x811c9dc5;
    let low = 0x01000193;
    for (let index = 0; index < externalId.length; index += 1) {
      const code = externalId.charCodeAt(index);
      high = Math.imul(high ^ code, 0x01000193);
      low = Math.imul(low ^ code, 0x5bd1e995) ^ (low >>> 15);
    }
    const first = (high >>> 0) || 1;
    const second = low >>> 0;
    const mask = this.slots.length / 2 - 1;
    for (let slot = first & mask; ; slot = (slot + 1) & mask) {
      const found = this.slots[slot * 2];
      if (found === first && this.slots[slot * 2 + 1] === second) return true;
      if (found === 0) {
        this.slots[slot * 2] = first;
        this.slots[slot * 2 + 1] = second;
        this.count += 1;
        if (this.count * 4 > this.slots.length) this.grow();
        return false;
      }
    }
  }

  private grow(): void {
    if (this.slots.length / 2 >= this.slotsMax) {
      this.full = true;
      return;
    }
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    const mask = this.slots.length / 2 - 1;
    for (let index = 0; index < old.length; index += 2) {
      const first = old[index] as number;
      if (first === 0) continue;
      let slot = first & mask;
      while (this.slots[slot * 2] !== 0) slot = (slot + 1) & mask;
      this.slots[slot * 2] = first;
      this.slots[slot * 2 + 1] = old[index + 1] as number;
    }
  }
}

/** What JSON.stringify escapes in a string: a quote, a backslash, a control character, a (lone) surrogate. */
// eslint-disable-next-line no-control-regex -- the control characters are what the pattern finds
const jsonSpecial = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON value as `stringifyJson` writes it (bigint as an integer); undefined for what JSON leaves out. */
function jsonValue(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      // Most need no escape: quoted without a call of JSON.stringify.
      return jsonSpecial.test(value) ? JSON.stringify(value) : `"${value}"`;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'object':
      if (value === null) return 'null';
      try {
        return JSON.stringify(value);
      } catch {
        return stringifyJson(value); // a bigint inside (camt's and MT940's raw fields)
      }
    default:
      return JSON.stringify(value);
  }
}

/** crypto.hash (Node 20.12 on) is one call and no Hash object; before it, createHash. */
const sha256Hex: (text: string) => string = typeof crypto.hash === 'function'
  ? (text) => crypto.hash('sha256', text, 'hex')
  : (text) => createHash('sha256').update(text).digest('hex');

const jsonKeys = new Map<string, string>();

/** `"key":`, made once per key name. */
function jsonKey(key: string): string {
  let text = jsonKeys.get(key);
  if (text === undefined) {
    text = `${JSON.stringify(key)}:`;
    jsonKeys.set(key, text);
  }
  return text;
}

/**
 * A record's content hash and its references and raw fields as JSON, for its row.
 *
 * - **A CSV row** (Adyen's and Stripe's reports): its content is its values by column name, so a
 *   re-export that orders its columns otherwise or quotes them otherwise is the same record. The
 *   hash (version 2, migration 0042) is the SHA-256 of the header's `namesSha256`, a newline, and
 *   the row's values in the header's `contentOrder` (its columns sorted by name), NUL-separated:
 *   unambiguous, as a value or a name with a NUL is refused and the number of values is the
 *   header's. What a record's other fields hold is read from these values, so they need no hash
 *   of their own. Its raw fields are stored as a JSON array of the values in the file's column
 *   order, the header once with the file (`reconciliation_files.csv_header`).
 * - **A bank entry** (camt.053, MT940: a few records a file): the SHA-256 of its JSON without
 *   where it stands in its file (line, statement position), exactly
 *   `stringifyJson({ ...record, line: undefined, statementPosition: undefined })`, made field by
 *   field (the replacer JSON needs for bigint is costly); its raw fields as a JSON object.
 */
export function recordJson(record: ReconRecord, file: string): store.RecordJson {
  if (record.raw instanceof CsvRow) return csvRecordJson(record, record.raw, file);
  let refs = '{}';
  let raw = '{}';
  let text = '';
  // for…in: a record is a plain object, its own keys in the order Object.keys and JSON.stringify take.
  for (const key in record) {
    if (key === 'line' || key === 'statementPosition') continue;
    const value = jsonValue((record as unknown as Record<string, unknown>)[key]);
    if (value === undefined) continue;
    if (key === 'references') refs = value;
    else if (key === 'raw') raw = value;
    text += (text === '' ? '{' : ',') + jsonKey(key) + value;
  }
  text = text === '' ? '{}' : `${text}}`;
  if (text.includes('\\u0000')) {
    throw fileProblem({ file, line: record.line, field: 'record' }, 'holds a NUL character');
  }
  return { contentSha256: sha256Hex(text), refs, raw };
}

function csvRecordJson(record: ReconRecord, row: CsvRow, file: string): store.RecordJson {
  const { values } = row;
  const joined = values.join(',');
  let raw: string;
  if (jsonSpecial.test(joined)) {
    // A quote, a backslash, a control character or a surrogate somewhere: JSON.stringify escapes it.
    raw = JSON.stringify(values);
    if (raw.includes('\\u0000')) throw fileProblem({ file, line: record.line, field: 'record' }, 'holds a NUL character');
  } else {
    raw = `["${values.join('","')}"]`;
  }
  const order = row.header.contentOrder;
  // Joined, not concatenated: one flat string for the hash to read.
  const ordered = new Array<string>(order.length);
  for (let index = 0; index < order.length; index += 1) ordered[index] = values[order[index] as number] as string;
  const content = `${row.header.namesSha256}\n${ordered.join('\u0000')}`;
  return { contentSha256: sha256Hex(content), refs: jsonValue(record.references) ?? '{}', raw };
}

type Parser = (input: Readable, file: string, onVersion: (version: string) => void) => AsyncIterable<ParsedItem>;

function parserFor(format: ReconFormat): Parser {
  switch (format) {
    case 'adyen_sdr':
      return (input, file) => readAdyenSdr(input, file);
    case 'stripe_payout_reconciliation':
      return (input, file) => readStripePayoutReconciliation(input, file);
    case 'camt053':
      return (input, file, onVersion) => readCamt053(input, file, onVersion);
    case 'mt940':
      return (input, file) => readMt940(input, file);
  }
}

/**
 * The format from the file's first bytes: XML is camt.053 (its parser checks the namespace), a
 * `:20:` or a SWIFT block at a line's start is MT940, a CSV header with Adyen's or Stripe's
 * columns is their report.
 */
/** A `:20:` or a SWIFT block at the start of a line (after an SOH byte, in some files). */
// eslint-disable-next-line no-control-regex -- SOH is what the pattern allows for
const swiftStart = /(^|\n)\u0001?\s*(:20:|\{1:)/;

export function detectFormat(head: Buffer, file: string): ReconFormat {
  const text = head.toString('utf8').replace(/^\uFEFF/, '');
  const start = text.trimStart();
  if (start.startsWith('<')) return 'camt053';
  if (swiftStart.test(text)) return 'mt940';
  const header = start.split(/\r?\n/, 1)[0] ?? '';
  if (header.includes('Psp Reference') && header.includes('Batch Number')) return 'adyen_sdr';
  if (header.includes('balance_transaction_id') && header.includes('automatic_payout_id')) return 'stripe_payout_reconciliation';
  throw fileProblem({ file, line: 0, field: 'format' }, 'not a format Penny reads (an Adyen settlement details report, '
    + 'a Stripe payout_reconciliation.itemized.5 report, camt.053 .001.02 to .001.08, or MT940); '
    + 'pass the format to say which it is');
}

/** Reads the first bytes of a stream and gives back a stream of the whole. */
async function peek(stream: Readable, bytes: number): Promise<{ head: Buffer; rest: Readable }> {
  const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < bytes) {
    const next = await iterator.next();
    if (next.done === true) {
      done = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.length;
  }
  const head = Buffer.concat(chunks);
  async function* whole(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  return { head, rest: Readable.from(whole(), { objectMode: false }) };
}

/** Passes the bytes through, hashing and counting them, and refuses a file over the bound. */
class FileMeter extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private newlines = 0;
  private lastByte = -1;

  constructor(private readonly bytesMax: number, private readonly onProgress?: (bytesRead: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.bytesMax) {
      callback(new PennyError({ code: 'request_too_large',
        message: `The file is over ${this.bytesMax} bytes, the most an import takes.` }));
      return;
    }
    this.hash.update(chunk);
    for (let index = chunk.indexOf(10); index !== -1; index = chunk.indexOf(10, index + 1)) this.newlines += 1;
    if (chunk.length > 0) this.lastByte = chunk[chunk.length - 1] ?? -1;
    this.onProgress?.(this.bytes);
    callback(null, chunk);
  }

  digest(): { contentSha256: string; bytes: number; lines: number } {
    const lines = this.newlines + (this.bytes > 0 && this.lastByte !== 10 ? 1 : 0);
    return { contentSha256: this.hash.digest('hex'), bytes: this.bytes, lines };
  }
}
