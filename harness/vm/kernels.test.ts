import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aptConfig, findKernelFiles, imagePackageFrom, parseAptSources, parseKernelSpec, systemMirrors } from './kernels.ts';

const mirrors = { debian: 'http://mirror.example/debian', security: 'http://mirror.example/debian-security', keyring: '/usr/share/keyrings/debian-archive-keyring.gpg' };

describe('private apt configuration', () => {
  it('lists the suite and its security suite on the given mirror, signed by the Debian keyring', () => {
    const c = aptConfig('bullseye', mirrors, '/cache/apt/bullseye');
    expect(c.sourcesList).toBe(
      'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bullseye main\n' +
        'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian-security bullseye-security main\n',
    );
  });

  it('points every apt path it reads or writes into its own directory', () => {
    const c = aptConfig('trixie', mirrors, '/cache/apt/trixie');
    const opts = Object.fromEntries(
      c.options.filter((_, i) => i % 2 === 1).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    expect(c.options.filter((_, i) => i % 2 === 0).every((o) => o === '-o')).toBe(true);
    for (const key of ['Dir::Etc::SourceList', 'Dir::Etc::SourceParts', 'Dir::Etc::Preferences', 'Dir::Etc::PreferencesParts', 'Dir::State', 'Dir::State::Lists', 'Dir::State::status', 'Dir::Cache', 'Dir::Cache::Archives']) {
      expect(opts[key], key).toMatch(/^\/cache\/apt\/trixie\//);
    }
    expect(opts['APT::Architecture']).toBe('amd64');
  });

  it('leaves the security suite out when the system has no security mirror', () => {
    const c = aptConfig('bookworm', { ...mirrors, security: undefined }, '/x');
    expect(c.sourcesList.trim().split('\n')).toHaveLength(1);
  });
});

describe('system mirror', () => {
  it('reads deb822 and one-line sources, skipping other archives', () => {
    const etc = mkdtempSync(join(tmpdir(), 'vxc-apt-'));
    mkdirSync(join(etc, 'sources.list.d'));
    writeFileSync(join(etc, 'sources.list'), 'deb https://packages.example.com/apt cloud-sdk-bookworm main\n');
    writeFileSync(
      join(etc, 'sources.list.d', 'debian.sources'),
      'Types: deb\nURIs: http://ftp.example.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n' +
        'Types: deb\n# a comment\nURIs: http://security.example.org/debian-security\nSuites: bookworm-security\nComponents: main\n',
    );
    const m = systemMirrors(etc);
    expect(m.debian).toBe('http://ftp.example.org/debian');
    expect(m.security).toBe('http://security.example.org/debian-security');
  });

  it('parses signed-by from one-line entries', () => {
    expect(parseAptSources('deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main # x\n# deb http://n/ sid main\n', false)).toEqual([
      { uris: ['http://m/debian'], suites: ['bookworm'], signedBy: '/k.gpg' },
    ]);
  });
});

describe('kernel package and spec', () => {
  it('picks the generic versioned image the metapackage depends on', () => {
    expect(imagePackageFrom('linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n')).toBe('linux-image-6.1.0-57-amd64');
    expect(imagePackageFrom('linux-image-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n')).toBeUndefined();
  });

  it('parses --kernel specs and refuses unknown suites', () => {
    expect(parseKernelSpec('host')).toEqual({ kind: 'host' });
    expect(parseKernelSpec('debian:bookworm')).toEqual({ kind: 'debian', suite: 'bookworm' });
    expect(parseKernelSpec('./k/linux.deb')).toMatchObject({ kind: 'path' });
    expect(() => parseKernelSpec('debian:potato')).toThrow(/unknown Debian suite/);
    expect(() => parseKernelSpec('6.1')).toThrow(/expected host/);
  });
});

describe('a user kernel directory', () => {
  it('finds boot/vmlinuz-<release>, its config and lib/modules/<release> (or usr/lib/modules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vxc-own-'));
    mkdirSync(join(dir, 'boot'));
    mkdirSync(join(dir, 'usr', 'lib', 'modules', '4.9.0-19-amd64'), { recursive: true });
    writeFileSync(join(dir, 'boot', 'vmlinuz-4.9.0-19-amd64'), '');
    writeFileSync(join(dir, 'boot', 'config-4.9.0-19-amd64'), '');
    expect(findKernelFiles(dir)).toEqual({
      vmlinuz: join(dir, 'boot', 'vmlinuz-4.9.0-19-amd64'),
      release: '4.9.0-19-amd64',
      config: join(dir, 'boot', 'config-4.9.0-19-amd64'),
      modules: join(dir, 'usr', 'lib', 'modules', '4.9.0-19-amd64'),
    });
    expect(() => findKernelFiles(mkdtempSync(join(tmpdir(), 'vxc-empty-')))).toThrow(/no kernel image/);
  });
});
