import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { renderJUnit } from './junit.ts';
import { failsRun } from './matrix.ts';
import { macChurnMatrix, makeCell, makeMatrix } from './test-fixtures.ts';

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', htmlEntities: true, isArray: (name) => ['testcase', 'property', 'failure'].includes(name) });

interface Case {
  '@classname': string;
  '@name': string;
  '@time': string;
  failure?: { '@message': string; '@type': string; '#text': string }[];
  'system-out': string;
}

function parse(xml: string) {
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = parser.parse(xml);
  const suite = doc.testsuites.testsuite;
  return { root: doc.testsuites, suite, cases: suite.testcase as Case[] };
}

describe('renderJUnit', () => {
  const m = macChurnMatrix();
  const { root, suite, cases } = parse(renderJUnit(m));

  it('counts tests and failures on testsuites and testsuite', () => {
    for (const el of [root, suite]) {
      expect(el['@tests']).toBe(String(m.cells.length));
      expect(el['@failures']).toBe('2');
      expect(el['@errors']).toBe('0');
      expect(el['@skipped']).toBe('0');
      expect(el['@time']).toBe(m.durationS.toFixed(3));
    }
    expect(suite['@name']).toBe('vxchaos.flannel-arp');
    expect(suite['@timestamp']).toBe(m.startedAt);
  });

  it('has one testcase per cell, named client / fault(mode) / mitigation', () => {
    expect(cases.map((c) => c['@name'])).toEqual([
      'musl / none / none',
      'musl / mac-churn(stale-peers) / none',
      'musl / mac-churn(stale-peers) / neigh-resync',
      'glibc / none / none',
      'glibc / mac-churn(stale-peers) / none',
      'glibc / mac-churn(stale-peers) / neigh-resync',
    ]);
    expect(new Set(cases.map((c) => c['@classname']))).toEqual(new Set(['vxchaos.flannel-arp']));
    expect(cases.map((c) => c['@time'])).toEqual(m.cells.map((c) => c.durationS.toFixed(3)));
  });

  it('turns fail and not-reproduced into failures carrying the reason', () => {
    const failing = cases.filter((c) => c.failure);
    expect(failing.map((c) => [c['@name'], c.failure![0]!['@type']])).toEqual([
      ['glibc / mac-churn(stale-peers) / none', 'not-reproduced'],
      ['glibc / mac-churn(stale-peers) / neigh-resync', 'fail'],
    ]);
    const failedCell = m.cells.find((c) => c.verdict === 'fail')!;
    expect(failing[1]!.failure![0]!['@message']).toBe(failedCell.reason);
    expect(failing[1]!.failure![0]!['#text']).toContain('errors 1667');
  });

  it('escapes what XML cannot carry raw', () => {
    const nasty = 'saw <5 s> & "quotes" \'apos\'\nsecond line \u0001 ]]>';
    const c = { ...makeCell({ client: 'musl&co', mitigation: '<none>' }), verdict: 'fail' as const, failsRun: true, reason: nasty };
    const { suite: s, cases: [one] } = parse(renderJUnit(makeMatrix([c], { suite: 'a"b', host: { hostname: '<h>' } })));
    expect(s['@name']).toBe('vxchaos.a"b');
    expect(one!['@name']).toBe('musl&co / none / <none>');
    // The control character becomes U+FFFD; everything else survives, newline included.
    expect(one!.failure![0]!['@message']).toBe(nasty.replace('\u0001', '\uFFFD'));
  });
});

describe('renderJUnit: not-reproduced is a failure only where the harness guarantees the symptom', () => {
  const withNotReproduced = (symptomsGuaranteed: boolean) => {
    const m = macChurnMatrix();
    for (const c of m.cells) c.failsRun = failsRun(c.verdict, c.faultMode, symptomsGuaranteed);
    const cell = m.cells.find((c) => c.fault !== 'none' && c.mitigation === 'none')!;
    cell.verdict = 'not-reproduced';
    cell.failsRun = failsRun(cell.verdict, cell.faultMode, symptomsGuaranteed);
    cell.reason = 'expected the symptom, saw 0/900 affected';
    const count = (v: string) => m.cells.filter((c) => c.verdict === v).length;
    return { ...parse(renderJUnit(m)), fails: count('fail'), notReproduced: count('not-reproduced') };
  };

  it('a provider that guarantees a harness-made fault\'s symptom (netns): failure', () => {
    const r = withNotReproduced(true);
    // the fixture's faults are harness-made (mac-churn modes): every not-reproduced cell fails
    expect(Number(r.suite['@failures'])).toBe(r.fails + r.notReproduced);
    expect(r.suite['@skipped']).toBe('0');
  });

  it('real components (kind: flannel that no longer churns its MAC): skipped with the reason, not a failure', () => {
    const r = withNotReproduced(false);
    expect(Number(r.suite['@failures'])).toBe(r.fails);
    expect(Number(r.suite['@skipped'])).toBe(r.notReproduced);
    expect(JSON.stringify(r.cases)).toContain('not-reproduced: expected the symptom, saw 0/900 affected');
  });
});
