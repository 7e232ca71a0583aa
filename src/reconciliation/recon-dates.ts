import { ValueProblem } from './recon-problem.js';
import { invalid } from '../validation.js';

/**
 * Dates from statements and reports, checked to be real days (30 February is refused) and kept
 * as 'YYYY-MM-DD', a UTC day (decisions.md, "Time": reconciliation dates are UTC days).
 */
export function isRealDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  if (month !== 2) return day <= (month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (leap ? 29 : 28);
}

function dayText(year: number, month: number, day: number): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/**
 * 'YYYY-MM-DD', or a date and time ('YYYY-MM-DD HH:MM:SS', ISO 8601 'YYYY-MM-DDTHH:MM:SS[.fraction][zone]').
 * A time with a zone is read as that instant's UTC day; a time without one is taken as written
 * (the report says its zone in a column of its own, and its day is the day it names).
 */
export function readDay(text: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/
    .exec(text.trim());
  if (match === null) throw new ValueProblem(`"${clip(text)}" is not a date (YYYY-MM-DD)`);
  const [, y = '', m = '', d = '', hh, mm, ss, zone] = match;
  const [year, month, day] = [Number(y), Number(m), Number(d)];
  if (!isRealDay(year, month, day)) throw new ValueProblem(`"${clip(text)}" is not a date: no such day`);
  if (hh !== undefined && (Number(hh) > 23 || Number(mm) > 59 || Number(ss ?? '0') > 59)) {
    throw new ValueProblem(`"${clip(text)}" is not a time of day`);
  }
  if (zone === undefined || zone === 'Z' || hh === undefined) return dayText(year, month, day);
  const offset = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
  const sign = offset?.[1] === '-' ? -1 : 1;
  const offsetMs = sign * (Number(offset?.[2]) * 60 + Number(offset?.[3])) * 60_000;
  const ms = Date.UTC(year, month - 1, day, Number(hh), Number(mm), Number(ss ?? '0')) - offsetMs;
  return new Date(ms).toISOString().slice(0, 10);
}

/** SWIFT's YYMMDD: years 80–99 are 19YY, the rest 20YY. */
export function readSwiftDay(text: string): string {
  const match = /^(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (match === null) throw new ValueProblem(`"${clip(text)}" is not a date (YYMMDD)`);
  const yy = Number(match[1]);
  const year = yy >= 80 ? 1900 + yy : 2000 + yy;
  const [month, day] = [Number(match[2]), Number(match[3])];
  if (!isRealDay(year, month, day)) throw new ValueProblem(`"${text}" is not a date: no such day`);
  return dayText(year, month, day);
}

/**
 * MT940's entry date is MMDD with no year: the year of the value date, or the one before or after
 * it, whichever puts the entry date nearest (an entry booked 31 December for a value date of
 * 2 January belongs to the year before).
 */
export function readSwiftEntryDay(text: string, valueDay: string): string {
  const match = /^(\d{2})(\d{2})$/.exec(text);
  if (match === null) throw new ValueProblem(`"${clip(text)}" is not an entry date (MMDD)`);
  const [month, day] = [Number(match[1]), Number(match[2])];
  const valueYear = Number(valueDay.slice(0, 4));
  const valueMs = Date.parse(`${valueDay}T00:00:00Z`);
  const candidates = [valueYear - 1, valueYear, valueYear + 1].filter((year) => isRealDay(year, month, day));
  if (candidates.length === 0) throw new ValueProblem(`"${text}" is not an entry date: no such day`);
  const distance = (year: number) => Math.abs(Date.UTC(year, month - 1, day) - valueMs);
  const nearest = candidates.reduce((best, year) => (distance(year) < distance(best) ? year : best));
  return dayText(nearest, month, day);
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * The day a run reconciles as of: 'YYYY-MM-DD' (a real day, not after today), or today on
 * Penny's clock when absent. A bad value is the caller's mistake, named by `param`.
 */
export function readAsOfDay(value: unknown, param: string, todayOf: () => string): string {
  if (value === undefined || value === null || value === '') return todayOf();
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    throw invalid(param, `${param} must be a day, YYYY-MM-DD.`);
  }
  let day: string;
  try {
    day = readDay(value);
  } catch (error) {
    if (error instanceof ValueProblem) throw invalid(param, `${param} must be a real day: ${error.message}.`);
    throw error;
  }
  const today = todayOf();
  // A run measures windows to its day: a day to come would call missing what is only pending.
  if (day > today) throw invalid(param, `${param} must not be after today (${today}).`);
  return day;
}
