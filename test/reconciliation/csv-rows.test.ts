import { Readable } from 'node:stream';
import { parse, CsvError } from 'csv-parse';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvRows, csvValuesJson, type CsvRow, type CsvShape } from '../../src/reconciliation/csv-rows.js';
import { fileProblem } from '../../src/reconciliation/recon-problem.js';

const shape: CsvShape = { file: 'f.csv', required: ['A', 'B'], what: 'the test report' };

type Outcome = { rows: CsvRow[] } | { error: unknown };

async function outcome(rows: AsyncIterable<CsvRow>): Promise<Outcome> {
  const collected: CsvRow[] = [];
  try {
    for await (const row of rows) collected.push(row);
    return { rows: collected };
  } catch (error) {
    return { error: (error as { details?: unknown }).details ?? String(error) };
  }
}

/** The reading every file had before the plain-line path: csv-parse alone, columns by header. */
async function* referenceRows(input: Readable): AsyncGenerator<CsvRow> {
  let headerSeen = false;
  const parser = parse({
    bom: true, cast: false, trim: true, skip_empty_lines: true, relax_column_count: false, info: true,
    columns: (header: string[]) => {
      headerSeen = true;
      const missing = shape.required.filter((column) => !header.includes(column));
      if (missing.length > 0) throw fileProblem({ file: shape.file, line: 1, field: missing.join(', ') }, 'lacks');
      const twice = header.find((column, index) => header.indexOf(column) !== index);
      if (twice !== undefined) throw fileProblem({ file: shape.file, line: 1, field: twice }, 'twice');
      return header;
    },
  });
  try {
    type Item = { record: Record<string, string>; info: { lines: number } };
    for await (const item of input.pipe(parser) as AsyncIterable<Item>) {
      yield { line: item.info.lines, values: item.record };
    }
  } catch (error) {
    if (error instanceof CsvError) {
      throw fileProblem({ file: shape.file, line: (error as CsvError & { lines?: number }).lines ?? 0, field: 'row' }, 'csv');
    }
    throw error;
  }
  if (!headerSeen) throw fileProblem({ file: shape.file, line: 0, field: 'header' }, 'empty');
}

function chunked(text: string, cuts: readonly number[]): Readable {
  const bytes = Buffer.from(text, 'utf8');
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, point));
    from = point;
  }
  return Readable.from(chunks.filter((chunk) => chunk.length > 0), { objectMode: false });
}

/** Fields of plain text mostly, sometimes quoted, spaced, with stray CR or LF or a lone quote. */
const field = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'bc', '', ' d ', '1.00', '\u00a0e', 'f\tg', 'é', '\uFEFFh', 'i\\j', '😀', '\ud800') },
  { weight: 1, arbitrary: fc.constantFrom('"q"', '"x,y"', '"two\nlines"', '"a""b"', ' "s" ', 'x"y', '"open', 'r\rs', '\r') },
);
const line = fc.array(field, { minLength: 1, maxLength: 4 }).map((fields) => fields.join(','));

describe('csvRows', () => {
  it('reads any file to the same rows, lines and errors as csv-parse alone, however it is split', async () => {
    await fc.assert(fc.asyncProperty(
      fc.constantFrom('A,B,C', 'A, B ,C', '\uFEFFA,B,C', 'A,A,B', 'A,C', '"A",B,C', 'B,1,A', 'A,B,__proto__'),
      fc.array(fc.oneof({ weight: 8, arbitrary: line }, { weight: 1, arbitrary: fc.constant('') }), { maxLength: 8 }),
      fc.constantFrom('\n', '\r\n', '\r'),
      fc.boolean(),
      fc.array(fc.nat(), { maxLength: 4 }),
      async (header, lines, ending, finalEnding, cuts) => {
        const text = [header, ...lines].join(ending) + (finalEnding ? ending : '');
        const actual = await outcome(csvRows(chunked(text, cuts), shape));
        const expected = await outcome(referenceRows(chunked(text, [])));
        expect(actual).toEqual(expected);
        for (const row of 'rows' in actual ? actual.rows : []) {
          expect(csvValuesJson(row.values) ?? JSON.stringify(row.values)).toBe(JSON.stringify(row.values));
        }
      }), { numRuns: 3000 });
  });

  it('reads a file of plain lines with the line each row ends on, and refuses a short row by its line', async () => {
    const text = 'A,B,C\r\n1, 2 ,3\r\n\r\n4,5,6\r\n7,8\r\n';
    const rows: CsvRow[] = [];
    await expect((async () => {
      for await (const row of csvRows(Readable.from([Buffer.from(text)]), shape)) rows.push(row);
    })()).rejects.toMatchObject({ details: { line: 5, field: 'row' } });
    expect(rows).toEqual([{ line: 2, values: { A: '1', B: '2', C: '3' } }, { line: 4, values: { A: '4', B: '5', C: '6' } }]);
  });
});
