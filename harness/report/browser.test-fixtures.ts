import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium, driven by playwright-core: the HTML reports are checked in a real browser, offline. */
export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const SKIP_WHY = `skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`;
/** Where the pages under test are written, kept for a person to open after the run. */
export const OUT_DIR = fileURLToPath(new URL('../../reports/html-test/', import.meta.url));

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Opens a local file and records what must stay empty: console errors and warnings, and any remote request. */
export async function openOffline(browser: Browser, file: string, viewport: { width: number; height: number }): Promise<{ page: Page; problems: string[]; remote: string[] }> {
  const page = await browser.newPage({ viewport });
  const problems: string[] = [];
  const remote: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console.${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('request', (req) => {
    if (!req.url().startsWith('file:') && !req.url().startsWith('data:')) remote.push(req.url());
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, problems, remote };
}
