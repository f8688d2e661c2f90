import { isIP } from 'node:net';
import { z } from 'zod';
import { VxError } from '../errors.ts';
import { noParams, type Params } from '../faults/fault.ts';
import type { ClientPod } from '../providers/provider.ts';
import type { UndoStack } from '../exec/undo.ts';
import type { Mitigation, MitigationContext } from './mitigation.ts';

const RESOLV_CONF = '/etc/resolv.conf';

/**
 * resolv.conf with these options set: an option of the same name (ndots:5 → ndots:2) is replaced, the rest
 * kept, all on one `options` line at the end (glibc and musl read every options line; one is clearer).
 */
export function withOptions(conf: string, options: readonly string[]): string {
  const key = (o: string) => o.split(':')[0];
  const lines = conf.split('\n').filter((l) => l.trim() !== '');
  const existing = lines.filter((l) => /^options\s/.test(l)).flatMap((l) => l.trim().split(/\s+/).slice(1));
  const merged = [...existing.filter((o) => !options.some((n) => key(n) === key(o))), ...options];
  return `${[...lines.filter((l) => !/^options\s/.test(l)), `options ${merged.join(' ')}`].join('\n')}\n`;
}

/** resolv.conf with one more nameserver after the existing ones (a duplicate is not added twice). */
export function withNameserver(conf: string, ip: string): string {
  const lines = conf.split('\n').filter((l) => l.trim() !== '');
  if (lines.some((l) => l.trim() === `nameserver ${ip}`)) return `${lines.join('\n')}\n`;
  const last = lines.reduce((at, l, i) => (/^nameserver\s/.test(l) ? i : at), -1);
  lines.splice(last + 1, 0, `nameserver ${ip}`);
  return `${lines.join('\n')}\n`;
}

/** resolv.conf whose nameservers are replaced by these (search and options stay). */
export function withNameservers(conf: string, ips: readonly string[]): string {
  const lines = conf.split('\n').filter((l) => l.trim() !== '' && !/^nameserver\s/.test(l));
  return `${[...ips.map((ip) => `nameserver ${ip}`), ...lines].join('\n')}\n`;
}

/**
 * Rewrites the client's resolv.conf (as a pod's dnsConfig would); the original goes back on undo.
 * Both libcs read resolv.conf on every lookup of a fresh resolver state; long-lived glibc threads pick the
 * change up when res_init runs (the probe's -f) or at their next start.
 */
export async function editResolvConf(client: ClientPod, undo: UndoStack, edit: (conf: string) => string | Promise<string>): Promise<{ before: string; after: string }> {
  const before = await client.readFile(RESOLV_CONF);
  const after = await edit(before);
  await client.writeFile(RESOLV_CONF, after);
  undo.push(`${client.name}: resolv.conf as found`, () => client.writeFile(RESOLV_CONF, before));
  return { before, after };
}

function optionMitigation<P = Record<string, never>>(name: string, description: string, options: (ctx: MitigationContext<P>) => string[], params = noParams as unknown as z.ZodType<P, Params>): Mitigation<P> {
  return {
    name,
    description,
    params,
    async apply(ctx) {
      const opts = options(ctx);
      await editResolvConf(ctx.client, ctx.undo, (c) => withOptions(c, opts));
      ctx.log(`${ctx.client.name}: resolv.conf options ${opts.join(' ')}${ctx.client.libc === 'musl' ? ' (musl reads only ndots, timeout and attempts)' : ''}`);
      return { counters: {} };
    },
  };
}

/** glibc ≥ 2.10: A, then AAAA after the A answer — never two queries in flight on one socket. */
export const singleRequest = optionMitigation('single-request', 'resolv.conf options single-request: A and AAAA one after the other (glibc; musl ignores it)', () => ['single-request']);

/** glibc ≥ 2.9: sequential as single-request, and the second query from a new socket (a new source port). */
export const singleRequestReopen = optionMitigation(
  'single-request-reopen',
  'resolv.conf options single-request-reopen: the second query from a new socket (glibc; musl ignores it)',
  () => ['single-request-reopen'],
);

/** glibc ≥ 2.14: queries over TCP. musl before 1.2.4 has no TCP at all, later only for truncated answers. */
export const useVc = optionMitigation('use-vc', 'resolv.conf options use-vc: DNS over TCP (glibc; musl ignores it)', () => ['use-vc']);

/** Fewer search-list rounds: names with at least `ndots` dots are tried as they are first. */
export const ndots = optionMitigation(
  'ndots',
  'resolv.conf options ndots:2 (mitigationParams.ndots): names with dots skip the search list',
  (ctx) => [`ndots:${ctx.params.ndots}`],
  z.strictObject({ ndots: z.number().int().min(0).max(15).default(2) }),
);

/**
 * Seed 000, option a: a second nameserver. musl asks every nameserver in parallel and takes the first
 * answer, so one dropped query no longer costs a retry; glibc asks them in order and still waits out the
 * first. The default second nameserver is the cluster DNS's own upstream (the seed used a public
 * resolver): it does not know cluster names, and musl takes its NXDOMAIN when it answers first.
 */
const ExtraNameserverParams = z.strictObject({
  /** The second nameserver (default: the cluster DNS's own upstream). */
  nameserver: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
});

export const extraNameserver: Mitigation<z.output<typeof ExtraNameserverParams>> = {
  name: 'extra-nameserver',
  description: 'a second nameserver in resolv.conf (mitigationParams.nameserver, default the cluster DNS upstream): musl asks both in parallel',
  params: ExtraNameserverParams,
  requires: (p) => (p.nameserver ? [] : [{ capability: 'servesUpstreamNames', because: 'needs an upstream nameserver inside the run that serves the topology\'s upstream names' }]),
  async apply(ctx) {
    const p = ctx.params.nameserver;
    // Only an address can go into resolv.conf: kind's CoreDNS forwards to /etc/resolv.conf by default.
    const upstreams = typeof p === 'string' ? [] : (await ctx.cluster.clusterDns.upstreams()).servers;
    const ip = typeof p === 'string' ? p : upstreams.find((s) => isIP(s));
    if (!ip) {
      throw new VxError('E_MITIGATION_PARAM', `extra-nameserver: no mitigationParams.nameserver and no cluster DNS upstream is an address (${upstreams.join(', ') || 'none'}); set mitigationParams.nameserver`);
    }
    const edited = await editResolvConf(ctx.client, ctx.undo, (c) => withNameserver(c, ip));
    ctx.log(`${ctx.client.name}: resolv.conf nameservers now ${edited.after.match(/^nameserver .*/gm)?.map((l) => l.split(' ')[1]).join(', ')}`);
    return { counters: {} };
  },
};
