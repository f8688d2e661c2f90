/**
 * Opens the cross-kernel page of the host plus two Debian kernels in real headless Chromium (Debian's
 * `chromium`) and checks it renders offline, without console errors, with the changed rows highlighted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { HAVE_CHROMIUM, launchChromium, openOffline, OUT_DIR, SKIP_WHY } from './browser.test-fixtures.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelRun } from './cross-kernel.fixtures.ts';
import { CROSS_KERNEL_HTML, crossKernel, renderCrossKernelHtml } from './cross-kernel.ts';

// Runs inside the page; the project's tsconfig has no DOM lib.
declare const getComputedStyle: (el: unknown) => { backgroundColor: string; boxShadow: string };

/** Kept where a person can open it after the run (the brief's "look at it yourself"). */
const SCREENSHOT = '/tmp/vxchaos-cross-kernel.png';

const title = HAVE_CHROMIUM ? 'cross-kernel.html in headless Chromium' : `cross-kernel.html in headless Chromium — ${SKIP_WHY}`;

describe.skipIf(!HAVE_CHROMIUM)(title, () => {
  let browser: Browser;
  const report = crossKernel([kernelRun('host'), kernelRun('bullseye'), kernelRun('bookworm')]);

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('renders host + two Debian kernels side by side offline, with what changed highlighted', async () => {
    await mkdir(OUT_DIR, { recursive: true });
    const file = join(OUT_DIR, CROSS_KERNEL_HTML);
    await writeFile(file, renderCrossKernelHtml(report));

    const { page, problems, remote } = await openOffline(browser, file, { width: 1280, height: 800 });

    // A column per kernel, oldest first, after the cell column.
    const heads = await page.locator('#kernels-matrix thead th').allInnerTexts();
    expect(heads.slice(1).map((h) => h.split('\n')[0])).toEqual(['5.10.0-32-amd64', '6.1.0-29-amd64', '6.12.12-amd64']);
    expect(await page.locator('#kernels-matrix tbody tr').count()).toBe(report.rows.length);

    // The change: its sentence is shown, its row carries the highlight the browser actually drew.
    await expect.poll(() => page.locator('#changes li').first().innerText()).toBe('musl / conntrack-race(native) / none: reproduced on 5.10.0-32-amd64, not on 6.1.0-29-amd64 and 6.12.12-amd64');
    const changed = page.locator('#kernels-matrix tr.changed');
    expect(await changed.count()).toBe(3);
    const native = changed.filter({ hasText: 'conntrack-race(native)' });
    expect(await native.locator('td').allInnerTexts()).toEqual([
      expect.stringMatching(/^✓ pass\n33\.3% affected\np99 2,505 ms$/),
      expect.stringMatching(/^! not-reproduced\n0% affected/),
      expect.stringMatching(/^! not-reproduced\n0% affected/),
    ]);
    const shade = async (row: ReturnType<typeof page.locator>) => row.locator('th').evaluate((el) => getComputedStyle(el).backgroundColor);
    const plain = page.locator('#kernels-matrix tbody tr:not(.changed)').first();
    expect(await shade(native)).not.toBe(await shade(plain));
    expect(await native.locator('th').evaluate((el) => getComputedStyle(el).boxShadow)).toContain('inset');
    // The drop cause of the cell that stopped holding on the newest kernel.
    expect(await changed.filter({ hasText: 'single-request' }).locator('td').nth(2).innerText()).toContain('drop: NETFILTER_DROP in nft_do_chain ×1667');

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(problems).toEqual([]);
    expect(remote).toEqual([]);
    await page.close();
  });
});
