import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import pRetry, { AbortError } from 'p-retry';
import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import { flannelPin, renderFlannelManifest } from './flannel.ts';
import { nodeLocalDnsManifest } from './manifests.ts';
import { NODE_LOCAL_DNS_PIN, type ManifestPin } from './pins.ts';

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The bytes at a pinned URL are not the pinned ones: upstream changed them, or something in between did. */
export class PinnedHashError extends VxError {
  readonly url: string;
  readonly expected: string;
  readonly actual: string;
  constructor(pin: Pick<ManifestPin, 'name' | 'url' | 'sha256'>, actual: string) {
    super(
      'E_KIND_MANIFEST_HASH',
      `${pin.name}: sha256 mismatch for ${pin.url}\n  expected sha256 ${pin.sha256}\n  actual   sha256 ${actual}\n` +
        'nothing was applied; if upstream really changed the file, review it and update the pin in harness/providers/kind/pins.ts',
    );
    this.name = 'PinnedHashError';
    this.url = pin.url;
    this.expected = pin.sha256;
    this.actual = actual;
  }
}

export class PinnedFetchError extends VxError {
  constructor(pin: Pick<ManifestPin, 'name' | 'url'>, why: string) {
    super('E_KIND_MANIFEST_FETCH', `${pin.name}: could not download ${pin.url}: ${why}`);
    this.name = 'PinnedFetchError';
  }
}

/** $VXCHAOS_CACHE_DIR, else $XDG_CACHE_HOME/vxchaos, else ~/.cache/vxchaos; pinned files go in manifests/. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.VXCHAOS_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vxchaos');
  return join(base, 'manifests');
}

export type FetchLike = (url: string, init: { signal: AbortSignal }) => Promise<Pick<Response, 'ok' | 'status' | 'statusText' | 'arrayBuffer'>>;

export interface FetchPinnedOptions {
  /** Where verified files are kept, named by their sha256; default defaultCacheDir(). */
  cacheDir?: string;
  /** Default: Node's global fetch. */
  fetch?: FetchLike;
  /** Per attempt; default 60 s. */
  timeoutMs?: number;
  /** Further attempts after a network error, a 5xx or a 429; never after a hash mismatch. Default 2. */
  retries?: number;
}

/** The cache file of a pin: content-addressed, so a changed pin never reads an old file. */
export function cachePath(cacheDir: string, pin: Pick<ManifestPin, 'url' | 'sha256'>): string {
  const base = pin.url.split('/').pop()?.replace(/[^\w.-]/g, '_') || 'manifest';
  return join(cacheDir, `${pin.sha256}-${base}`);
}

/** Removes a file if it is there; a path that cannot hold it (ENOTDIR and the like) has nothing to remove. */
function removeQuietly(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // nothing there to remove
  }
}

function readCached(file: string, sha256: string): Buffer | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  if (sha256Hex(bytes) === sha256) return bytes;
  // A damaged or foreign file under our name: drop it and download again.
  removeQuietly(file);
  return undefined;
}

/**
 * The text of a pinned file: from the cache when a copy there still has the pinned sha256, else downloaded,
 * checked against the pin (a mismatch throws PinnedHashError naming URL, expected and actual hash, and
 * nothing is cached), then cached. Only verified bytes ever leave this function.
 */
export async function fetchPinned(pin: ManifestPin, opts: FetchPinnedOptions = {}): Promise<string> {
  if (!/^[0-9a-f]{64}$/.test(pin.sha256)) throw new VxError('E_KIND_MANIFEST_PIN', `${pin.name}: pinned sha256 "${pin.sha256}" is not 64 lower-case hex digits`);
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const file = cachePath(cacheDir, pin);
  const cached = readCached(file, pin.sha256);
  if (cached) return cached.toString('utf8');

  const doFetch: FetchLike = opts.fetch ?? ((url, init) => fetch(url, init));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const bytes = await pRetry(
    async () => {
      let res: Awaited<ReturnType<FetchLike>>;
      let body: Buffer;
      try {
        res = await doFetch(pin.url, { signal: AbortSignal.timeout(timeoutMs) });
        body = res.ok ? Buffer.from(await res.arrayBuffer()) : Buffer.alloc(0);
      } catch (e) {
        const cause = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
        throw new PinnedFetchError(pin, e instanceof Error && e.name === 'TimeoutError' ? `no complete answer within ${timeoutMs} ms` : cause);
      }
      if (!res.ok) {
        const err = new PinnedFetchError(pin, `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
        // A missing or forbidden file stays missing: only server trouble is worth another try.
        throw res.status >= 500 || res.status === 429 ? err : new AbortError(err);
      }
      const actual = sha256Hex(body);
      if (actual !== pin.sha256) throw new AbortError(new PinnedHashError(pin, actual));
      return body;
    },
    { retries: opts.retries ?? 2, minTimeout: 1_000, factor: 2, randomize: false },
  );

  // The cache only saves a download: a cache that cannot be written costs the next run one, nothing more.
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (e) {
    removeQuietly(tmp);
    process.stderr.write(`warning: could not cache ${pin.name} in ${cacheDir}: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  return bytes.toString('utf8');
}

/**
 * Where the provider gets the manifests it applies. The real one downloads, verifies and renders; a dry-run
 * plan substitutes one that only says what it would fetch and change.
 */
export interface KindManifests {
  /** kube-flannel.yml of `version`: fetched from its pin, sha256-checked, net-conf.json rendered from the topology. */
  flannel(topology: Topology, version: string): Promise<string>;
  /** The NodeLocal DNSCache addon: fetched from its pin, sha256-checked, placeholders filled from the topology. */
  nodeLocalDns(topology: Topology): Promise<string>;
}

export function pinnedManifests(opts: FetchPinnedOptions = {}): KindManifests {
  return {
    flannel: async (topology, version) => renderFlannelManifest(topology, await fetchPinned(flannelPin(version), opts)),
    nodeLocalDns: async (topology) => nodeLocalDnsManifest(topology, await fetchPinned(NODE_LOCAL_DNS_PIN, opts)),
  };
}
