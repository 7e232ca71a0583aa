import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PennyConfig } from './config.js';

/**
 * The server's secret: it peppers API-key digests and seals stored secrets (webhook secrets).
 * PENNY_SECRET_KEY when set; otherwise generated once and kept (mode 600) in
 * PENNY_DATA_DIR/secret-key. Losing it invalidates every API key: back it up.
 */
export async function resolveSecretKey(config: PennyConfig, logger?: Logger): Promise<string> {
  if (config.secretKey !== undefined) return config.secretKey;
  const file = path.join(config.dataDirectory, 'secret-key');
  const { secret, created } = await readOrCreateSecretFile(file);
  if (created) logger?.warn({ secret_key_file: file }, 'generated the server secret key; back this file up');
  return secret;
}

/**
 * A secret kept in a file (mode 600): read when it holds one, otherwise generated (32 random bytes,
 * hex) once, even by two processes starting together (the loser reads the winner's).
 */
export async function readOrCreateSecretFile(file: string): Promise<{ secret: string; created: boolean }> {
  const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (existing !== undefined && existing.trim().length >= 32) return { secret: existing.trim(), created: false };
  await fs.mkdir(path.dirname(file), { recursive: true });
  let created = true;
  await fs.writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' })
    .catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
      created = false;
    });
  return { secret: (await fs.readFile(file, 'utf8')).trim(), created };
}
