import type { Readable } from 'node:stream';
import { parse, CsvError, type InfoRecord, type Options } from 'csv-parse';
import { fileProblem } from './recon-problem.js';

/**
 * The rows of a CSV file read by header name, streamed through csv-parse's stream API: each row
 * with the line it ends on. The header must hold every column in `required` (the first line is
 * refused otherwise, naming the columns missing); a row of the wrong width or an unclosed quote
 * refuses the file at its line. Values are kept as text, trimmed.
 */
export interface CsvRow {
  readonly line: number;
  readonly values: Readonly<Record<string, string>>;
}

export interface CsvShape {
  readonly file: string;
  readonly required: readonly string[];
  /** What the file is, for the message ("the Adyen settlement details report"). */
  readonly what: string;
}

export async function* csvRows(input: Readable, shape: CsvShape): AsyncGenerator<CsvRow> {
  // Fields as arrays with their line (on_record), trimmed here: csv-parse's own `columns`, `info`
  // and `trim` cost more than half of its time on a large report (measured: 42,000 rows/s with
  // them, 67,000 without, on the same file).
  const parser = parse({
    bom: true,
    cast: false,
    skip_empty_lines: true,
    // Widths are checked here against the header, so a header that lacks a column is named first.
    relax_column_count: true,
    on_record: ((record: string[], context: InfoRecord) => ({ line: context.lines, fields: record })) as
      unknown as Options['on_record'],
  });
  input.on('error', (error) => parser.destroy(error));
  const rows = input.pipe(parser);
  let header: readonly string[] | undefined;
  try {
    for await (const item of rows as AsyncIterable<{ line: number; fields: string[] }>) {
      if (header === undefined) {
        header = checkHeader(item.fields.map((field) => field.trim()), shape);
        continue;
      }
      if (item.fields.length !== header.length) {
        throw fileProblem({ file: shape.file, line: item.line, field: 'row' }, 'not readable as CSV: Invalid Record '
          + `Length: columns length is ${header.length}, got ${item.fields.length} on line ${item.line}`);
      }
      const values: Record<string, string> = {};
      for (let index = 0; index < header.length; index += 1) {
        values[header[index] as string] = (item.fields[index] as string).trim();
      }
      yield { line: item.line, values };
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

/** The header line: every required column, each once, and no name an object cannot hold as its own key. */
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
    seen.add(column);
  }
  return header;
}

/** A column's value; '' when the column is absent (optional columns). */
export function column(row: CsvRow, name: string): string {
  return row.values[name] ?? '';
}
