import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { parse, CsvError, type InfoRecord, type Options } from 'csv-parse';
import { fileProblem } from './recon-problem.js';

/**
 * The rows of a CSV file read by header name, streamed: each row with the line it ends on. The
 * header must hold every column in `required` (the first line is refused otherwise, naming the
 * columns missing); a row of the wrong width or an unclosed quote refuses the file at its line.
 * Values are kept as text, trimmed.
 *
 * csv-parse reads every file, or the part of it, that needs a CSV parser: a file whose first line
 * does not end in LF or CRLF (CR-only files, no line break), and everything from the first line
 * that holds a quote or a stray carriage return. Lines before that, plain comma-separated text,
 * are split at commas here, trimmed exactly as csv-parse trims (String.prototype.trim: the same
 * whitespace set), which is five to ten times faster than its per-byte state machine; a
 * settlement report of a million lines usually has no quote at all. The rows are the same either
 * way (test/reconciliation/csv-rows.test.ts checks both ways against each other).
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

/** How far to look for the first line break before leaving the whole file to csv-parse. */
const firstLineCharsMax = 1024 * 1024;

export async function* csvRows(input: Readable, shape: CsvShape): AsyncGenerator<CsvRow> {
  const chunks = decodedChunks(input);
  let header: readonly string[] | undefined;
  let jsonKeys: readonly string[] | undefined;
  let template: Record<string, string> = {};
  const toRow = (line: number, fields: readonly string[], plain = false): CsvRow | undefined => {
    if (header === undefined) {
      header = checkHeader(fields, shape);
      // An object's keys keep their order unless they look like array indexes; __proto__ is no key;
      // the JSON is free of backslashes (the import copies it as it is).
      jsonKeys = header.every((name) => !/^(0|[1-9]\d*)$/.test(name) && name !== '__proto__' && !jsonEscaped.test(name))
        ? header.map((name, index) => `${index === 0 ? '{' : ','}${JSON.stringify(name)}:`) : undefined;
      // Each row is a copy of an object with every column (JSON.parse makes it with a shape of its
      // own, its values then replaced in place): many times faster than adding 30-odd keys to {}.
      template = JSON.parse(`{${header.map((name) => `${JSON.stringify(name)}:""`).join(',')}}`) as Record<string, string>;
      return undefined;
    }
    if (fields.length !== header.length) {
      throw fileProblem({ file: shape.file, line, field: 'row' }, 'not readable as CSV: Invalid Record Length: '
        + `columns length is ${header.length}, got ${fields.length} on line ${line}`);
    }
    const values: Record<string, string> = { ...template };
    for (let index = 0; index < fields.length; index += 1) {
      const name = header[index] as string;
      // An own property named __proto__, as csv-parse makes (an assignment would set the prototype).
      if (name === '__proto__') {
        Object.defineProperty(values, name,
          { value: fields[index], enumerable: true, writable: true, configurable: true });
      } else {
        values[name] = fields[index] as string;
      }
    }
    if (plain && jsonKeys !== undefined) {
      let json = '';
      for (let index = 0; index < fields.length; index += 1) json += `${jsonKeys[index] as string}"${fields[index] as string}"`;
      lastValues = values;
      lastValuesJson = `${json}}`;
    }
    return { line, values };
  };

  let text = '';
  let ending: '\n' | '\r\n' | undefined;
  // The first line break says how lines end, as csv-parse would find it.
  for (;;) {
    const newline = text.indexOf('\n');
    const carriage = text.indexOf('\r');
    // A carriage return at the end of the text may be the first half of CRLF: read on.
    if (newline !== -1 || (carriage !== -1 && carriage < text.length - 1) || text.length > firstLineCharsMax) {
      if (newline !== -1 && (carriage === -1 || carriage >= newline - 1)) {
        ending = newline > 0 && carriage === newline - 1 ? '\r\n' : '\n';
      }
      break;
    }
    const next = await chunks.next();
    if (next.done === true) break;
    text += next.value;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  let line = 0;
  if (ending !== undefined) {
    for (;;) {
      let start = 0;
      let handOver = false;
      for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
        let content = text.slice(start, end);
        if (ending === '\r\n') {
          if (content.charCodeAt(content.length - 1) !== 13) {
            handOver = true;
            break;
          }
          content = content.slice(0, -1);
        }
        if (content.includes('"') || content.includes('\r')) {
          handOver = true;
          break;
        }
        line += 1;
        start = end + 1;
        if (content === '') continue;
        const fields = content.split(',');
        for (let index = 0; index < fields.length; index += 1) fields[index] = (fields[index] as string).trim();
        const row = toRow(line, fields, !jsonEscaped.test(content));
        if (row !== undefined) yield row;
      }
      text = text.slice(start);
      if (handOver) break;
      const next = await chunks.next();
      if (next.done === true) break;
      text += next.value;
    }
  }
  // The rest (or the whole file) through csv-parse, its lines counted from where it starts.
  yield* libraryRows({ ending, linesRead: line, text, chunks, shape, toRow });
  if (header === undefined) {
    throw fileProblem({ file: shape.file, line: 0, field: 'header' }, `${shape.what} is empty: it has no header line`);
  }
}

/** What JSON.stringify escapes in a string: a quote (never on a plain line), a backslash, controls, lone surrogates. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const jsonEscaped = /[\\"\u0000-\u001f\ud800-\udfff]/;

/**
 * The JSON of the last row's values (exactly `JSON.stringify(row.values)`), when it was made while
 * splitting a plain line: the import, which takes each record as it is read, hashes and stores it
 * without stringifying the row again (one row kept: a WeakMap of every row costs the collector
 * more than it saves). It holds no backslash and no control character.
 */
let lastValues: object | undefined;
let lastValuesJson = '';

export function csvValuesJson(values: object): string | undefined {
  return values === lastValues ? lastValuesJson : undefined;
}

/** A column's value; '' when the column is absent (optional columns). */
export function column(row: CsvRow, name: string): string {
  return row.values[name] ?? '';
}

function checkHeader(header: readonly string[], shape: CsvShape): readonly string[] {
  const missing = shape.required.filter((name) => !header.includes(name));
  if (missing.length > 0) {
    throw fileProblem({ file: shape.file, line: 1, field: missing.join(', ') },
      `${shape.what} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) throw fileProblem({ file: shape.file, line: 1, field: name }, `the column ${name} appears twice`);
    seen.add(name);
  }
  return header;
}

async function* decodedChunks(input: Readable): AsyncGenerator<string, void, undefined> {
  const decoder = new StringDecoder('utf8');
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (text !== '') yield text;
  }
  const last = decoder.end();
  if (last !== '') yield last;
}

/**
 * csv-parse over what is left: `text` (from the start of a line) and the chunks after it. The
 * lines already read are given back to it as empty lines (which it skips), so the line numbers it
 * reports, in its rows and its errors, are the file's. Each row is checked as csv-parse reads it
 * (`on_record`), so a row of the wrong width is refused before an error further on.
 */
async function* libraryRows(rest: {
  readonly ending: '\n' | '\r\n' | undefined;
  readonly linesRead: number;
  readonly text: string;
  readonly chunks: AsyncGenerator<string, void, undefined>;
  readonly shape: CsvShape;
  readonly toRow: (line: number, fields: readonly string[]) => CsvRow | undefined;
}): AsyncGenerator<CsvRow> {
  const { ending, linesRead, chunks, shape, toRow } = rest;
  let text = rest.text;
  if (text === '' && linesRead > 0) {
    const next = await chunks.next();
    if (next.done === true) return;
    text = next.value;
  }
  const options: Options<CsvRow, string[]> = {
    bom: true,
    cast: false,
    trim: true,
    skip_empty_lines: true,
    relax_column_count: true,
    on_record: (record: string[], context: InfoRecord) => toRow(context.lines, record) ?? null,
  };
  if (ending !== undefined) options.record_delimiter = ending;
  // Its typings tie on_record to the columns option; the rows it yields are on_record's.
  const parser = parse(options as unknown as Options);
  async function* source(): AsyncGenerator<string> {
    yield (ending ?? '').repeat(linesRead) + text;
    for (;;) {
      const next = await chunks.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  const input = Readable.from(source(), { objectMode: false });
  input.on('error', (error) => parser.destroy(error));
  try {
    yield* input.pipe(parser) as AsyncIterable<CsvRow>;
  } catch (error) {
    if (error instanceof CsvError) {
      const line = (error as CsvError & { lines?: number }).lines ?? 0;
      throw fileProblem({ file: shape.file, line, field: 'row' }, `not readable as CSV: ${error.message}`);
    }
    throw error;
  }
}
