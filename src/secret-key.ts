import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PennyConfig } from './config.js';

/**
 * The server's secret: it peppers API-key digests (and, later, encrypts stored secrets).
 * PENNY_SECRET_KEY when set; otherwise generated once and kept (mode 600) in
 * PENNY_DATA_DIR/secret-key. Losing it invalidates every API key: back it up.
 */
export async function resolveSecretKey(config: PennyConfig, logger?: Logger): Promise<string> {
  if (config.secretKey !== undefined) return config.secretKey;
  const file = path.join(config.dataDirectory, 'secret-key');
  const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (existing !== undefined && existing.trim().length >= 32) return existing.trim();
  await fs.mkdir(config.dataDirectory, { recursive: true });
  await fs.writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' })
    .catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  logger?.warn({ secret_key_file: file }, 'generated the server secret key; back this file up');
  return (await fs.readFile(file, 'utf8')).trim();
}
