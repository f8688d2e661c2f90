import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROPTRACER_BIN, dropTracerBlocker, isRoot } from '../doctor.ts';
import { cleanupShell, shell } from '../exec/shell.ts';
import { localDropHost } from './drops-local.ts';
import { type DropRow, type DropSnapshot, DropTracer, DropsUnavailableError, netnsInode } from './drops.ts';

const blocker = !isRoot() ? 'not root' : (dropTracerBlocker() ?? (existsSync(DROPTRACER_BIN) ? undefined : 'build/vxdrops not built'));

/** Two namespaces joined by a veth pair (vxd-a ↔ vxd-b), 10.99.<n>.1 and .2; nothing in the root namespace. */
interface Pair {
  a: string;
  b: string;
  inoA: number;
  inoB: number;
  net: string;
}

describe.skipIf(blocker !== undefined)(`drop tracer on real namespaces (needs root, BTF; ${blocker ?? 'ok'})`, () => {
  const id = randomBytes(3).toString('hex');
  const created: string[] = [];
  const tracers: DropTracer[] = [];
  const dirs: string[] = [];

  const ns = (name: string, argv: string[]) => shell(['ip', 'netns', 'exec', name, ...argv], { timeoutMs: 10_000 });

  async function pair(tag: string, subnet: number): Promise<Pair> {
    const a = `vxc-drops${id}-${tag}a`;
    const b = `vxc-drops${id}-${tag}b`;
    for (const n of [a, b]) {
      await shell(['ip', 'netns', 'add', n]);
      created.push(n);
    }
    // Created inside a with its peer moved straight into b: the root namespace never holds either end.
    await shell(['ip', '-n', a, 'link', 'add', 'vxd-a', 'type', 'veth', 'peer', 'name', 'vxd-b', 'netns', b]);
    const net = `10.99.${subnet}`;
    await shell(['ip', '-n', a, 'addr', 'add', `${net}.1/24`, 'dev', 'vxd-a']);
    await shell(['ip', '-n', b, 'addr', 'add', `${net}.2/24`, 'dev', 'vxd-b']);
    for (const [n, dev] of [[a, 'vxd-a'], [b, 'vxd-b']] as const) {
      await shell(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
      await shell(['ip', '-n', n, 'link', 'set', dev, 'up']);
    }
    return { a, b, inoA: await netnsInode(localDropHost, a), inoB: await netnsInode(localDropHost, b), net };
  }

  /** n UDP datagrams from namespace `from` to ip:port (bash's /dev/udp: one socket, one datagram each). */
  const sendUdp = (from: string, ip: string, port: number, n: number) =>
    ns(from, ['bash', '-c', `for i in $(seq ${n}); do echo drop > /dev/udp/${ip}/${port}; done`]);

  async function startTracer(): Promise<DropTracer> {
    const dir = mkdtempSync(join(tmpdir(), 'vxc-drops-'));
    dirs.push(dir);
    const t = await DropTracer.start(localDropHost, { binary: DROPTRACER_BIN, dir, exitWith: process.pid });
    tracers.push(t);
    return t;
  }

  const rowsOf = (rows: DropRow[], where: Partial<DropRow>) =>
    rows.filter((r) => Object.entries(where).every(([k, v]) => r[k as keyof DropRow] === v));
  const sum = (rows: DropRow[]) => rows.reduce((s, r) => s + r.count, 0);

  /** Snapshots until `done` holds for the delta or 3 s pass: softirq may still be delivering the last datagram. */
  async function settle(t: DropTracer, before: DropSnapshot, done: (rows: DropRow[]) => boolean): Promise<DropRow[]> {
    const deadline = Date.now() + 3_000;
    for (;;) {
      const rows = t.delta(before, await t.snapshot());
      if (done(rows) || Date.now() > deadline) return rows;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  let p1: Pair;
  let p2: Pair;
  beforeAll(async () => {
    p1 = await pair('1', 1);
    p2 = await pair('2', 2);
  });

  afterAll(async () => {
    for (const t of tracers) await t.stop();
    for (const n of created) await cleanupShell(['ip', 'netns', 'del', n], { nothrow: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    expect((await cleanupShell(['ip', 'netns', 'list'])).stdout).not.toContain(`vxc-drops${id}`);
  });

  it('counts an nft drop rule in namespace b as NETFILTER_DROP in nft_do_chain, exactly as often as the rule counted', async () => {
    const t = await startTracer();
    await t.watch(p1.inoA, 'node-a');
    await t.watch(p1.inoB, 'node-b');
    await shell(['ip', 'netns', 'exec', p1.b, 'nft', '-f', '-'], {
      input: 'table inet vxdrops {\n chain input {\n  type filter hook input priority 0;\n  udp dport 7777 counter drop\n }\n}\n',
    });
    const before = await t.snapshot();
    await sendUdp(p1.a, `${p1.net}.2`, 7777, 7);
    const nftCount = async () => {
      const j = JSON.parse((await ns(p1.b, ['nft', '-j', 'list', 'table', 'inet', 'vxdrops'])).stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
      return j.nftables.flatMap((o) => o.rule?.expr ?? []).find((e) => e.counter)?.counter?.packets ?? -1;
    };
    const where = { ns: 'node-b', reason: 'NETFILTER_DROP', func: 'nft_do_chain', proto: 'udp', port: 7777 };
    const rows = await settle(t, before, (r) => sum(rowsOf(r, where)) >= 7);
    const hit = rowsOf(rows, where);
    expect(hit.map((r) => r.iface)).toEqual(['vxd-b']);
    expect(hit[0]!.netnsInode).toBe(p1.inoB);
    expect(hit[0]!.l3).toBe('ipv4');
    expect(sum(hit)).toBe(await nftCount());
    expect(sum(hit)).toBe(7);
    expect(rowsOf(rows, { ns: 'node-a', reason: 'NETFILTER_DROP' })).toEqual([]);
  });

  it('counts a datagram to a closed port as NO_SOCKET and a frame to a wrong MAC as OTHERHOST, on the receiving interface', async () => {
    const t = tracers[0]!;
    const before = await t.snapshot();
    await sendUdp(p1.a, `${p1.net}.2`, 7001, 3);
    // A PERMANENT neighbour with a MAC nobody has: what a stale flannel VtepMAC does to a peer.
    await shell(['ip', '-n', p1.a, 'neigh', 'replace', `${p1.net}.3`, 'lladdr', '02:00:00:00:be:ef', 'dev', 'vxd-a', 'nud', 'permanent']);
    await sendUdp(p1.a, `${p1.net}.3`, 53, 4);
    const noSocket = { ns: 'node-b', iface: 'vxd-b', reason: 'NO_SOCKET', func: '__udp4_lib_rcv', proto: 'udp', port: 7001 };
    const otherHost = { ns: 'node-b', iface: 'vxd-b', reason: 'OTHERHOST', func: 'ip_rcv_core', proto: 'udp', port: 53 };
    const rows = await settle(t, before, (r) => sum(rowsOf(r, noSocket)) >= 3 && sum(rowsOf(r, otherHost)) >= 4);
    expect(sum(rowsOf(rows, noSocket))).toBe(3);
    expect(sum(rowsOf(rows, otherHost))).toBe(4);
    // the drop rule of the previous test did not fire again
    expect(rowsOf(rows, { reason: 'NETFILTER_DROP' })).toEqual([]);
  });

  it('keys a dropped VXLAN packet on UDP 8472 and the encapsulated protocol and port', async () => {
    const t = tracers[0]!;
    // VXLAN from a only: b has no VXLAN socket on 8472, so every outer datagram dies there as NO_SOCKET.
    await shell(['ip', '-n', p1.a, 'link', 'add', 'vxd-vx', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'local', `${p1.net}.1`, 'remote', `${p1.net}.2`, 'dev', 'vxd-a', 'nolearning']);
    await shell(['ip', '-n', p1.a, 'addr', 'add', '10.98.0.1/24', 'dev', 'vxd-vx']);
    await shell(['ip', '-n', p1.a, 'link', 'set', 'vxd-vx', 'up']);
    await shell(['ip', '-n', p1.a, 'neigh', 'replace', '10.98.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'vxd-vx', 'nud', 'permanent']);
    const before = await t.snapshot();
    await sendUdp(p1.a, '10.98.0.2', 5353, 5);
    const where = { ns: 'node-b', iface: 'vxd-b', reason: 'NO_SOCKET', proto: 'udp', port: 8472, innerProto: 'udp', innerPort: 5353 };
    const rows = await settle(t, before, (r) => sum(rowsOf(r, where)) >= 5);
    expect(sum(rowsOf(rows, where))).toBe(5);
  });

  it('two tracers at once each see only their own namespaces; an unwatched or unwatched-again namespace adds nothing', async () => {
    const t1 = tracers[0]!;
    const t2 = await startTracer();
    await t2.watch(p2.inoB, 'other-b');
    const [b1, b2] = [await t1.snapshot(), await t2.snapshot()];
    await sendUdp(p1.a, `${p1.net}.2`, 7101, 5);
    await sendUdp(p2.a, `${p2.net}.2`, 7102, 6);
    const mine = { reason: 'NO_SOCKET', port: 7101 };
    const theirs = { reason: 'NO_SOCKET', port: 7102 };
    const r1 = await settle(t1, b1, (r) => sum(rowsOf(r, mine)) >= 5);
    const r2 = await settle(t2, b2, (r) => sum(rowsOf(r, theirs)) >= 6);
    expect(sum(rowsOf(r1, mine))).toBe(5);
    expect(sum(rowsOf(r2, theirs))).toBe(6);
    expect(rowsOf(r1, theirs)).toEqual([]);
    expect(rowsOf(r2, mine)).toEqual([]);
    expect(r1.every((r) => r.netnsInode === p1.inoA || r.netnsInode === p1.inoB)).toBe(true);
    expect(r2.every((r) => r.netnsInode === p2.inoB)).toBe(true);
    expect(r2.map((r) => r.ns)).toEqual(r2.map(() => 'other-b'));

    // After unwatch, t2 stops counting other-b while its past counts stay in the cumulative snapshot.
    await t2.unwatch(p2.inoB);
    const b3 = await t2.snapshot();
    expect(sum(t2.delta(new Map(), b3).filter((r) => r.port === 7102))).toBe(6);
    await sendUdp(p2.a, `${p2.net}.2`, 7103, 4);
    await sendUdp(p1.a, `${p1.net}.2`, 7104, 2);
    // t1 sees its own 2 (so the datagrams were delivered and dropped by now), t2 sees nothing new.
    const r1b = await settle(t1, b1, (r) => sum(rowsOf(r, { port: 7104 })) >= 2);
    expect(sum(rowsOf(r1b, { port: 7104 }))).toBe(2);
    expect(t2.delta(b3, await t2.snapshot())).toEqual([]);
  });

  it('on an older kernel\'s tracepoint signature still gives namespace, interface and function; reason n/a before 5.17', async () => {
    for (const args of [2, 3] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'vxc-drops-'));
      dirs.push(dir);
      const t = await DropTracer.start(localDropHost, { binary: DROPTRACER_BIN, dir, exitWith: process.pid, tracepointArgs: args });
      tracers.push(t);
      expect(t.kernelHasReasons).toBe(args === 3);
      await t.watch(p1.inoB, 'node-b');
      const before = await t.snapshot();
      await sendUdp(p1.a, `${p1.net}.2`, 7200 + args, 3);
      const where = { ns: 'node-b', iface: 'vxd-b', func: '__udp4_lib_rcv', port: 7200 + args, reason: args === 2 ? 'n/a' : 'NO_SOCKET' };
      const rows = await settle(t, before, (r) => sum(rowsOf(r, where)) >= 3);
      expect(sum(rowsOf(rows, where))).toBe(3);
      await t.stop();
    }
  });

  it('says why it is unavailable: a missing binary, and an unprivileged start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vxc-drops-'));
    dirs.push(dir);
    await expect(DropTracer.start(localDropHost, { binary: join(dir, 'no-such-vxdrops'), dir })).rejects.toBeInstanceOf(DropsUnavailableError);
    const r = await shell(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', DROPTRACER_BIN], { nothrow: true, timeoutMs: 10_000 });
    expect(r.exitCode).toBe(3);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ unavailable: expect.stringMatching(/BPF|permitted|denied/i) });
  });
});
