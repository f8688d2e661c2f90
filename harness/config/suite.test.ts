import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, UnknownSuiteError } from '../errors.ts';
import { FAULTS } from '../faults/index.ts';
import { MITIGATIONS } from '../mitigations/index.ts';
import { planCells } from '../runner.ts';
import { listSuites, loadSuite } from './suite.ts';

describe('suites', () => {
  it('every shipped suite loads and names only known faults, modes and mitigations', () => {
    const suites = listSuites();
    expect(suites.map((s) => s.name)).toContain('flannel-arp');
    for (const s of suites) {
      const suite = loadSuite(s.name);
      for (const c of suite.cells) {
        const fault = FAULTS[c.fault];
        expect(fault, `${s.name}: fault ${c.fault}`).toBeDefined();
        if (c.mode) expect(fault!.modes).toContain(c.mode);
        expect(MITIGATIONS[c.mitigation], `${s.name}: mitigation ${c.mitigation}`).toBeDefined();
      }
    }
  });

  it('flannel-arp: a clean baseline, the stale-peers incident, and the resync per client', () => {
    const suite = loadSuite('flannel-arp');
    const quick = planCells(suite, ['musl', 'glibc'], true);
    expect(quick.map((p) => `${p.client}:${p.spec.fault}:${p.mode}:${p.spec.mitigation}:${p.spec.expect}`)).toEqual([
      'musl:none:none:none:clean',
      'musl:mac-churn:stale-peers:none:reproduces',
      'musl:mac-churn:stale-peers:neigh-resync:clean',
      'glibc:none:none:none:clean',
      'glibc:mac-churn:stale-peers:none:reproduces',
      'glibc:mac-churn:stale-peers:neigh-resync:clean',
    ]);
    expect(planCells(suite, ['musl'], false).some((p) => p.mode === 'live-peers')).toBe(true);
  });

  it('an unknown suite names the known ones', () => {
    expect(() => loadSuite('no-such-suite')).toThrow(UnknownSuiteError);
    expect(() => loadSuite('no-such-suite')).toThrow(/flannel-arp/);
  });

  it('rejects unknown fields and inconsistent expectations in a suite file, all at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vxc-suite-'));
    const file = join(dir, 'x.yaml');
    writeFileSync(file, 'name: x\ndescription: d\nworkload: {targets: [a], thredas: 2}\ncells:\n  - {expect: clean, affectedRate: [0.1, 0.2]}\n');
    expect(() => loadSuite(file)).toThrow(ConfigError);
    try {
      loadSuite(file);
    } catch (e) {
      expect((e as ConfigError).problems.join('\n')).toContain('workload.thredas: unknown field "thredas"');
    }
    writeFileSync(file, 'name: x\ndescription: d\nworkload: {targets: [a]}\ncells:\n  - {expect: clean, affectedRate: [0.1, 0.2]}\n');
    expect(() => loadSuite(file)).toThrow(/affectedRate: only for expect: reproduces/);
  });
});

describe('cell workload overrides', () => {
  it('carry only the fields the cell sets (no defaults leak over the suite workload)', () => {
    const suite = loadSuite('checksum-offload');
    const control = suite.cells.find((c) => c.name === 'pod control')!;
    expect(control.workload).toEqual({ source: 'pod' });
    const dns = suite.cells.find((c) => c.name === 'dns over tcp')!;
    expect(dns.workload).toEqual({ kind: 'resolve', targets: ['kube-dns.kube-system.svc.cluster.local.'], resolverOptions: ['use-vc'], fresh: true });
    expect(suite.workload.source).toBe('node');
  });
});

describe('conntrack-race and dead-upstream suites', () => {
  it('conntrack-race: under --quick, each libc\'s own stall, the glibc options, and nodelocaldns for both', () => {
    const suite = loadSuite('conntrack-race');
    const quick = planCells(suite, ['musl', 'glibc'], true);
    const find = (client: string, mitigation: string) => quick.find((p) => p.client === client && p.mode === 'emulated' && p.spec.mitigation === mitigation && !p.spec.name)?.spec;
    expect(find('musl', 'none')?.stallMs).toEqual([2000, 3500]);
    expect(find('glibc', 'none')?.stallMs).toEqual([4000, 6500]);
    for (const m of ['single-request', 'single-request-reopen', 'use-vc']) {
      expect(find('musl', m)?.expect, `musl ${m}`).toBe('reproduces');
      expect(find('glibc', m)?.expect, `glibc ${m}`).toBe('clean');
    }
    expect(find('musl', 'nodelocaldns')?.expect).toBe('clean');
    expect(find('glibc', 'nodelocaldns')?.expect).toBe('clean');
    expect(find('glibc', 'glibc-image')).toBeUndefined();
    expect(quick.some((p) => p.mode === 'native')).toBe(true);
  });

  it('dead-upstream: external names stall under none, cluster names do not, both fixes are clean', () => {
    const suite = loadSuite('dead-upstream');
    const plans = planCells(suite, ['musl'], true).filter((p) => p.spec.fault === 'dead-upstream');
    expect(plans.map((p) => `${p.spec.mitigation}${p.spec.name ? `/${p.spec.name}` : ''}:${p.spec.expect}`)).toEqual([
      'none:reproduces',
      'none/cluster names:clean',
      'drop-dead-upstream:clean',
      'forwarder-policy:clean',
    ]);
  });

  it('stallMs is only for reproduces, and min ≤ max', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vxc-suite-'));
    const file = join(dir, 'x.yaml');
    writeFileSync(file, 'name: x\ndescription: d\nworkload: {targets: [a]}\ncells:\n  - {expect: clean, stallMs: [1, 2]}\n  - {expect: reproduces, stallMs: [3, 2]}\n');
    expect(() => loadSuite(file)).toThrow(/cells\[0\]\.stallMs: only for expect: reproduces[\s\S]*cells\[1\]\.stallMs: min is above max/);
  });
});
