import path from 'node:path';
import type { Logger } from 'pino';
import { configError, type PennyConfig } from '../config.js';
import { readOrCreateSecretFile } from '../secret-key.js';
import { createPool } from '../db/pool.js';
import { startWorker } from '../workers.js';
import { buildSandboxPsp } from './psp-server.js';
import { SandboxWebhookSender } from './psp-webhooks.js';
import { parseFaultProfile, type FaultProfile } from './psp-faults.js';

/**
 * Runs the sandbox PSP: its HTTP API on its own port, its own pool, and its two loops (the
 * changes due on its clock: pending authorizations, payouts, disputes; webhooks sending).
 * `npm start` runs it beside Penny unless PENNY_SANDBOX_PSP=off; `penny sandbox-psp` runs it alone.
 */
export interface RunningSandboxPsp {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startSandboxPsp(options: {
  databaseUrl: string;
  host: string;
  port: number;
  webhookUrl: string | undefined;
  webhookSecret: string;
  logger: Logger;
  faults?: FaultProfile;
}): Promise<RunningSandboxPsp> {
  const pool = createPool({ connectionString: options.databaseUrl, sizeMax: 4, applicationName: 'penny-sandbox-psp' });
  const logger = options.logger.child({ service: 'sandbox-psp' });
  const { app, injector } = buildSandboxPsp({ pool, logger });
  if (options.faults !== undefined) injector.set(options.faults);
  const sender = new SandboxWebhookSender(pool, injector, {
    webhookUrl: options.webhookUrl, secret: options.webhookSecret, logger,
  });
  const workers = [
    startWorker('sandbox-psp-changes', 200, () => sender.resolvePending(), logger),
    startWorker('sandbox-psp-webhooks', 200, () => sender.sendDue(), logger),
  ];
  try {
    await app.listen({ port: options.port, host: options.host });
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.stop()));
    await pool.end();
    throw error;
  }
  logger.info({ port: options.port }, 'sandbox PSP listening');
  return {
    url: `http://${options.host}:${options.port}`,
    async stop() {
      await app.close();
      await Promise.all(workers.map((worker) => worker.stop()));
      await pool.end();
    },
  };
}

/**
 * The secret the sandbox signs its webhooks with, shared with Penny's connector:
 * PENNY_SANDBOX_PSP_WEBHOOK_SECRET, or one generated once under PENNY_DATA_DIR.
 */
export async function resolveSandboxWebhookSecret(config: PennyConfig): Promise<string> {
  if (config.sandboxPspWebhookSecret !== undefined) return config.sandboxPspWebhookSecret;
  return (await readOrCreateSecretFile(path.join(config.dataDirectory, 'sandbox-psp-webhook-secret'))).secret;
}

export function faultProfileFromJson(text: string | undefined): FaultProfile | undefined {
  return text === undefined || text === '' ? undefined : parseFaultProfile(JSON.parse(text));
}

/**
 * PENNY_SANDBOX_PSP_FAULTS as a profile, checked when a command that serves the sandbox starts, so
 * a bad profile stops it before it starts anything, naming the variable.
 */
export function faultProfileFromEnvironment(text: string | undefined): FaultProfile | undefined {
  try {
    return faultProfileFromJson(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw configError('PENNY_SANDBOX_PSP_FAULTS',
      `must be a JSON fault profile, as POST /control/faults takes (${reason})`);
  }
}
