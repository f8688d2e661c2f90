/**
 * Opens the rendered index.html in real headless Chromium (Debian's `chromium` package) and checks that
 * it draws offline: no console errors, no network requests, the matrix table and the uPlot charts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { HAVE_CHROMIUM, launchChromium, openOffline, OUT_DIR, SKIP_WHY } from './browser.test-fixtures.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml } from './html.ts';
import { macChurnMatrix } from './test-fixtures.ts';

// Runs inside the page; the project's tsconfig has no DOM lib.
declare const getComputedStyle: (el: unknown) => { backgroundColor: string };


const title = HAVE_CHROMIUM ? 'index.html in headless Chromium' : `index.html in headless Chromium — ${SKIP_WHY}`;

describe.skipIf(!HAVE_CHROMIUM)(title, () => {
  let browser: Browser;
  const m = macChurnMatrix();

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('renders the heat map and the CDF charts offline, without console errors', async () => {
    await mkdir(OUT_DIR, { recursive: true });
    const file = join(OUT_DIR, 'index.html');
    await writeFile(file, renderHtml(m));

    const { page, problems, remote } = await openOffline(browser, file, { width: 1280, height: 900 });

    // The matrix: one row per client × fault(mode), one column per mitigation, a shaded cell per measurement.
    const heatCells = page.locator('table#matrix td.heat');
    expect(await page.locator('table#matrix tbody tr').count()).toBe(4);
    expect(await heatCells.count()).toBe(m.cells.length);
    // The shade is computed CSS the browser accepted, not just an attribute it ignored.
    const shades = await heatCells.evaluateAll((els) => els.map((el) => getComputedStyle(el).backgroundColor));
    expect(shades.every((bg) => bg.startsWith('rgb(') && bg !== 'rgb(255, 255, 255)')).toBe(true);
    expect(new Set(shades).size).toBeGreaterThan(2);

    // uPlot's DOM: one .uplot per cell with a chart, each with a canvas that has real size.
    const charts = page.locator('.chart .uplot');
    // Every cell has a histogram, so every card draws one.
    await expect.poll(() => charts.count()).toBe(m.cells.length);
    const box = await page.locator('.chart .uplot canvas').first().boundingBox();
    expect(box?.width).toBeGreaterThan(300);
    expect(box?.height).toBeGreaterThan(150);
    // The mitigated-vs-unmitigated legend names both series.
    const legend = await page.locator('#cell-3 .u-legend').innerText();
    expect(legend).toContain('this cell (neigh-resync)');
    expect(legend).toContain('unmitigated: musl / mac-churn(stale-peers) / none');

    await page.screenshot({ path: join(OUT_DIR, 'screenshot.png'), fullPage: true });
    expect(problems).toEqual([]);
    expect(remote).toEqual([]);
    await page.close();
  });
});
