import type { Logger } from 'pino';
import { coerceError } from './errors.js';

/**
 * Background loops (sealer, balance compaction, hold expiry). Each runs its task, waits its
 * interval, and runs again; a failure is logged and retried at the next tick. stop() waits for a
 * running task to finish.
 */
export interface Worker {
  stop(): Promise<void>;
}

export function startWorker(
  name: string,
  intervalMs: number,
  task: () => Promise<unknown>,
  logger: Logger,
): Worker {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = task()
      .then(() => undefined, (error: unknown) => {
        logger.error({ err: coerceError(error), worker: name }, 'background task failed');
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
