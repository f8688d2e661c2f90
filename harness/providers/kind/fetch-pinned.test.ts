import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadTopology } from '../../config/topology.ts';
import { cachePath, defaultCacheDir, fetchPinned, PinnedFetchError, PinnedHashError, pinnedManifests, sha256Hex, type FetchLike } from './fetch-pinned.ts';
import { flannelPin } from './flannel.ts';
import { NODE_LOCAL_DNS_PIN, type ManifestPin } from './pins.ts';

/** A loopback HTTP server: path → [status, body]; counts the requests per path. */
const routes = new Map<string, [number, string]>();
const hits = new Map<string, number>();
let server: Server;
let base = '';
const dir = mkdtempSync(join(tmpdir(), 'vxchaos-pins-'));
let cacheDir = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const [status, body] = routes.get(path) ?? [404, 'not found'];
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
beforeEach(() => {
  cacheDir = join(dir, `cache-${++n}`);
});

const BODY = '---\nkind: ConfigMap\nmetadata:\n  name: x\n# ünïcode survives as bytes\n';
const pinFor = (path: string, sha256: string): ManifestPin => ({
  name: `test manifest ${path}`,
  url: `${base}${path}`,
  sha256,
  source: { repo: 'example/example', path: 'x.yml', ref: 'v0', commit: '0'.repeat(40) },
  images: [],
});

describe('fetchPinned', () => {
  it('returns the bytes when their sha256 is the pinned one, and caches them by hash', async () => {
    routes.set('/good.yml', [200, BODY]);
    const pin = pinFor('/good.yml', sha256Hex(Buffer.from(BODY, 'utf8')));
    expect(await fetchPinned(pin, { cacheDir })).toBe(BODY);
    const file = cachePath(cacheDir, pin);
    expect(file).toBe(join(cacheDir, `${pin.sha256}-good.yml`));
    expect(readFileSync(file, 'utf8')).toBe(BODY);
    // the second time from the cache: no request
    expect(await fetchPinned(pin, { cacheDir })).toBe(BODY);
    expect(hits.get('/good.yml')).toBe(1);
  });

  it('refuses other bytes, naming URL, expected and actual hash; caches nothing and does not retry', async () => {
    routes.set('/changed.yml', [200, `${BODY}# changed upstream\n`]);
    const expected = sha256Hex(BODY);
    const actual = sha256Hex(`${BODY}# changed upstream\n`);
    const pin = pinFor('/changed.yml', expected);
    const err = await fetchPinned(pin, { cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PinnedHashError);
    const e = err as PinnedHashError;
    expect(e.code).toBe('E_KIND_MANIFEST_HASH');
    expect(e.message).toContain(`sha256 mismatch for ${base}/changed.yml`);
    expect(e.message).toContain(`expected sha256 ${expected}`);
    expect(e.message).toContain(`actual   sha256 ${actual}`);
    expect({ url: e.url, expected: e.expected, actual: e.actual }).toEqual({ url: pin.url, expected, actual });
    expect(existsSync(cachePath(cacheDir, pin))).toBe(false);
    expect(hits.get('/changed.yml')).toBe(1);
  });

  it('downloads again when the cached copy no longer has the pinned hash', async () => {
    routes.set('/damaged.yml', [200, BODY]);
    const pin = pinFor('/damaged.yml', sha256Hex(BODY));
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(cachePath(cacheDir, pin), 'tampered\n');
    expect(await fetchPinned(pin, { cacheDir })).toBe(BODY);
    expect(hits.get('/damaged.yml')).toBe(1);
    expect(readFileSync(cachePath(cacheDir, pin), 'utf8')).toBe(BODY);
  });

  it('still returns verified bytes when the cache cannot be written', async () => {
    routes.set('/uncachable.yml', [200, BODY]);
    const pin = pinFor('/uncachable.yml', sha256Hex(BODY));
    const blocker = join(dir, `blocker-${n}`);
    writeFileSync(blocker, 'a file where the cache directory should be\n');
    const stderr = process.stderr.write;
    const said: string[] = [];
    process.stderr.write = ((s: string) => said.push(s) > 0) as typeof process.stderr.write;
    try {
      expect(await fetchPinned(pin, { cacheDir: join(blocker, 'manifests') })).toBe(BODY);
    } finally {
      process.stderr.write = stderr;
    }
    expect(said.join('')).toMatch(/warning: could not cache test manifest \/uncachable\.yml/);
  });

  it('fails on a missing file with the URL and HTTP status, without retrying', async () => {
    const pin = pinFor('/missing.yml', sha256Hex(BODY));
    const err = await fetchPinned(pin, { cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PinnedFetchError);
    expect((err as Error).message).toBe(`test manifest /missing.yml: could not download ${base}/missing.yml: HTTP 404 Not Found`);
    expect(hits.get('/missing.yml')).toBe(1);
  });

  it('retries server errors, then checks the hash of what finally arrives', async () => {
    let calls = 0;
    const flaky: FetchLike = async (url, init) => {
      calls++;
      return fetch(calls === 1 ? `${base}/unavailable` : url, init);
    };
    routes.set('/unavailable', [503, 'try later']);
    routes.set('/eventually.yml', [200, BODY]);
    const pin = pinFor('/eventually.yml', sha256Hex(BODY));
    expect(await fetchPinned(pin, { cacheDir, fetch: flaky, retries: 1 })).toBe(BODY);
    expect(calls).toBe(2);
  });

  it('fails on a network error with the URL, and on a pin whose hash is not 64 hex digits', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const pin = { ...pinFor('/x.yml', sha256Hex(BODY)), url: `http://127.0.0.1:${port}/x.yml` };
    await expect(fetchPinned(pin, { cacheDir, retries: 0 })).rejects.toThrow(new RegExp(`could not download http://127\\.0\\.0\\.1:${port}/x\\.yml: .*ECONNREFUSED`));
    await expect(fetchPinned({ ...pin, sha256: 'ABC' }, { cacheDir })).rejects.toThrow(/pinned sha256 "ABC" is not 64 lower-case hex digits/);
  });
});

describe('pinnedManifests', () => {
  const topology = loadTopology('t.yaml', 'name: t\nnodes: [{name: a}]\nclients: {node: a}\ndns: {replicas: [a]}\n');
  /** Every pinned URL answered by the loopback server with bytes that are not upstream's. */
  const impostor: FetchLike = (_url, init) => fetch(`${base}/impostor.yml`, init);

  it('never renders bytes that fail the pin: flannel and NodeLocal DNSCache alike', async () => {
    routes.set('/impostor.yml', [200, BODY]);
    const m = pinnedManifests({ cacheDir, fetch: impostor, retries: 0 });
    const flannel = await m.flannel(topology, 'v0.26.7').catch((e: unknown) => e);
    expect(flannel).toBeInstanceOf(PinnedHashError);
    expect((flannel as PinnedHashError).url).toBe(flannelPin('v0.26.7').url);
    expect((flannel as PinnedHashError).expected).toBe(flannelPin('v0.26.7').sha256);
    expect((flannel as PinnedHashError).actual).toBe(sha256Hex(BODY));
    await expect(m.nodeLocalDns(topology)).rejects.toThrow(new RegExp(`sha256 mismatch for ${NODE_LOCAL_DNS_PIN.url.replaceAll('.', '\\.')}`));
  });

  it('refuses an unpinned flannel version before any download', async () => {
    const before = hits.get('/impostor.yml') ?? 0;
    await expect(pinnedManifests({ cacheDir, fetch: impostor }).flannel(topology, 'v0.7.1')).rejects.toThrow(/no pinned kube-flannel manifest/);
    expect(hits.get('/impostor.yml') ?? 0).toBe(before);
  });
});

describe('cache directory', () => {
  it('is $VXCHAOS_CACHE_DIR, else $XDG_CACHE_HOME/vxchaos, else ~/.cache/vxchaos, with manifests/ under it', () => {
    expect(defaultCacheDir({ VXCHAOS_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c/manifests');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/vxchaos/manifests');
    expect(defaultCacheDir({})).toMatch(/\/\.cache\/vxchaos\/manifests$/);
  });
});
