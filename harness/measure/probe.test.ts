import { describe, expect, it } from 'vitest';
import { VxError } from '../errors.ts';
import type { ExecOptions } from '../exec/shell.ts';
import type { ProbeTarget } from '../providers/provider.ts';
import { ProbeLineParser, parseProbeOutput, runProbe, type Sample } from './probe.ts';

const HEADER = '# vxprobe 2 libc=glibc mode=resolve threads=2 fresh=0\n';
const LINES = ['L 0 10 500 OK 1\n', 'L 1 12 5004000 EAI_AGAIN 0\n', 'L 0 530 480 OK 2\n'];
const DONE = '# done samples=3 wall_us=5004100\n';
const FULL = HEADER + LINES.join('') + DONE;
const EXPECTED: Sample[] = [
  { thread: 0, startUs: 10, latencyUs: 500, result: 'OK' },
  { thread: 1, startUs: 12, latencyUs: 5004000, result: 'EAI_AGAIN' },
  { thread: 0, startUs: 530, latencyUs: 480, result: 'OK' },
];

describe('ProbeLineParser', () => {
  it('gives the same samples wherever the chunks split the lines', () => {
    for (let a = 0; a <= FULL.length; a++) {
      for (let b = a; b <= FULL.length; b += 7) {
        const seen: Sample[] = [];
        const p = new ProbeLineParser((s) => seen.push(s));
        for (const chunk of [FULL.slice(0, a), FULL.slice(a, b), FULL.slice(b)]) p.push(chunk);
        expect(seen, `split at ${a}, ${b}`).toEqual(EXPECTED);
        expect(p.output()).toEqual({ libc: 'glibc', mode: 'resolve', samples: EXPECTED, wallUs: 5004100 });
      }
    }
  });

  it('reads one byte at a time', () => {
    const p = new ProbeLineParser();
    for (const ch of FULL) p.push(ch);
    expect(p.output().samples).toEqual(EXPECTED);
  });

  it('holds a partial line back until its newline arrives', () => {
    const seen: Sample[] = [];
    const p = new ProbeLineParser((s) => seen.push(s));
    p.push(`${HEADER}L 0 10 500 O`);
    expect(seen).toEqual([]);
    p.push('K 1\nL 1 12 50');
    expect(seen).toEqual([EXPECTED[0]]);
    p.push('04000 EAI_AGAIN 0\n');
    expect(seen).toEqual(EXPECTED.slice(0, 2));
  });

  it('returns what a stopped probe measured, with its trailer wall time or the elapsed time', () => {
    const p = new ProbeLineParser();
    p.push(HEADER + LINES[0] + LINES[1] + 'L 0 530 4');
    expect(p.stoppedOutput('aborted', 777)).toEqual({ libc: 'glibc', mode: 'resolve', samples: EXPECTED.slice(0, 2), wallUs: 777, stopped: 'aborted' });
    expect(() => p.output()).toThrow(/incomplete/);

    const q = new ProbeLineParser();
    q.push(`${HEADER}${LINES[0]}# stopped signal=SIGTERM samples=1 wall_us=900\n`);
    expect(q.stoppedOutput('bound', 5000)).toMatchObject({ samples: EXPECTED.slice(0, 1), wallUs: 900, stopped: 'bound' });
  });

  it('prefers a complete run over a stop that came after it', () => {
    const p = new ProbeLineParser();
    p.push(FULL);
    expect(p.stoppedOutput('aborted', 1).stopped).toBeUndefined();
    expect(p.stoppedOutput('aborted', 1).wallUs).toBe(5004100);
  });

  it('refuses malformed lines and trailers whose count disagrees', () => {
    expect(() => new ProbeLineParser().push('L 0 12 x OK 1\n')).toThrow(VxError);
    expect(() => new ProbeLineParser().push('L 0 12\n')).toThrow(/malformed sample line/);
    expect(() => new ProbeLineParser().push(`${HEADER}${LINES[0]}# stopped signal=SIGINT samples=2 wall_us=1\n`)).toThrow(/printed 1 samples but counted 2/);
  });

  it('parses complete output whose last newline was trimmed', () => {
    expect(parseProbeOutput(FULL.trimEnd()).samples).toEqual(EXPECTED);
    expect(() => parseProbeOutput(HEADER + LINES.join(''))).toThrow(/incomplete/);
  });
});

describe('runProbe through a target that cannot stream', () => {
  // Like a pod exec that only hands back the whole output at the end (it ignores onStdout and signal).
  const target = (stdout: string): ProbeTarget & { seen: ExecOptions[] } => {
    const seen: ExecOptions[] = [];
    return {
      name: 'static',
      probe: ['vxprobe'],
      seen,
      exec: async (_argv, opts) => {
        seen.push(opts ?? {});
        return { stdout, stderr: '', exitCode: 0 };
      },
      writeFile: async () => undefined,
      readFile: async () => '',
    };
  };

  it('still delivers every sample through onSample and returns the run', async () => {
    const t = target(FULL);
    const seen: Sample[] = [];
    const out = await runProbe(t, { targets: ['a.'], threads: 2, count: 3 }, { onSample: (s) => seen.push(s) });
    expect(seen).toEqual(EXPECTED);
    expect(out.samples).toEqual(EXPECTED);
    expect(out.stopped).toBeUndefined();
    expect(t.seen[0]!.signal).toBeInstanceOf(AbortSignal);
  });

  it('refuses truncated output when nobody stopped the probe', async () => {
    await expect(runProbe(target(HEADER + LINES[0]), { targets: ['a.'], threads: 1, count: 3 })).rejects.toThrow(/incomplete/);
  });
});
