import { cellFailsRun, type Cell, type Matrix } from './matrix.ts';
import { causeFlag, whereItDied } from './drops-text.ts';
import { cellName, errorKinds, fmtAffected, fmtMs, fmtPct, fmtStopped, hasManyTargets, hostPairs } from './markdown.ts';

// Characters XML 1.0 cannot carry at all (C0 controls other than tab/LF/CR, lone surrogates, U+FFFE/F).
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function xmlText(s: string): string {
  return s.replace(INVALID_XML, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Attribute values also keep their quotes and line breaks (a raw newline would be normalised to a space). */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlAttr(String(v))}"`)
    .join('');
}

/** Seconds as JUnit consumers parse them: plain decimal, no exponent. */
function seconds(s: number): string {
  return Number.isFinite(s) && s > 0 ? s.toFixed(3) : '0';
}

/** What was measured, in one line: goes into the failure body and system-out. */
function measured(c: Cell): string {
  const kinds = errorKinds(c);
  return (
    `samples ${c.samples}, errors ${c.errors} (${fmtPct(c.errorRate)})${kinds ? ` [${kinds}]` : ''}, ` +
    `over ${fmtMs(c.thresholdMs)} ms ${c.overThreshold}, affected ${fmtAffected(c)}, ` +
    `p50 ${fmtMs(c.p50Ms)} ms, p99 ${fmtMs(c.p99Ms)} ms, max ${fmtMs(c.maxMs)} ms; expected ${c.expectation}` +
    (c.stopped ? `; ${fmtStopped(c)}` : '')
  );
}

function counters(c: Cell): string {
  const entries = Object.entries(c.counters ?? {});
  return entries.length ? `counters: ${entries.map(([k, v]) => `${k}=${v}`).join(', ')}` : '';
}

/**
 * One testcase per cell, failing exactly when the run's exit code counts it (cellFailsRun); a cell that threw
 * is an <error>; an `inconclusive` one is a <failure> of that type. A
 * `not-reproduced` cell that is a finding (native fault, real components) is skipped with its reason:
 * it proves nothing about its mitigations, so it must not read as green either.
 */
function testcase(m: Matrix, c: Cell, withTarget: boolean): string {
  const head = `    <testcase${attrs({ classname: `vxchaos.${m.suite}`, name: cellName(c, withTarget), time: seconds(c.durationS) })}>`;
  const died = whereItDied(c);
  const flag = causeFlag(c);
  const dropsLine = [died ? `where it died: ${died}` : '', flag ? `flagged: ${flag}` : ''].filter(Boolean).join('; ');
  const out = [measured(c), counters(c), dropsLine].filter(Boolean).join('\n');
  const lines = [head];
  // A failure names the kernel drop behind it, so a CI annotation says where the packets went.
  const reason = `${c.reason || `verdict ${c.verdict}`}${died && c.verdict !== 'pass' ? ` — where it died: ${died}` : ''}`;
  if (c.verdict === 'error') {
    lines.push(`      <error${attrs({ message: reason, type: 'error' })}>${xmlText(reason)}</error>`);
  } else if (cellFailsRun(c)) {
    lines.push(`      <failure${attrs({ message: reason, type: c.verdict })}>${xmlText(`${reason}\n${measured(c)}`)}</failure>`);
  } else if (c.verdict !== 'pass') {
    lines.push(`      <skipped${attrs({ message: `${c.verdict}: ${reason}` })}/>`);
  }
  lines.push(`      <system-out>${xmlText(out)}</system-out>`, '    </testcase>');
  return lines.join('\n');
}

/** JUnit XML in the shape GitHub test reporters, Jenkins and GitLab all read. */
export function renderJUnit(m: Matrix): string {
  const withTarget = hasManyTargets(m.cells);
  const errors = m.cells.filter((c) => c.verdict === 'error').length;
  const failures = m.cells.filter(cellFailsRun).length - errors;
  const skipped = m.cells.filter((c) => c.verdict !== 'pass').length - failures - errors;
  const counts = { tests: m.cells.length, failures, errors, skipped, time: seconds(m.durationS) };
  const props = [
    ['suite', m.suite],
    ['runId', m.runId],
    ['provider', m.provider],
    ['kernel', m.kernel],
    ['quick', String(m.quick ?? false)],
    ...hostPairs(m).map(([k, v]) => [`host.${k}`, v]),
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: 'vxchaos', ...counts })}>`,
    `  <testsuite${attrs({ name: `vxchaos.${m.suite}`, ...counts, timestamp: m.startedAt, hostname: m.host?.hostname })}>`,
    '    <properties>',
    ...props.map(([k, v]) => `      <property${attrs({ name: k, value: v })}/>`),
    '    </properties>',
    ...m.cells.map((c) => testcase(m, c, withTarget)),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
