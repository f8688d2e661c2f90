import { afterAll, describe, expect, it } from 'vitest';
import { expectRunGone, runQuick } from './helpers.ts';
import { prepareSuite } from '../cells.ts';
import { isRoot } from '../doctor.ts';
import { downAll } from '../providers/netns/ledger.ts';
import { newRunId } from '../runner.ts';

describe.skipIf(!isRoot())('checksum-offload end to end on real namespaces (needs root)', () => {
  const runId = newRunId();
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('loses the first SYN of every node → Service connection (seed 001); each mitigation and the pod control are clean', async () => {
    const { matrix } = await runQuick(prepareSuite('checksum-offload'), runId, 3);
    const cell = (mitigation: string, name?: string) => matrix.cells.find((c) => c.fault === 'checksum-offload' && c.mitigation === mitigation && c.name === name)!;
    const broken = cell('none');
    expect(broken.verdict, broken.reason).toBe('pass');
    expect(broken.affectedRate).toBe(1);
    // The retransmitted SYN goes out after the initial RTO of 1 s: this kernel's figure in seed 001.
    expect(broken.p50Ms).toBeGreaterThan(900);
    expect(broken.p50Ms).toBeLessThan(1500);
    // One corrupt outer packet, one retransmission and one SNATed outer VXLAN flow per connection; a connect
    // still waiting when the settled cell was stopped lost its SYN but never got to retransmit it.
    const cut = broken.stopped?.inFlight ?? 0;
    expect(broken.counters['udp.InCsumErrors']).toBe(broken.samples);
    expect(broken.counters['tcp.RetransSegs']).toBeGreaterThanOrEqual(broken.samples - cut);
    expect(broken.counters['conntrack.vxlanSrcNat']).toBeGreaterThanOrEqual(broken.samples);
    for (const [m, name] of [['none', 'pod control'], ['ethtool-tx-off'], ['kube-proxy-fix'], ['no-random-fully']] as const) {
      const c = cell(m, name);
      expect(c.verdict, `${m} ${name ?? ''}: ${c.reason}`).toBe('pass');
      expect(c.counters['udp.InCsumErrors'] ?? 0).toBe(0);
    }
    const dns = cell('none', 'dns over tcp');
    expect(dns.verdict, dns.reason).toBe('pass');
    expect(dns.errors).toBe(0);
    expect(dns.p99Ms).toBeGreaterThan(900);
    expect(matrix.failed).toBe(0);
    await expectRunGone(runId);
  });
});
