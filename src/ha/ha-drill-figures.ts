/** The failover drill's figures (scripts/ha-drill.ts, `npm run test:ha`): pure, so they are tested alone. */

export interface ProbeAnswer {
  readonly sentMs: number;
  readonly answeredMs: number;
  readonly ok: boolean;
}

/**
 * Seconds from the fault until a write succeeds again: the first 2xx answer to a probe sent after
 * the first probe, sent after the fault, that failed (an error status or no answer in 2 s). A probe
 * sent just after the fault can still be answered before it bites; when none has failed 10 s after
 * the fault, writes were never refused: 0. Undefined while it cannot be said yet.
 */
export function unavailableSeconds(answers: readonly ProbeAnswer[], faultMs: number): number | undefined {
  const after = answers.filter((answer) => answer.sentMs >= faultMs);
  const firstFailure = after.findIndex((answer) => !answer.ok);
  if (firstFailure === -1) {
    return after.some((answer) => answer.ok && answer.sentMs >= faultMs + 10_000) ? 0 : undefined;
  }
  const back = after.slice(firstFailure).find((answer) => answer.ok);
  return back === undefined ? undefined : Math.round((back.answeredMs - faultMs) / 100) / 10;
}
