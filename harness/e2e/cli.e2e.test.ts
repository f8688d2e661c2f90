import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../config/suite.ts';
import { isRoot } from '../doctor.ts';

const CLI = join(ROOT, 'bin', 'vxchaos.js');

function vxchaos(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const namespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;

describe('CLI: bad input exits non-zero with one clear message and creates nothing', () => {
  const before = namespaces();

  it('unknown suite', () => {
    const r = vxchaos(['suite', 'no-such-suite']);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/unknown suite "no-such-suite"; known suites: .*flannel-arp/);
  });

  it('malformed YAML and unknown fields, with positions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vxc-cli-'));
    writeFileSync(join(dir, 'bad.yaml'), 'name: x\ncells: [\n');
    const r = vxchaos(['suite', join(dir, 'bad.yaml')]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/bad\.yaml: \d+ problems?:\n\s+\S*bad\.yaml:\d+:\d+: /);
    writeFileSync(join(dir, 'unknown.yaml'), 'name: unknown\ndescription: d\nworkload: {targets: [a]}\ncells:\n  - {expect: clean, mitigaton: none}\n');
    const u = vxchaos(['suite', join(dir, 'unknown.yaml')]);
    expect(u.code).toBe(2);
    expect(u.out).toContain('5:21: cells[0].mitigaton: unknown field "mitigaton"');
  });

  it('bad flags', () => {
    expect(vxchaos(['suite', 'flannel-arp', '--clients', 'bionic']).out).toContain('unknown client "bionic"');
    expect(vxchaos(['suite', 'flannel-arp', '--duration', '-3']).code).toBe(2);
    expect(vxchaos(['suite', 'flannel-arp', '--provider', 'docker']).out).toMatch(/Allowed choices are netns, kind/);
  });

  it('missing tools name their Debian packages', () => {
    const r = vxchaos(['suite', 'flannel-arp'], { PATH: '/nonexistent', VXCHAOS_EXACT_PATH: '1' });
    if (!isRoot()) return expect(r.out).toContain('needs root');
    expect(r.code).toBe(2);
    expect(r.out).toContain('missing system tools: ip (iproute2)');
    expect(r.out).toMatch(/apt-get install -y .*unbound.*dnsmasq-base/);
  });

  it.skipIf(!isRoot() || !existsSync('/usr/bin/setpriv'))('not root', () => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'suite', 'flannel-arp'], { encoding: 'utf8', env: { ...process.env, HOME: '/tmp' }, timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(`${r.stdout}${r.stderr}`).toContain('needs root');
  });

  it('--help teaches', () => {
    const r = vxchaos(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('npm run suite flannel-arp');
    expect(vxchaos(['suite', '--help']).out).toContain('--quick');
  });

  it('left no namespace behind', () => {
    expect(namespaces()).toBe(before);
  });
});

describe.skipIf(!isRoot())('CLI: Ctrl-C during measurement removes everything (needs root)', () => {
  it('exits 130 and leaves no namespace, process or state of the run', async () => {
    const child = spawn(process.execPath, [CLI, 'suite', 'flannel-arp', '--quick', '--clients', 'musl', '--out', mkdtempSync(join(tmpdir(), 'vxc-int-'))], { env: { ...process.env, CI: 'true' } });
    let log = '';
    const measuring = new Promise<void>((resolve) => {
      const on = (d: Buffer) => {
        log += d.toString();
        if (log.includes('measuring')) resolve();
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await Promise.race([measuring, exited]);
    const runId = /run ([0-9a-f]{6})/.exec(log)?.[1];
    expect(runId, log).toBeDefined();
    // The run's own cluster, or its clusters side by side (<run>.1, <run>.2).
    expect(namespaces()).toMatch(new RegExp(`vxc-${runId}[-.]`));
    await new Promise((r) => setTimeout(r, 1500)); // mid-measurement: the probe is running
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(log).toContain('SIGINT: removing everything this run created');
    expect(namespaces()).not.toContain(`vxc-${runId}`);
    for (const dir of [runId, `${runId}.1`, `${runId}.2`]) expect(existsSync(`/run/vxchaos/${dir}`), dir).toBe(false);
    const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
    expect(ps).not.toContain(`/run/vxchaos/${runId}`);
    expect(ps).not.toMatch(/vxprobe-musl -t/);
  });
});
