import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PennyConfig } from './config.js';

/**
 * PENNY_OPERATOR_KEY when set; otherwise a key generated at first start and kept (mode 600) in
 * PENNY_DATA_DIR/operator-key, whose path is logged (never the key itself).
 */
export async function resolveOperatorKey(config: PennyConfig, logger?: Logger): Promise<string> {
  if (config.operatorKey !== undefined) return config.operatorKey;
  const file = path.join(config.dataDirectory, 'operator-key');
  const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (existing !== undefined && existing.trim().length >= 24) return existing.trim();
  await fs.mkdir(config.dataDirectory, { recursive: true });
  const key = `pk_operator_${randomBytes(24).toString('hex')}`;
  await fs.writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const stored = (await fs.readFile(file, 'utf8')).trim();
  logger?.info({ operator_key_file: file }, 'generated an operator key for /v1/ledger; read it from this file');
  return stored;
}
