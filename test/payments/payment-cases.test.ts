import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, type TestLedger } from '../support/app.js';

/** Payment cases for operators: listed newest first, read one by one, closed once with a resolution. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'dist', 'src', 'cli', 'penny.js');
let penny: TestLedger;

async function openCases(count: number, prefix: string): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, index) => `case_${prefix}${String(index).padStart(4, '0')}`);
  for (const id of ids) {
    await penny.pool.query(`INSERT INTO payment_cases (merchant_id, id, kind, payment_intent_id, subject_id, detail)
      VALUES ('acct_cases', $1, 'unresolved_outcome', 'pi_cases', $1, '{"reason": "test"}')`, [id]);
  }
  return ids;
}

beforeAll(async () => {
  penny = await createTestLedger();
});

describe('cases', () => {
  it('lists cases newest first, page by page, filtered by status', async () => {
    const ids = await openCases(5, 'page');
    const walked: string[] = [];
    let page = await penny.request({ method: 'GET', url: '/v1/cases?status=open&limit=2' });
    walked.push(...page.body.data.map((item: { id: string }) => item.id));
    while (page.body.has_more === true) {
      page = await penny.request({ method: 'GET', url: `/v1/cases?status=open&limit=2&starting_after=${walked.at(-1)}` });
      walked.push(...page.body.data.map((item: { id: string }) => item.id));
    }
    expect(walked.filter((id) => ids.includes(id))).toEqual([...ids].reverse());
    expect(page.body).toMatchObject({ object: 'list', url: '/v1/cases' });
  });

  it('closes an open case once, keeping the resolution, answers the same close again, and refuses another', async () => {
    const [id] = await openCases(1, 'close');
    const closed = await penny.request({ method: 'POST', url: `/v1/cases/${id}/close`,
      body: { resolution: 'Looked up at the PSP: not charged. Customer informed.' } });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ id, object: 'payment_case', status: 'closed',
      resolution: 'Looked up at the PSP: not charged. Customer informed.' });
    expect(typeof closed.body.closed).toBe('number');
    // The same request again (a retry after a lost answer) answers the closed case; another is refused.
    const repeated = await penny.request({ method: 'POST', url: `/v1/cases/${id}/close`,
      body: { resolution: 'Looked up at the PSP: not charged. Customer informed.' } });
    expect(repeated.status).toBe(200);
    expect(repeated.body).toEqual(closed.body);
    const again = await penny.request({ method: 'POST', url: `/v1/cases/${id}/close`, body: { resolution: 'again' } });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'case_already_closed', param: 'id' });
    expect((await penny.request({ method: 'GET', url: `/v1/cases/${id}` })).body.resolution)
      .toBe('Looked up at the PSP: not charged. Customer informed.');
    const closedList = await penny.request({ method: 'GET', url: '/v1/cases?status=closed&limit=100' });
    expect(closedList.body.data.map((item: { id: string }) => item.id)).toContain(id);
  });

  it('refuses a close without a resolution, an unknown case, and a request without the operator key', async () => {
    const [id] = await openCases(1, 'refuse');
    const missing = await penny.request({ method: 'POST', url: `/v1/cases/${id}/close`, body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ code: 'parameter_missing', param: 'resolution' });
    expect((await penny.request({ method: 'GET', url: `/v1/cases/${id}` })).body.status).toBe('open');
    const unknown = await penny.request({ method: 'POST', url: '/v1/cases/case_nosuchcase/close',
      body: { resolution: 'x' } });
    expect(unknown.status).toBe(404);
    const anonymous = await penny.request({ method: 'GET', url: '/v1/cases', headers: { authorization: '' } });
    expect(anonymous.status).toBe(401);
  });

  it('a case cannot be closed without a resolution in the database either', async () => {
    const [id] = await openCases(1, 'rawsql');
    await expect(penny.pool.query(`UPDATE payment_cases SET status = 'closed' WHERE id = $1`, [id]))
      .rejects.toMatchObject({ code: '23514' });
  });

  it('penny cases list and close work from the command line', async () => {
    const [id] = await openCases(1, 'cmdline');
    const dataDirectory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-cases-cli-'));
    const run = (args: string[]) => new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME,
        DATABASE_URL: penny.url, PENNY_DATA_DIR: dataDirectory, PENNY_LOG_LEVEL: 'warn' } });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      child.on('close', (code) => resolve({ code, stdout }));
    });
    const listed = await run(['cases', 'list', '--status', 'open', '--json']);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { data: { id: string }[] }).data.map((item) => item.id)).toContain(id);
    const closed = await run(['cases', 'close', id as string, '--resolution', 'Refunded by hand', '--json']);
    expect(closed.code).toBe(0);
    expect(JSON.parse(closed.stdout)).toMatchObject({ id, status: 'closed', resolution: 'Refunded by hand' });
    expect((await run(['cases', 'close', id as string, '--resolution', 'again'])).code).toBe(1);
    await fs.rm(dataDirectory, { recursive: true, force: true });
  });
});
