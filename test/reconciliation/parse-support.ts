import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ParsedItem, ReconRecord, ReconStatement } from '../../src/reconciliation/recon-records.js';

/** Where the copied fixtures are (each folder keeps its source's licence). */
export const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'reconciliation');

export interface Parsed {
  readonly records: ReconRecord[];
  readonly statements: ReconStatement[];
}

type Reader = (input: Readable, file: string) => AsyncIterable<ParsedItem>;

export async function parseFixture(reader: Reader, relative: string): Promise<Parsed> {
  return collect(reader(fs.createReadStream(path.join(fixtures, relative)), relative));
}

export async function parseText(reader: Reader, text: string, file = 'test-file'): Promise<Parsed> {
  return collect(reader(Readable.from([Buffer.from(text, 'utf8')]), file));
}

async function collect(items: AsyncIterable<ParsedItem>): Promise<Parsed> {
  const records: ReconRecord[] = [];
  const statements: ReconStatement[] = [];
  for await (const item of items) {
    if (item.kind === 'record') records.push(item.record);
    else statements.push(item.statement);
  }
  return { records, statements };
}

/** The check of each statement as one comparable line: `ref check difference`. */
export function checks(statements: readonly ReconStatement[]): string[] {
  return statements.map((statement) => {
    const check = statement.balanceCheck;
    return `${statement.statementRef} ${check.result}${check.result === 'mismatch' ? ` ${check.differenceMinor}` : ''}`;
  });
}
