import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DROPTRACER_BIN, dropTracerBlocker } from '../doctor.ts';
import { NETNS_PREFIX } from '../providers/netns/ledger.ts';
import { cleanupShell, shell } from '../exec/shell.ts';
import { localDropHost } from '../measure/drops-local.ts';
import { DropTracer, netnsInode } from '../measure/drops.ts';
import { parseProbeOutput } from '../measure/probe.ts';
import { PROBE_BINARIES } from '../providers/netns/provider.ts';
import type { DropsOverheadResult, DropsOverheadRun } from './model.ts';
import { median } from './stats.ts';

const SERVER_PORT = 8080;
const CLOSED_PORT = 8081;

/**
 * The drop tracer's cost (issue 11, item 5): TCP connects from namespace a to b over a veth pair, with the
 * tracer off and on, on a clean path (b accepts: nothing dropped) and a drop-heavy one (b has no listener:
 * every SYN dies as NO_SOCKET). Reports connects/s both ways and, from the kernel's BPF accounting, the
 * program's run time per drop. Off and on alternate so a machine that gets busier does not favour one.
 */
export async function benchDrops(benchId: string, quick: boolean, log: (s: string) => void): Promise<DropsOverheadResult> {
  const blocker = dropTracerBlocker();
  if (blocker) throw new Error(`drops: unavailable (${blocker})`);
  const a = `${NETNS_PREFIX}${benchId}-dra`;
  const b = `${NETNS_PREFIX}${benchId}-drb`;
  const dir = mkdtempSync(join(tmpdir(), 'vxc-bench-drops-'));
  const reps = quick ? 1 : 3;
  const durationS = quick ? 2 : 3;
  const threads = 2;
  let server: { pid: number } | undefined;
  try {
    for (const n of [a, b]) await shell(['ip', 'netns', 'add', n]);
    await shell(['ip', '-n', a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b]);
    await shell(['ip', '-n', a, 'addr', 'add', '10.99.0.1/24', 'dev', 'eth0']);
    await shell(['ip', '-n', b, 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
    for (const n of [a, b]) for (const dev of ['lo', 'eth0']) await shell(['ip', '-n', n, 'link', 'set', dev, 'up']);
    server = await localDropHost.spawn(['ip', 'netns', 'exec', b, PROBE_BINARIES.glibc, '-L', String(SERVER_PORT)], { log: join(dir, 'server.log') });
    const names = new Map([[await netnsInode(localDropHost, a), 'a'], [await netnsInode(localDropHost, b), 'b']]);

    const connects = async (port: number) => {
      const r = await shell(['ip', 'netns', 'exec', a, PROBE_BINARIES.glibc, '-t', String(threads), '-d', String(durationS), '-C', '-p', String(port), '10.99.0.2'], { timeoutMs: (durationS + 30) * 1000 });
      const out = parseProbeOutput(r.stdout);
      return { n: out.samples.length, perS: out.samples.length / (out.wallUs / 1e6) };
    };

    const runs: DropsOverheadRun[] = [];
    for (const path of ['clean', 'drops'] as const) {
      const port = path === 'clean' ? SERVER_PORT : CLOSED_PORT;
      for (let rep = 0; rep < reps; rep++) {
        for (const tracer of rep % 2 === 0 ? [false, true] : [true, false]) {
          if (!tracer) {
            const c = await connects(port);
            runs.push({ path, tracer, rep, connects: c.n, connectsPerS: c.perS });
            continue;
          }
          const t = await DropTracer.start(localDropHost, { binary: DROPTRACER_BIN, dir: join(dir, `t${runs.length}`), exitWith: process.pid, stats: true });
          try {
            for (const [ino, name] of names) await t.watch(ino, name);
            const before = await t.snapshot();
            const s0 = t.lastStats!;
            const c = await connects(port);
            const rows = t.delta(before, await t.snapshot());
            const s1 = t.lastStats!;
            const runCnt = (s1.runCnt ?? 0) - (s0.runCnt ?? 0);
            const runNs = (s1.runNs ?? 0) - (s0.runNs ?? 0);
            runs.push({
              path,
              tracer,
              rep,
              connects: c.n,
              connectsPerS: c.perS,
              dropsCounted: rows.reduce((x, r) => x + r.count, 0),
              topDrop: rows[0] ? `${rows[0].ns} ${rows[0].iface} ${rows[0].reason} (${rows[0].func}) ×${rows[0].count}` : undefined,
              programRuns: runCnt,
              nsPerRun: runCnt > 0 ? runNs / runCnt : undefined,
            });
          } finally {
            await t.stop();
          }
        }
      }
    }
    const summary = (['clean', 'drops'] as const).map((path) => {
      const off = median(runs.filter((r) => r.path === path && !r.tracer).map((r) => r.connectsPerS));
      const on = runs.filter((r) => r.path === path && r.tracer);
      const onPerS = median(on.map((r) => r.connectsPerS));
      const perRun = on.map((r) => r.nsPerRun).filter((x): x is number => x !== undefined);
      return {
        path,
        connectsPerSOff: off,
        connectsPerSOn: onPerS,
        slowdown: off > 0 ? 1 - onPerS / off : 0,
        dropsPerConnect: median(on.map((r) => (r.dropsCounted ?? 0) / Math.max(1, r.connects))),
        nsPerDrop: perRun.length ? median(perRun) : undefined,
      };
    });
    for (const s of summary) {
      log(`  ${s.path}: ${Math.round(s.connectsPerSOff)} connects/s without the tracer, ${Math.round(s.connectsPerSOn)} with (${(s.slowdown * 100).toFixed(1)} % slower); ${s.dropsPerConnect.toFixed(2)} drops per connect; ${s.nsPerDrop === undefined ? 'no program runs' : `${Math.round(s.nsPerDrop)} ns per program run`}`);
    }
    return { threads, durationS, reps, runs, summary };
  } finally {
    if (server) await localDropHost.kill(server.pid, 'SIGKILL');
    for (const n of [a, b]) await cleanupShell(['ip', 'netns', 'del', n], { nothrow: true });
    rmSync(dir, { recursive: true, force: true });
  }
}
