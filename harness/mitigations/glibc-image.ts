import { VxError } from '../errors.ts';
import { editResolvConf } from './resolv-options.ts';
import { noParams } from '../faults/fault.ts';
import type { Mitigation } from './mitigation.ts';

/**
 * Seed 003's final step: rebuild the image on a glibc base (Debian instead of Alpine). The same workload runs
 * from the glibc client pod, with the same resolv.conf; glibc then can use the single-request options.
 */
export const glibcImage: Mitigation = {
  name: 'glibc-image',
  description: 'the musl (Alpine) client replaced by the glibc (Debian) one, same pod DNS config',
  params: noParams,
  async apply(ctx) {
    if (ctx.client.libc === 'glibc') {
      ctx.log('glibc-image: the client is glibc already');
      return { counters: {} };
    }
    const glibc = ctx.cluster.clients.glibc;
    if (!glibc) throw new VxError('E_CLIENT', 'glibc-image needs the glibc client pod: run with the glibc client too');
    const conf = await ctx.client.readFile('/etc/resolv.conf');
    await editResolvConf(glibc, ctx.undo, () => conf);
    return { counters: {}, client: glibc };
  },
};
