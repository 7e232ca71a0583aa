import { PennyError } from '../errors.js';

/**
 * Why a file cannot be read: the file, the line and the field, and what is wrong there. Every
 * parser throws this, and the import refuses the file whole with it (400
 * `reconciliation_file_invalid` over HTTP, exit 1 on the CLI); nothing of the file is kept.
 */
export interface FileProblemAt {
  readonly file: string;
  /** 1-based; 0 when the problem is the file as a whole (no statement in it, an unknown format). */
  readonly line: number;
  readonly field: string;
}

export function fileProblem(at: FileProblemAt, problem: string): PennyError {
  const where = at.line > 0 ? `${at.file}, line ${at.line} (${at.field})` : `${at.file} (${at.field})`;
  return new PennyError({
    code: 'reconciliation_file_invalid',
    message: `${where}: ${problem}`,
    details: { file: at.file, line: at.line, field: at.field },
  });
}

/** A problem found below the parser, which knows the value but not where it stands. */
export class ValueProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueProblem';
  }
}

/** Runs `read` and places a ValueProblem it throws at `at`. */
export function at<T>(where: FileProblemAt, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ValueProblem) throw fileProblem(where, error.message);
    throw error;
  }
}
