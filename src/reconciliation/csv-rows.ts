import type { Readable } from 'node:stream';
import { parse, CsvError } from 'csv-parse';
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
  let headerSeen = false;
  const parser = parse({
    bom: true,
    cast: false,
    trim: true,
    skip_empty_lines: true,
    relax_column_count: false,
    info: true,
    columns: (header: string[]) => {
      headerSeen = true;
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
        seen.add(column);
      }
      return header;
    },
  });
  input.on('error', (error) => parser.destroy(error));
  const rows = input.pipe(parser);
  try {
    for await (const item of rows as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      yield { line: item.info.lines, values: item.record };
    }
  } catch (error) {
    if (error instanceof CsvError) {
      const line = (error as CsvError & { lines?: number }).lines ?? 0;
      throw fileProblem({ file: shape.file, line, field: 'row' }, `not readable as CSV: ${error.message}`);
    }
    throw error;
  }
  if (!headerSeen) {
    throw fileProblem({ file: shape.file, line: 0, field: 'header' }, `${shape.what} is empty: it has no header line`);
  }
}

/** A column's value; '' when the column is absent (optional columns). */
export function column(row: CsvRow, name: string): string {
  return row.values[name] ?? '';
}
