import fs from 'node:fs';

/**
 * Named places where a crash test kills Penny (SIGKILL, as `kill -9` would), to prove a retry
 * completes the work exactly once. Armed only by PENNY_FAILPOINT=<name> together with
 * PENNY_FAILPOINT_FILE=<path>: the process dies at the named point only while that file exists,
 * and deletes it first, so the restarted process runs through. Unset, this is a no-op.
 */
export type FailpointName = 'after_key_claim' | 'before_psp_call' | 'after_psp_reply' | 'after_commit'
  | 'after_inbox_insert' | 'during_webhook_delivery';

export function failpoint(name: FailpointName): void {
  if (process.env.PENNY_FAILPOINT !== name) return;
  const file = process.env.PENNY_FAILPOINT_FILE;
  if (file === undefined || !fs.existsSync(file)) return;
  fs.rmSync(file, { force: true });
  process.kill(process.pid, 'SIGKILL');
}
