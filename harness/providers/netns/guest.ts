import type { Topology } from '../../config/topology.ts';
import { bootGuest, downGuests, resolveKernel, type Guest } from '../../vm/index.ts';
import type { Capabilities, Cluster, KernelUnderTest, Provider, RunRef, UpOptions } from '../provider.ts';
import { NetnsProvider } from './provider.ts';

/**
 * The netns provider inside a qemu microVM that runs another kernel (`--kernel debian:bookworm`, a path):
 * the same provider code, pointed at the guest agent through the Host seam. The VM boots in preflight (with
 * progress), the cluster is built in the guest, and the VM powers off after the cluster's teardown.
 */
export class GuestNetnsProvider implements Provider {
  readonly name = 'netns';
  private guest?: Guest;
  private inner?: NetnsProvider;

  constructor(
    private readonly kernelSpec: string,
    private readonly log: (line: string) => void = (l) => process.stderr.write(`   ${l}\n`),
  ) {}

  get capabilities(): Capabilities {
    if (!this.inner) throw new Error('GuestNetnsProvider: capabilities are known once the guest has booted (preflight)');
    // One guest, one cluster: its few vCPUs would be shared by two, under emulation slower still.
    return { ...this.inner.capabilities, timing: this.guest?.accel === 'tcg' ? 'emulated' : 'native', ...(this.guest ? { clustersAtOnce: 1 } : {}) };
  }

  get kernel(): KernelUnderTest | undefined {
    const k = this.guest?.kernel;
    return k && { release: k.release, version: k.version, source: k.source, notes: { accel: this.guest!.accel, clocksource: k.clocksource, bootMs: String(this.guest!.bootMs) } };
  }

  async preflight(): Promise<void> {
    if (this.guest) return;
    const kernel = await resolveKernel(this.kernelSpec, this.log);
    if (!kernel) {
      this.inner = new NetnsProvider();
    } else {
      this.log(`booting ${this.kernelSpec} (${kernel.release}) in a qemu microVM`);
      this.guest = await bootGuest({ kernel, log: this.log });
      this.log(`guest ${this.guest.kernel.release} ready in ${this.guest.bootMs} ms (${this.guest.accel}, clocksource ${this.guest.kernel.clocksource})`);
      this.inner = new NetnsProvider({ host: this.guest.host });
    }
    await this.inner.preflight();
  }

  async up(topology: Topology, opts: UpOptions): Promise<Cluster> {
    await this.preflight();
    const cluster = await this.inner!.up(topology, opts);
    const kernel = this.kernel;
    return kernel ? Object.assign(Object.create(cluster) as Cluster, { kernel }) : cluster;
  }

  async list(): Promise<RunRef[]> {
    return this.inner ? this.inner.list() : [];
  }

  /** The run's namespaces go with the guest: remove them, then power the guest off. */
  async down(runId?: string): Promise<{ removed: string[]; problems: string[] }> {
    const r = this.inner ? await this.inner.down(runId).catch((e: Error) => ({ removed: [], problems: [e.message] })) : { removed: [], problems: [] };
    if (this.guest) {
      await this.guest.stop().catch((e: Error) => r.problems.push(`guest: ${e.message}`));
      r.removed.push(`vm ${this.guest.id}`);
      this.guest = undefined;
    }
    return r;
  }
}

export { downGuests };
