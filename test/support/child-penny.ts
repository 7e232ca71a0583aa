import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { freePort } from '../global-setup.js';

/**
 * `penny serve` in a child process, for tests that kill it (SIGKILL, as `kill -9`) and restart it.
 * Every child still running after a test is stopped with SIGTERM.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const pennyBin = path.join(root, 'dist', 'src', 'cli', 'penny.js');

export interface ChildPenny {
  readonly process: ChildProcess;
  readonly port: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const running = new Set<ChildPenny>();

afterEach(stopAllChildren);

export async function stopAllChildren(): Promise<void> {
  for (const server of running) await stopChild(server);
}

export function startChild(environment: Record<string, string>, port: number): ChildPenny {
  const child = spawn(process.execPath, [pennyBin, 'serve'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...environment, PORT: String(port) },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const server = { process: child, port, exited, output: () => output };
  running.add(server);
  void exited.then(() => running.delete(server));
  return server;
}

export async function stopChild(server: ChildPenny): Promise<void> {
  if (server.process.exitCode === null && server.process.signalCode === null) server.process.kill('SIGTERM');
  await server.exited;
}

export async function startChildUntilHealthy(environment: Record<string, string>, port?: number): Promise<ChildPenny> {
  const server = startChild(environment, port ?? await freePort());
  for (let attempt = 0; attempt < 400; attempt += 1) {
    const ok = await fetch(`http://127.0.0.1:${server.port}/healthz`).then((response) => response.ok, () => false);
    if (ok) return server;
    if (server.process.exitCode !== null) break;
    await delay(25);
  }
  throw new Error(`penny serve did not answer on port ${server.port}:\n${server.output()}`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 50 ms until it holds, up to `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`still not true after ${timeoutMs} ms`);
    await delay(50);
  }
}
