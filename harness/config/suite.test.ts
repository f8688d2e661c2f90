import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planCells, prepareSuite } from '../cells.ts';
import { ConfigError, UnknownSuiteError } from '../errors.ts';
import { listSuites } from './suite.ts';

const q = (suite: ReturnType<typeof prepareSuite>['suite'], clients: ('musl' | 'glibc')[], quick: boolean) => planCells(suite, clients, { quick });

function suiteFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'vxc-suite-')), 'x.yaml');
  writeFileSync(file, text);
  return file;
}

function problemsOf(file: string): string {
  try {
    prepareSuite(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).exitCode).toBe(2);
    return (e as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('suites', () => {
  it('every shipped suite prepares: known faults, modes, mitigations, params and targets', () => {
    const suites = listSuites();
    expect(suites.map((s) => s.name)).toContain('flannel-arp');
    for (const s of suites) expect(() => prepareSuite(s.name), s.name).not.toThrow();
  });

  it('flannel-arp: a clean baseline, the stale-peers incident, and the resync per client', () => {
    const { suite } = prepareSuite('flannel-arp');
    expect(q(suite, ['musl', 'glibc'], true).map((p) => `${p.client}:${p.fault.name}:${p.mode}:${p.mitigation.name}:${p.expectation.expect}`)).toEqual([
      'musl:none:none:none:clean',
      'musl:mac-churn:stale-peers:none:reproduces',
      'musl:mac-churn:stale-peers:neigh-resync:clean',
      'glibc:none:none:none:clean',
      'glibc:mac-churn:stale-peers:none:reproduces',
      'glibc:mac-churn:stale-peers:neigh-resync:clean',
    ]);
    expect(q(suite, ['musl'], false).some((p) => p.mode === 'live-peers')).toBe(true);
  });

  it('an unknown suite names the known ones', () => {
    expect(() => prepareSuite('no-such-suite')).toThrow(UnknownSuiteError);
    expect(() => prepareSuite('no-such-suite')).toThrow(/flannel-arp/);
  });

  it('rejects unknown fields and fields of the other expectation, with file:line', () => {
    const file = suiteFile('name: x\ndescription: d\nworkload: {targets: [a], thredas: 2}\ncells:\n  - {expect: clean, affectedRate: [0.1, 0.2]}\n');
    const msg = problemsOf(file);
    expect(msg).toContain(`${file}:3:`);
    expect(msg).toContain('workload.thredas: unknown field "thredas"');
    expect(msg).toMatch(/:5:\d+: cells\[0\]\.affectedRate: unknown field "affectedRate"/);
    expect(problemsOf(suiteFile('name: x\ndescription: d\nworkload: {targets: [a]}\ncells:\n  - {expect: reproduces, tolerance: 0.1}\n'))).toContain('unknown field "tolerance"');
  });

  it('refuses unknown faults, modes, mitigations, bad params and connect targets, all at once, before anything is built', () => {
    const file = suiteFile(
      [
        'name: x',
        'description: d',
        'workload: {targets: [a]}',
        'cells:',
        '  - {fault: mac-crunch, expect: clean}',
        '  - {fault: mac-churn, mode: sideways, expect: clean}',
        '  - {fault: conntrack-race, params: {dropPercent: 150}, expect: clean}',
        '  - {fault: conntrack-race, params: {droppercent: 5}, expect: clean}',
        '  - {mitigation: ndot, expect: clean}',
        '  - {mitigation: ndots, mitigationParams: {ndots: -1}, expect: clean}',
        '  - {workload: {kind: connect, targets: [nope]}, expect: clean}',
        '',
      ].join('\n'),
    );
    const t0 = Date.now();
    const msg = problemsOf(file);
    expect(Date.now() - t0).toBeLessThan(5000); // a bound on behaviour: no cluster is built
    expect(msg).toMatch(/x\.yaml:5:\d+: cells\[0\]\.fault: unknown fault "mac-crunch"; known faults: none, mac-churn/);
    expect(msg).toMatch(/x\.yaml:6:\d+: cells\[1\]\.mode: fault mac-churn has modes stale-peers, live-peers \(got "sideways"\)/);
    expect(msg).toMatch(/x\.yaml:7:\d+: cells\[2\]\.params\.dropPercent: .*100/);
    expect(msg).toMatch(/x\.yaml:8:\d+: cells\[3\]\.params\.droppercent: conntrack-race has no param "droppercent"/);
    expect(msg).toMatch(/x\.yaml:9:\d+: cells\[4\]\.mitigation: unknown mitigation "ndot"/);
    expect(msg).toMatch(/x\.yaml:10:\d+: cells\[5\]\.mitigationParams\.ndots: /);
    expect(msg).toMatch(/x\.yaml:11:\d+: cells\[6\]\.workload\.targets: connect target "nope" is neither a service of topology three-node \(web\)/);
    expect(msg).toContain('7 problems');
  });

  it('stallMs and affectedRate: min ≤ max', () => {
    const msg = problemsOf(suiteFile('name: x\ndescription: d\nworkload: {targets: [a]}\ncells:\n  - {expect: reproduces, stallMs: [3, 2]}\n'));
    expect(msg).toMatch(/cells\[0\]\.stallMs: min is above max/);
  });
});

describe('cell workload overrides and defaults', () => {
  it('carry only the fields the cell sets (no defaults leak over the suite workload)', () => {
    const { suite } = prepareSuite('checksum-offload');
    const control = suite.cells.find((c) => c.name === 'pod control')!;
    expect(control.workload).toEqual({ source: 'pod' });
    const dns = suite.cells.find((c) => c.name === 'dns over tcp')!;
    expect(dns.workload).toEqual({ kind: 'resolve', targets: ['kube-dns.kube-system.svc.cluster.local.'], resolverOptions: ['use-vc'], fresh: true });
    expect(suite.workload.source).toBe('node');
  });

  it('a suite\'s defaults reach every cell of that fault; another fault inherits neither mode nor params', () => {
    const { suite } = prepareSuite('conntrack-race');
    const baseline = suite.cells[0]!;
    expect(baseline.fault).toBe('none');
    expect(baseline.mode).toBeUndefined();
    expect(baseline.params).toEqual({});
    const emulated = suite.cells.filter((c) => c.mode === 'emulated');
    expect(emulated.length).toBeGreaterThan(10);
    for (const c of emulated) expect(c.params).toEqual({ dropPercent: 20 });
  });

  it('every shipped suite declares the drop behind its fault; no baseline inherits one', () => {
    for (const { name } of listSuites()) {
      const { suite } = prepareSuite(name);
      for (const c of suite.cells) {
        if (c.fault === 'none') expect(c.cause, `${name}: baseline`).toBeUndefined();
        else expect(c.cause?.reason, `${name}: ${c.fault} ${c.mitigation}`).toMatch(/^[A-Z_]+$/);
      }
    }
    const planned = q(prepareSuite('flannel-arp').suite, ['musl'], true);
    expect(planned.find((c) => c.fault.name === 'mac-churn')?.cause).toEqual({ reason: 'OTHERHOST', where: 'node-3', iface: 'flannel.1', func: 'ip_rcv_core' });
  });

  it('a cause is a kernel drop reason, with no fields of its own invention', () => {
    const base = 'name: x\ndescription: x\nworkload: { targets: [a.] }\ncells:\n  - fault: none\n    expect: clean\n';
    expect(problemsOf(suiteFile(`${base}    cause: { reason: otherhost }\n`))).toMatch(/cause\.reason/);
    expect(problemsOf(suiteFile(`${base}    cause: { reason: OTHERHOST, node: node-3 }\n`))).toMatch(/node/);
  });

  it('node resolver cells require private node files', () => {
    const { suite } = prepareSuite('checksum-offload');
    const dns = q(suite, ['glibc'], true).find((c) => c.name === 'dns over tcp')!;
    expect(dns.requirements.some((r) => 'capability' in r && r.capability === 'privateNodeFiles')).toBe(true);
    expect(dns.requirements.some((r) => 'capability' in r && r.capability === 'ownsKubeProxyChains')).toBe(true);
  });
});

describe('conntrack-race and dead-upstream suites', () => {
  it('conntrack-race: under --quick, each libc\'s own stall, the glibc options, and nodelocaldns for both', () => {
    const { suite } = prepareSuite('conntrack-race');
    const quick = q(suite, ['musl', 'glibc'], true);
    const find = (client: string, mitigation: string) => quick.find((p) => p.client === client && p.mode === 'emulated' && p.mitigation.name === mitigation && !p.name)?.expectation;
    const stall = (e: ReturnType<typeof find>) => (e?.expect === 'reproduces' ? e.stallMs : undefined);
    expect(stall(find('musl', 'none'))).toEqual([2000, 3500]);
    expect(stall(find('glibc', 'none'))).toEqual([4000, 6500]);
    for (const m of ['single-request', 'single-request-reopen', 'use-vc']) {
      expect(find('musl', m)?.expect, `musl ${m}`).toBe('reproduces');
      expect(find('glibc', m)?.expect, `glibc ${m}`).toBe('clean');
    }
    expect(stall(find('glibc', 'ndots'))).toEqual([4000, 6500]);
    expect(stall(find('musl', 'fqdn'))).toEqual([2000, 3500]);
    expect(find('musl', 'nodelocaldns')?.expect).toBe('clean');
    expect(find('glibc', 'nodelocaldns')?.expect).toBe('clean');
    expect(find('glibc', 'glibc-image')).toBeUndefined();
    expect(quick.some((p) => p.mode === 'native')).toBe(true);
  });

  it('dead-upstream: external names stall under none, cluster names do not, both fixes are clean', () => {
    const { suite } = prepareSuite('dead-upstream');
    const plans = q(suite, ['musl'], true).filter((p) => p.fault.name === 'dead-upstream');
    expect(plans.map((p) => `${p.mitigation.name}${p.name ? `/${p.name}` : ''}:${p.expectation.expect}`)).toEqual([
      'none:reproduces',
      'none/cluster names:clean',
      'drop-dead-upstream:clean',
      'forwarder-policy:clean',
    ]);
    const fp = plans.find((p) => p.mitigation.name === 'forwarder-policy')!;
    expect(fp.mitigationParams).toEqual({ policy: 'health-checked' });
    expect(fp.expectation).toEqual({ expect: 'clean', tolerance: 0.002, maxP99Ms: 250 });
  });
});

describe('how sure a verdict must be (issue 14)', () => {
  const head = 'name: x\ndescription: d\nclients: [musl]\nworkload: { targets: [web], durationS: 8 }\n';

  it('a clean tolerance of 0 is refused: no sample shows a share of exactly zero', () => {
    expect(problemsOf(suiteFile(`${head}cells:\n  - expect: clean\n    tolerance: 0\n`))).toMatch(/tolerance: .*must be above 0/);
  });

  it('defaults: confidence and minS reach every cell, tolerance only the clean ones; a cell overrides them', () => {
    const file = suiteFile(
      `${head}defaults: { confidence: 0.99, minS: 3, tolerance: 0.01 }\ncells:\n  - expect: clean\n  - fault: none\n    expect: reproduces\n  - expect: clean\n    confidence: 0.9\n    minS: 1\n    tolerance: 0.05\n`,
    );
    const [clean, repro, own] = q(prepareSuite(file).suite, ['musl'], false);
    expect(clean!.stop).toEqual({ confidence: 0.99, minS: 3 });
    expect(clean!.expectation).toEqual({ expect: 'clean', tolerance: 0.01, maxP99Ms: 100 });
    expect(repro!.stop).toEqual({ confidence: 0.99, minS: 3 });
    expect(repro!.expectation).toEqual({ expect: 'reproduces', affectedRate: [0.01, 1] });
    expect(own!.stop).toEqual({ confidence: 0.9, minS: 1 });
    expect(own!.expectation).toMatchObject({ tolerance: 0.05 });
  });

  it('without settings: 95 %, the default minimum (unset), tolerance 0.002 and the duration as the cap', () => {
    const [cell] = q(prepareSuite(suiteFile(`${head}cells:\n  - expect: clean\n`)).suite, ['musl'], false);
    expect(cell!.stop).toEqual({ confidence: 0.95 });
    expect(cell!.expectation).toMatchObject({ tolerance: 0.002 });
    expect(cell!.workload.durationS).toBe(8);
  });
});
