/**
 * The one clock every time-dependent rule reads (authorization expiry, webhook retry schedule,
 * recovery schedule, settlement days). `system` is the wall clock. `controlled` (PENNY_CLOCK)
 * is the wall clock plus an offset that only moves forward, through
 * POST /v1/test_helpers/clock/advance, so tests and simulations compress days into seconds.
 */
export type ClockMode = 'system' | 'controlled';

let mode: ClockMode = 'system';
let offsetMs = 0;

export function configureClock(next: ClockMode): void {
  mode = next;
  offsetMs = 0;
}

export function clockMode(): ClockMode {
  return mode;
}

export function nowMs(): number {
  return Date.now() + offsetMs;
}

export function now(): Date {
  return new Date(nowMs());
}

export function nowIso(): string {
  return now().toISOString();
}

/** Moves a controlled clock forward; refused (a programmer error here) for the system clock. */
export function advanceClock(byMs: number): void {
  if (mode !== 'controlled') throw new Error('only a controlled clock can be advanced');
  if (!Number.isSafeInteger(byMs) || byMs < 0) throw new Error(`a clock moves forward only, not by ${byMs} ms`);
  offsetMs += byMs;
}

/** The controlled clock's offset from the wall clock, so another process can follow it. */
export function clockOffsetMs(): number {
  return offsetMs;
}

/** Sets a controlled clock to an offset it was told about, never backwards. */
export function followClockOffset(targetOffsetMs: number): void {
  if (mode !== 'controlled') throw new Error('only a controlled clock can follow another');
  if (targetOffsetMs > offsetMs) offsetMs = targetOffsetMs;
}
