import { afterEach, describe, expect, it } from 'vitest';
import { progress } from './progress.ts';

const sink = (isTTY: boolean) => {
  const chunks: string[] = [];
  return { chunks, stream: Object.assign({ write: (s: string) => chunks.push(s) > 0 }, { isTTY }) as unknown as NodeJS.WritableStream };
};

describe('progress lines', () => {
  const ci = process.env.CI;
  afterEach(() => {
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
  });

  it('in CI and logs: one whole line per step and per end', () => {
    const { chunks, stream } = sink(false);
    const p = progress({ stream });
    p.step('nodes (3)');
    p.done('nodes (3)', 12);
    expect(chunks.join('')).toBe(' • nodes (3) …\n ✓ nodes (3) (12 ms)\n');
  });

  it('on a terminal: an open step line is cleared by whatever comes next, so interleaved clusters leave no debris', () => {
    delete process.env.CI;
    const { chunks, stream } = sink(true);
    const p = progress({ stream });
    p.step('cluster 1: pods via CNI bridge + host-local');
    p.done('cluster 2: nodes (3)', 5);
    const out = chunks.join('');
    expect(out.startsWith('\r\x1b[2K • cluster 1: pods via CNI bridge + host-local …\r')).toBe(true);
    // The end line starts by erasing the open step line, then ends with a newline.
    expect(out).toContain('\r\x1b[2K \x1b[32m✓\x1b[0m cluster 2: nodes (3)');
    expect(out.endsWith('\n')).toBe(true);
  });
});
