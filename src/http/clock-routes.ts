import type { FastifyInstance, FastifyRequest } from 'fastify';
import { advanceClock, clockMode, clockOffsetMs, nowMs } from '../clock.js';
import { PennyError } from '../errors.js';
import { invalid, missing, readObject } from '../validation.js';

/**
 * POST /v1/test_helpers/clock/advance (operator key): moves a controlled clock forward, Penny's
 * and the sandbox PSP's together, so tests and simulations compress days into seconds.
 * Refused when the clock is the system clock.
 */
const durationUnitsMs: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const advanceMaxMs = 366 * 86_400_000;

export function registerClockRoutes(app: FastifyInstance, dependencies: {
  checkOperator: (request: FastifyRequest) => void;
  /** Services on their own clocks (a sandbox PSP in another process) told the new offset. */
  followers: readonly string[];
}): void {
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => dependencies.checkOperator(request));
    scope.post('/v1/test_helpers/clock/advance', async (request) => {
      if (clockMode() !== 'controlled') {
        throw new PennyError({ code: 'clock_not_controlled',
          message: 'The clock is the system clock; start Penny with PENNY_CLOCK=controlled to advance it.' });
      }
      const body = readObject(request.body ?? {}, '', ['by']);
      if (body.by === undefined) throw missing('by');
      advanceClock(parseDurationMs(body.by));
      await Promise.all(dependencies.followers.map((url) => fetch(`${url}/control/clock`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ offset_ms: clockOffsetMs() }), signal: AbortSignal.timeout(5000),
      })));
      return { object: 'test_helpers.clock', now: new Date(nowMs()).toISOString(), offset_ms: clockOffsetMs() };
    });
  });
}

/** `90s`, `15m`, `2h`, `3d`, or a number of seconds. */
export function parseDurationMs(value: unknown): number {
  // Not String(value): a form's object (by[a]=x) has no prototype, and String() throws on it.
  const text = typeof value === 'number' ? `${value}s` : typeof value === 'string' ? value : '';
  const match = /^(\d{1,9})([smhd])$/.exec(text);
  const unit = match === null ? undefined : durationUnitsMs[match[2] ?? ''];
  const ms = match === null || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms > advanceMaxMs) {
    throw invalid('by', 'by is a duration such as 90s, 15m, 2h or 3d, of at most 366 days.');
  }
  return ms;
}
