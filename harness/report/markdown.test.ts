import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { appendJobSummary, fmtMs, fmtPct, renderMarkdown } from './markdown.ts';
import { macChurnMatrix, makeCell, makeMatrix } from './test-fixtures.ts';

describe('renderMarkdown', () => {
  const m = macChurnMatrix();
  const md = renderMarkdown(m);
  const failed = m.cells.find((c) => c.verdict === 'fail')!;
  const notReproduced = m.cells.find((c) => c.verdict === 'not-reproduced')!;

  it('titles the run with its suite and the failed count', () => {
    expect(md.split('\n')[0]).toBe(`## ❌ vxchaos · ${m.suite} — 1 of ${m.cells.length} cells failed`);
    expect(md).toContain('✅ 4 pass · ❌ 1 fail · ⚠️ 1 not-reproduced');
  });

  it("lists the failed and not-reproduced cells with their reasons (expected vs seen)", () => {
    const attention = md.slice(md.indexOf('### Needs attention'), md.indexOf('<details>'));
    expect(attention).toContain(`❌ **glibc / mac-churn(stale-peers) / neigh-resync** — fail: ${failed.reason}`);
    expect(attention).toContain(`⚠️ **glibc / mac-churn(stale-peers) / none** — not-reproduced: ${notReproduced.reason}`);
    expect(failed.reason).toMatch(/^33 % \(32–35 %\) affected of 5,000 lookups, tolerated ≤ 0\.10 %: above the tolerance/);
    expect(attention).not.toContain('musl /');
  });

  it('pivots mitigations into columns, with the unmitigated column first', () => {
    expect(md).toContain('| client | fault (mode) | mitigation: none | mitigation: neigh-resync |');
    const row = md.split('\n').find((l) => l.startsWith('| glibc | mac-churn(stale-peers) |'))!;
    expect(row).toBe(`| glibc | mac-churn(stale-peers) | ⚠️ p99 ${fmtMs(notReproduced.p99Ms)} ms · 0% affected | ❌ p99 ${fmtMs(failed.p99Ms)} ms · 33.3% affected |`);
    // The baseline has no resync cell: an explicit gap, not a misleading blank.
    expect(md).toContain('| musl | none | ✅');
    expect(md.split('\n').find((l) => l.startsWith('| musl | none |'))).toMatch(/\| — \|$/);
  });

  it('renders the numbers of the matrix, not made-up ones', () => {
    const row = md.split('\n').find((l) => l.startsWith('| glibc / mac-churn(stale-peers) / neigh-resync |'))!;
    const cols = row.split(' | ');
    expect(cols).toContain(fmtMs(failed.p50Ms));
    expect(cols).toContain(fmtMs(failed.p99Ms));
    expect(cols).toContain(fmtMs(failed.maxMs));
    expect(row).toContain(`${fmtPct(failed.errorRate)} (EAI_AGAIN×${failed.errors})`);
  });

  it('ends with the environment: kernel, provider, host fields', () => {
    const env = md.slice(md.indexOf('### Environment'));
    expect(env).toContain('kernel `6.1.0-test`');
    expect(env).toContain('provider `netns`');
    expect(env).toContain('hostname `runner-1`');
    expect(env).toContain(`run \`${m.runId}\``);
  });

  it('keeps hostile text from breaking tables', () => {
    const c = makeCell({ client: 'musl', fault: 'x|y', mitigation: '<b>' });
    const out = renderMarkdown(makeMatrix([{ ...c, verdict: 'fail', reason: 'a | b\nc <script>' }]));
    expect(out).toContain('x\\|y');
    expect(out).toContain('a \\| b c &lt;script&gt;');
    expect(out).not.toContain('<script>');
  });

  it('says plainly when the symptom did not reproduce and nothing failed', () => {
    const m2 = makeMatrix([makeCell({ client: 'musl', fault: 'conntrack-race', faultMode: 'native' })]);
    expect(m2.cells[0]!.verdict).toBe('not-reproduced');
    expect(renderMarkdown(m2).split('\n')[0]).toBe('## ⚠️ vxchaos · flannel-arp — 1 of 1 cells did not reproduce the symptom');
  });
});

describe('appendJobSummary', () => {
  let dir: string | undefined;
  afterEach(async () => {
    vi.unstubAllEnvs();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('appends to GITHUB_STEP_SUMMARY when set', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vx-summary-'));
    const file = join(dir, 'summary.md');
    vi.stubEnv('GITHUB_STEP_SUMMARY', file);
    expect(await appendJobSummary('# one')).toBe(true);
    expect(await appendJobSummary('# two\n')).toBe(true);
    expect(await readFile(file, 'utf8')).toBe('# one\n# two\n');
  });

  it('does nothing outside CI', async () => {
    vi.stubEnv('GITHUB_STEP_SUMMARY', '');
    expect(await appendJobSummary('# x')).toBe(false);
  });
});
