import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VxError } from '../errors.ts';
import { shell } from '../exec/shell.ts';
import { kernelRun } from './cross-kernel.fixtures.ts';
import {
  CROSS_KERNEL_HTML,
  CROSS_KERNEL_MD,
  changeSentence,
  compareReleases,
  crossKernel,
  dropCause,
  kernelsReport,
  loadRuns,
  renderCrossKernelHtml,
  renderCrossKernelMarkdown,
} from './cross-kernel.ts';
import { makeCell, makeMatrix } from './test-fixtures.ts';

const SCRIPT = join(import.meta.dirname, 'cross-kernel.ts');

describe('columns', () => {
  it('orders releases by their numbers, not as strings', () => {
    const sorted = ['6.12.12-amd64', '4.9.0-19-amd64', '6.1.0-31-amd64', '5.10.0-32-amd64', '6.1.0-29-amd64'].sort(compareReleases);
    expect(sorted).toEqual(['4.9.0-19-amd64', '5.10.0-32-amd64', '6.1.0-29-amd64', '6.1.0-31-amd64', '6.12.12-amd64']);
  });

  it('puts a column per kernel, oldest first, labelled release · source, whatever order the runs came in', () => {
    const r = crossKernel([kernelRun('host'), kernelRun('bookworm'), kernelRun('bullseye')]);
    expect(r.columns.map((c) => c.label)).toEqual(['5.10.0-32-amd64 · debian:bullseye', '6.1.0-29-amd64 · debian:bookworm', '6.12.12-amd64 · host']);
    expect(r.columns[0]!.notes).toEqual({ accel: 'tcg', clocksource: 'hpet' });
  });

  it('reads a matrix written before kernelUnderTest as the host kernel, and names a path source by its file', () => {
    const old = makeMatrix([makeCell({ client: 'musl' })], { kernel: '4.9.0-19-amd64' });
    const own = makeMatrix([makeCell({ client: 'musl' })], { kernel: '5.4.0-fleet', kernelUnderTest: { release: '5.4.0-fleet', version: '#7', source: '/srv/kernels/linux-image-5.4.0-fleet.deb' } });
    expect(crossKernel([own, old]).columns.map((c) => c.label)).toEqual(['4.9.0-19-amd64 · host', '5.4.0-fleet · linux-image-5.4.0-fleet.deb']);
  });

  it('tells two runs of the same kernel apart by run id, and names them in full in sentences', () => {
    const a = kernelRun('bookworm', { runId: 'aaa111', startedAt: '2026-12-01T03:17:00.000Z' });
    const b = kernelRun('bullseye', { runId: 'bbb222', startedAt: '2026-12-02T03:17:00.000Z', kernel: a.kernel, kernelUnderTest: a.kernelUnderTest! });
    const r = crossKernel([b, a]);
    expect(r.columns.map((c) => c.label)).toEqual(['6.1.0-29-amd64 · debian:bookworm · run aaa111', '6.1.0-29-amd64 · debian:bookworm · run bbb222']);
    expect(r.rows.find((x) => x.changed)?.sentence).toContain('on 6.1.0-29-amd64 · debian:bookworm · run bbb222');
  });
});

describe('what changed', () => {
  const r = crossKernel([kernelRun('bullseye'), kernelRun('bookworm'), kernelRun('host')]);

  it('has a row per cell in the suite\'s order, and marks exactly the rows whose verdict differs', () => {
    expect(r.rows.map((x) => `${x.changed ? '⚑ ' : ''}${x.name}`)).toEqual([
      'musl / none / none',
      '⚑ musl / conntrack-race(native) / none',
      'musl / conntrack-race(emulated) / none',
      '⚑ glibc / conntrack-race(emulated) / single-request',
      '⚑ glibc / conntrack-race(emulated) / nodelocal-dns',
    ]);
    expect(r.rows[1]!.entries.map((c) => c?.verdict)).toEqual(['pass', 'not-reproduced', 'not-reproduced']);
  });

  it('says each change in one plain sentence, kernels oldest first', () => {
    expect(r.rows.filter((x) => x.changed).map((x) => x.sentence)).toEqual([
      'musl / conntrack-race(native) / none: reproduced on 5.10.0-32-amd64, not on 6.1.0-29-amd64 and 6.12.12-amd64',
      'glibc / conntrack-race(emulated) / single-request: clean on 5.10.0-32-amd64 and 6.1.0-29-amd64, not on 6.12.12-amd64',
      'glibc / conntrack-race(emulated) / nodelocal-dns: clean on 5.10.0-32-amd64 and 6.12.12-amd64, skipped on 6.1.0-29-amd64 (needs nftDynamicSets, which this kernel lacks)',
    ]);
    expect(r.rows.filter((x) => !x.changed).every((x) => x.sentence === undefined)).toBe(true);
  });

  it('words three outcomes, a cell a run lacks, and a verdict it does not know yet', () => {
    const cols = crossKernel([kernelRun('bullseye'), kernelRun('bookworm'), kernelRun('host')]).columns;
    const race = (o: object) => makeCell({ client: 'musl', fault: 'conntrack-race', faultMode: 'native', ...o });
    const tooMany = Object.assign(race({ errors: 4000 }), { verdict: 'fail' as const });
    const unsure = Object.assign(race({}), { verdict: 'inconclusive' as never });
    expect(changeSentence('x', [race({ errors: 1667 }), tooMany, undefined], cols)).toBe(
      'x: reproduced on 5.10.0-32-amd64; reproduced outside the expected range on 6.1.0-29-amd64; not measured on 6.12.12-amd64',
    );
    expect(changeSentence('x', [unsure, race({}), race({})], cols)).toBe('x: inconclusive on 5.10.0-32-amd64, not reproduced on 6.1.0-29-amd64 and 6.12.12-amd64');
  });

  it('does not call a cell changed when one run lacks it but the others agree', () => {
    const quickOnly = kernelRun('host', { cells: kernelRun('host').cells.slice(0, 1) });
    const rr = crossKernel([kernelRun('bookworm'), quickOnly]);
    expect(rr.rows[2]!.entries.map((c) => c?.verdict)).toEqual(['pass', undefined]);
    expect(rr.rows[2]!.changed).toBe(false);
  });

  it('names the top drop that is not background noise as the drop cause', () => {
    const failing = r.rows[3]!.entries[2]!;
    expect(dropCause(failing)).toEqual({ reason: 'NETFILTER_DROP', func: 'nft_do_chain', count: 1667, ns: 'node-1', iface: 'cni0' });
    expect(dropCause(r.rows[3]!.entries[0]!)).toBeUndefined();
    expect(dropCause(Object.assign(makeCell({ client: 'musl' }), { drops: { available: false, why: 'no BTF', rows: [] } }))).toBeUndefined();
  });

  it('notes runs that differ in provider or quick mode', () => {
    const rr = crossKernel([kernelRun('bookworm', { quick: true }), kernelRun('host')]);
    expect(rr.notes).toEqual(['quick mode differs between the runs (6.1.0-29-amd64: quick, 6.12.12-amd64: full)']);
  });
});

describe('refuses runs of different suites', () => {
  it('with a clear error and exit code 2', () => {
    const other = makeMatrix([makeCell({ client: 'musl' })], { runId: 'arp001' });
    let err: unknown;
    try {
      crossKernel([kernelRun('bookworm'), other, kernelRun('host')]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VxError);
    expect((err as VxError).code).toBe('E_MIXED_SUITES');
    expect((err as VxError).exitCode).toBe(2);
    expect((err as VxError).message).toContain('these runs are of different suites: conntrack-race (boo001, hos001); flannel-arp (arp001)');
  });

  it('and refuses nothing at all', () => {
    expect(() => crossKernel([])).toThrow(/no runs/);
  });
});

describe('Markdown and HTML', () => {
  const r = crossKernel([kernelRun('host'), kernelRun('bullseye'), kernelRun('bookworm')]);
  const mdText = renderCrossKernelMarkdown(r);

  it('Markdown: what changed first, then a row per cell with verdict, affected, p99 and drop cause per kernel', () => {
    expect(mdText).toMatch(/^## vxchaos · conntrack-race across kernels — 3 kernels, 5 cells: 3 changed verdict between kernels\n/);
    expect(mdText.indexOf('### What changed')).toBeLessThan(mdText.indexOf('### Side by side'));
    expect(mdText).toContain('|  | cell | 5.10.0-32-amd64 · debian:bullseye | 6.1.0-29-amd64 · debian:bookworm | 6.12.12-amd64 · host |');
    const row = mdText.split('\n').find((l) => l.startsWith('|') && l.includes('single-request'))!;
    expect(row).toMatch(/^\| ⚑ \| \*\*glibc/);
    expect(row).toContain('❌ fail · 33.3% affected · p99 5,010 ms · drop: NETFILTER_DROP in nft_do_chain ×1667');
    expect(mdText.split('\n').find((l) => l.includes('musl / none / none'))).toMatch(/^\| {2}\| musl/);
    expect(mdText).toContain('accel tcg · clocksource hpet');
  });

  it('HTML: self-contained (no script, no external reference), text escaped, changed rows marked', () => {
    const evil = kernelRun('host');
    evil.cells[0]!.reason = '<script>alert(1)</script>';
    const html = renderCrossKernelHtml(crossKernel([kernelRun('bookworm'), evil]));
    expect(html).not.toMatch(/<script|<link|src=|https?:/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html.match(/<tr class="changed"/g)?.length).toBe(2);
  });
});

describe('loading runs and the command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxchaos-xkernel-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** As the nightly downloads them: artifacts/<artifact>/<run-id>/matrix.json, several suites per artifact. */
  const write = (artifact: string, m: object & { runId: string }) => {
    mkdirSync(join(dir, 'artifacts', artifact, m.runId), { recursive: true });
    writeFileSync(join(dir, 'artifacts', artifact, m.runId, 'matrix.json'), JSON.stringify(m));
  };
  write('kernels-bullseye', kernelRun('bullseye'));
  write('kernels-bookworm', kernelRun('bookworm'));
  write('kernels-bookworm', makeMatrix([makeCell({ client: 'musl' })], { runId: 'arp002' }));
  write('kernels-host', kernelRun('host'));

  it('finds every matrix.json below a directory of runs and keeps one suite with --suite', async () => {
    const runs = await loadRuns([join(dir, 'artifacts')], 'conntrack-race');
    expect(runs.map((m) => m.runId).sort()).toEqual(['boo001', 'bul001', 'hos001']);
    await expect(loadRuns([join(dir, 'artifacts')], 'dead-upstream')).rejects.toThrow(/no run of suite dead-upstream among 4 matrices/);
    await expect(loadRuns([join(dir, 'nope')])).rejects.toThrow(/no such file or directory/);
  });

  it('writes cross-kernel.md and cross-kernel.html to --out and prints the Markdown', async () => {
    const out = join(dir, 'out');
    const printed: string[] = [];
    const runs = ['kernels-host/hos001', 'kernels-bullseye/bul001/matrix.json', 'kernels-bookworm/boo001'].map((p) => join(dir, 'artifacts', p));
    expect(await kernelsReport(runs, { out }, (t) => printed.push(t))).toBe(0);
    expect(readFileSync(join(out, CROSS_KERNEL_MD), 'utf8')).toBe(printed[0]);
    expect(readFileSync(join(out, CROSS_KERNEL_HTML), 'utf8')).toContain('<tr class="changed"');
  });

  it('runs as a script: a mixed-suite input exits 2 with the reason, --suite picks one', async () => {
    const mixed = await shell(['npx', 'tsx', SCRIPT, join(dir, 'artifacts')], { timeoutMs: 60_000, nothrow: true });
    expect(mixed.exitCode).toBe(2);
    expect(mixed.stderr).toContain('these runs are of different suites');
    const one = await shell(['npx', 'tsx', SCRIPT, '--suite', 'conntrack-race', join(dir, 'artifacts')], { timeoutMs: 60_000 });
    expect(one.stdout).toContain('musl / conntrack-race(native) / none: reproduced on 5.10.0-32-amd64, not on 6.1.0-29-amd64 and 6.12.12-amd64');
  });
});
