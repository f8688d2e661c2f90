import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTERS_DIR, ROOT } from '../../config/suite.ts';
import { DEFAULT_FLANNEL_VERSION, FLANNEL_VERSIONS } from './flannel.ts';
import { FLANNEL_MANIFEST_PINS, NODE_LOCAL_DNS_PIN, type ManifestPin } from './pins.ts';

const all: [string, ManifestPin][] = [...Object.entries(FLANNEL_MANIFEST_PINS), ['nodelocaldns', NODE_LOCAL_DNS_PIN]];

describe('pin table', () => {
  it('has exactly one kube-flannel pin per version in FLANNEL_VERSIONS, the default among them', () => {
    expect(Object.keys(FLANNEL_MANIFEST_PINS).sort()).toEqual(FLANNEL_VERSIONS.map((f) => f.version).sort());
    expect(FLANNEL_MANIFEST_PINS).toHaveProperty(DEFAULT_FLANNEL_VERSION);
  });

  it.each(all)('%s: an https URL, a 64-hex-digit sha256, the commit its ref resolves to', (_, pin) => {
    expect(new URL(pin.url).protocol).toBe('https:');
    expect(pin.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(pin.source.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(pin.url).toBe(`https://raw.githubusercontent.com/${pin.source.repo}/${pin.source.ref}/${pin.source.path}`);
  });

  it.each(Object.entries(FLANNEL_MANIFEST_PINS))('flannel %s: Documentation/kube-flannel.yml at that release tag, running that flanneld', (version, pin) => {
    expect(pin.source).toMatchObject({ repo: 'flannel-io/flannel', path: 'Documentation/kube-flannel.yml', ref: version });
    expect(pin.images.some((i) => i.endsWith(`/flannel:${version}`))).toBe(true);
  });

  it('NodeLocal DNSCache: the addon template at an immutable commit', () => {
    expect(NODE_LOCAL_DNS_PIN.source).toMatchObject({ repo: 'kubernetes/kubernetes', path: 'cluster/addons/dns/nodelocaldns/nodelocaldns.yaml' });
    expect(NODE_LOCAL_DNS_PIN.source.ref).toBe(NODE_LOCAL_DNS_PIN.source.commit);
    expect(NODE_LOCAL_DNS_PIN.images).toEqual(['registry.k8s.io/dns/k8s-dns-node-cache:1.26.4']);
  });

  it('no two pins share a hash (a copy-paste slip would)', () => {
    expect(new Set(all.map(([, p]) => p.sha256)).size).toBe(all.length);
  });
});

describe('the repository', () => {
  it('documents every pin (URL, sha256, source commit) in docs/kind.md', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'kind.md'), 'utf8');
    for (const [, pin] of all) {
      expect(doc).toContain(`\`${pin.url}\` | \`${pin.sha256}\``);
      expect(doc).toContain(pin.source.commit);
    }
  });

  it('keeps no copy of an upstream manifest under clusters/kind/ (they are fetched and checked at run time)', () => {
    const dir = join(CLUSTERS_DIR, 'kind');
    const files = (d: string): string[] => (existsSync(d) ? readdirSync(d).flatMap((e) => (statSync(join(d, e)).isDirectory() ? files(join(d, e)) : [join(d, e)])) : []);
    expect(files(dir).filter((f) => /\.ya?ml$/.test(f))).toEqual([]);
  });
});
