import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from './host.ts';

/** What a person reads first when a cell fails on a node: neighbours, FDB, routes, rules, conntrack stats. */
export const NODE_DIAGNOSTICS: readonly (readonly string[])[] = [
  ['ip', 'neigh'],
  ['bridge', 'fdb'],
  ['ip', 'route'],
  ['ip', '-d', 'link'],
  ['iptables-save'],
  ['nft', 'list', 'ruleset'],
  ['conntrack', '-S'],
];

const TIMEOUT_MS = 10_000;

/**
 * Reads diagnostics of the run through the Host (where the namespaces are) and writes them into dir on the
 * harness's own filesystem (the report directory): one file per namespace, one per daemon log. Never throws:
 * what could not be read is written as the error it gave.
 */
export async function collectNetnsLogs(
  host: Host,
  targets: readonly { name: string; netns: string }[],
  daemonLogDir: string,
  dir: string,
): Promise<string[]> {
  const written: string[] = [];
  try {
    await mkdir(dir, { recursive: true });
  } catch {
    return written;
  }
  const put = async (file: string, content: string) => {
    try {
      await writeFile(join(dir, file), content);
      written.push(join(dir, file));
    } catch {
      /* a report directory we cannot write to: nothing else to do */
    }
  };
  await Promise.all(
    targets.map(async (t) => {
      const parts: string[] = [];
      for (const argv of NODE_DIAGNOSTICS) {
        const r = await host.run(['ip', 'netns', 'exec', t.netns, ...argv], { nothrow: true, timeoutMs: TIMEOUT_MS }).catch((e: Error) => ({ stdout: '', stderr: e.message, exitCode: null }));
        parts.push(`### ${argv.join(' ')}${r.exitCode === 0 ? '' : ` (exit ${r.exitCode ?? 'signal'})`}\n${r.stdout}${r.stderr ? `${r.stderr}\n` : ''}`);
      }
      await put(`${t.name}.txt`, `# ${t.name} (namespace ${t.netns}, host ${host.describe})\n\n${parts.join('\n')}`);
    }),
  );
  const ls = await host.run(['find', daemonLogDir, '-maxdepth', '1', '-type', 'f', '-name', '*.log', '-printf', '%f\\n'], { nothrow: true, timeoutMs: TIMEOUT_MS }).catch(() => undefined);
  for (const f of (ls?.stdout ?? '').split('\n').filter(Boolean).sort()) {
    const text = await host.readFile(join(daemonLogDir, f)).catch((e: Error) => `(cannot read ${f}: ${e.message})\n`);
    await put(`daemon-${f}`, `# ${join(daemonLogDir, f)} on ${host.describe}\n${text}`);
  }
  return written;
}
