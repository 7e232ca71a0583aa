import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Parser, CsvError, type Options } from 'csv-parse';
import { fileProblem } from './recon-problem.js';

/**
 * The rows of a CSV file read by header name, streamed through csv-parse: each row with the line
 * it ends on, its values in the file's column order, and the file's header (one object per file,
 * so a row is its values and nothing else). The header must hold every column in `required` (the
 * first line is refused otherwise, naming the columns missing); a row of the wrong width or an
 * unclosed quote refuses the file at its line. Values are kept as text, trimmed.
 */
export interface CsvShape {
  readonly file: string;
  readonly required: readonly string[];
  /** What the file is, for the message ("the Adyen settlement details report"). */
  readonly what: string;
}

/** A file's header line: its column names, where each stands, and the order a row's content hash takes them in. */
export class CsvHeader {
  /**
   * The columns' positions in the order of their names (code point order, as UTF-8 bytes and
   * PostgreSQL's "C" collation sort): a row's content is its values in this order, so a re-export
   * with its columns in another order is the same content (recon-import.ts, `recordJson`).
   */
  readonly contentOrder: readonly number[];
  /** SHA-256 (hex) of the names in `contentOrder`, NUL-separated: the header's part of each row's content hash. */
  readonly namesSha256: string;
  private readonly positions = new Map<string, number>();

  constructor(readonly names: readonly string[]) {
    names.forEach((name, index) => this.positions.set(name, index));
    const bytes = names.map((name) => Buffer.from(name, 'utf8'));
    this.contentOrder = names.map((_, index) => index)
      .sort((left, right) => Buffer.compare(bytes[left] as Buffer, bytes[right] as Buffer));
    this.namesSha256 = createHash('sha256')
      .update(this.contentOrder.map((index) => names[index]).join('\u0000'), 'utf8').digest('hex');
  }

  /** The position of a column, undefined when the file has no such column. */
  position(name: string): number | undefined {
    return this.positions.get(name);
  }
}

/** A row: its values in its file's column order, read by name through its header. */
export class CsvRow {
  constructor(readonly line: number, readonly header: CsvHeader, readonly values: readonly string[]) {}

  /** The row as an object by column name, in the file's column order (what a record's `raw` showed per row). */
  toObject(): Record<string, string> {
    const object: Record<string, string> = {};
    this.header.names.forEach((name, index) => { object[name] = this.values[index] as string; });
    return object;
  }
}

/**
 * csv-parse's stream with each record's line appended to its fields: read from the parser's own
 * count (`info.lines`) as it pushes the record. The `on_record` hook gives the line too, but with
 * a context object built per record (about 2 µs a line of a large report); `columns`, `info` and
 * `trim` cost more than half of csv-parse's time (measured: 42,000 rows/s with them, 67,000
 * without): the header is mapped and the values trimmed here instead.
 */
class LineNumberingParser extends Parser {
  override push(record: unknown, encoding?: BufferEncoding): boolean {
    if (Array.isArray(record)) record.push(this.info.lines);
    return super.push(record, encoding);
  }
}

export async function* csvRows(input: Readable, shape: CsvShape): AsyncGenerator<CsvRow> {
  const options: Options = {
    bom: true,
    cast: false,
    skip_empty_lines: true,
    // Widths are checked here against the header, so a header that lacks a column is named first.
    relax_column_count: true,
  };
  const parser = new LineNumberingParser(options);
  input.on('error', (error) => parser.destroy(error));
  const rows = input.pipe(parser);
  let header: CsvHeader | undefined;
  try {
    for await (const fields of rows as AsyncIterable<(string | number)[]>) {
      const line = fields.pop() as number;
      const values = fields as string[];
      for (let index = 0; index < values.length; index += 1) values[index] = (values[index] as string).trim();
      if (header === undefined) {
        header = new CsvHeader(checkHeader(values, shape));
        continue;
      }
      if (values.length !== header.names.length) {
        throw fileProblem({ file: shape.file, line, field: 'row' }, 'not readable as CSV: Invalid Record '
          + `Length: columns length is ${header.names.length}, got ${values.length} on line ${line}`);
      }
      yield new CsvRow(line, header, values);
    }
  } catch (error) {
    if (error instanceof CsvError) {
      const line = (error as CsvError & { lines?: number }).lines ?? 0;
      throw fileProblem({ file: shape.file, line, field: 'row' }, `not readable as CSV: ${error.message}`);
    }
    throw error;
  }
  if (header === undefined) {
    throw fileProblem({ file: shape.file, line: 0, field: 'header' }, `${shape.what} is empty: it has no header line`);
  }
}

/**
 * The header line: every required column, each once, no name an object cannot hold as its own
 * key, and no NUL (a content hash separates names and values with NUL).
 */
function checkHeader(header: readonly string[], shape: CsvShape): readonly string[] {
  const missing = shape.required.filter((column) => !header.includes(column));
  if (missing.length > 0) {
    throw fileProblem({ file: shape.file, line: 1, field: missing.join(', ') },
      `${shape.what} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  const seen = new Set<string>();
  for (const column of header) {
    if (seen.has(column)) {
      throw fileProblem({ file: shape.file, line: 1, field: column }, `the column ${column} appears twice`);
    }
    if (column === '__proto__') {
      throw fileProblem({ file: shape.file, line: 1, field: column }, 'a column cannot be named __proto__');
    }
    if (column.includes('\u0000')) {
      throw fileProblem({ file: shape.file, line: 1, field: 'header' }, 'a column name holds a NUL character');
    }
    seen.add(column);
  }
  return [...header];
}

/** A column's value; '' when the column is absent (optional columns). */
export function column(row: CsvRow, name: string): string {
  const position = row.header.position(name);
  return position === undefined ? '' : row.values[position] as string;
}
