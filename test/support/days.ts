import { advanceClock, nowMs } from '../../src/clock.js';

/** Today on Penny's clock (the controlled one in these tests), as a UTC day. */
export function today(): string {
  return new Date(nowMs()).toISOString().slice(0, 10);
}

/** Moves the controlled clock to the next day's noon, a day no other test has booked anything on; returns it. */
export function freshDay(): string {
  const ms = nowMs();
  advanceClock(86_400_000 - (ms % 86_400_000) + 43_200_000);
  return today();
}
