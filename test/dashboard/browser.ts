import fs from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import type { Browser, Page } from 'playwright-core';

/**
 * Debian's Chromium (`apt-get install chromium`; .ci/run installs it), driven by playwright-core.
 * Never `npx playwright install`: it downloads a browser build, which cannot work here. Without
 * /usr/bin/chromium the browser tests skip, saying why.
 */
export const chromiumPath = process.env.PENNY_CHROMIUM ?? '/usr/bin/chromium';
export const hasChromium = fs.existsSync(chromiumPath);
export const skipReason = `no Chromium at ${chromiumPath} (apt-get install -y chromium): the dashboard's browser tests skip`;
if (!hasChromium) console.warn(skipReason);

const screenshotDirectory = path.resolve('test-results', 'dashboard');

/** One browser for the file, closed with its other hooks. */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  afterAll(async () => {
    await browser.close();
  });
  return browser;
}

/** A page in a context of its own (its own cookies), accepting every confirmation dialog. */
export async function newPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('dialog', (dialog) => void dialog.accept());
  return page;
}

export async function signIn(page: Page, baseUrl: string, key: string): Promise<void> {
  await page.goto(`${baseUrl}/dashboard/sign-in`);
  await page.fill('input[name=key]', key);
  await Promise.all([page.waitForURL((url) => !url.pathname.endsWith('/sign-in')), page.click('#sign-in')]);
}

/**
 * Saves what the browser shows under test-results/dashboard/ (git-ignored) as `<name>.png`: the
 * viewport, or one element of the page (docs/dashboard.md shows some of these).
 */
export async function screenshot(page: Page, name: string, selector?: string): Promise<string> {
  fs.mkdirSync(screenshotDirectory, { recursive: true });
  const file = path.join(screenshotDirectory, `${name}.png`);
  if (selector === undefined) await page.screenshot({ path: file });
  else await page.locator(selector).screenshot({ path: file });
  return file;
}

/** A form's named fields and their values, as the page holds them. */
export async function formFields(page: Page, selector: string): Promise<Record<string, string>> {
  const fields: Record<string, string> = {};
  for (const input of await page.locator(`${selector} [name]`).all()) {
    const name = await input.getAttribute('name');
    if (name !== null) fields[name] = await input.inputValue();
  }
  return fields;
}
