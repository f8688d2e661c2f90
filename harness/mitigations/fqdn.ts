import { VxError } from '../errors.ts';
import { noParams } from '../faults/fault.ts';
import type { Mitigation } from './mitigation.ts';

/** The first `search` domain of a resolv.conf (a pod's own namespace: default.svc.cluster.local). */
export function firstSearchDomain(conf: string): string | undefined {
  return /^search\s+(\S+)/m.exec(conf)?.[1];
}

/**
 * The names an application would configure to skip the search list: absolute, with a trailing dot. A bare
 * service name becomes the service's FQDN in the pod's own namespace (the first search domain).
 */
export function fullyQualified(names: readonly string[], searchDomain: string): string[] {
  return names.map((n) => (n.endsWith('.') ? n : n.includes('.') ? `${n}.` : `${n}.${searchDomain}.`));
}

/** Fully qualified names with a trailing dot: one DNS round per lookup instead of a walk of the search list. */
export const fqdn: Mitigation = {
  name: 'fqdn',
  description: 'the application names hosts by FQDN with a trailing dot: no search-list rounds',
  params: noParams,
  async apply(ctx) {
    if (ctx.workload.kind !== 'resolve') throw new VxError('E_MITIGATION', 'fqdn: only for resolve workloads');
    const domain = firstSearchDomain(await ctx.client.readFile('/etc/resolv.conf'));
    if (!domain) throw new VxError('E_MITIGATION', `fqdn: ${ctx.client.name}'s resolv.conf has no search domain`);
    const targets = fullyQualified(ctx.workload.targets, domain);
    ctx.log(`fqdn: ${targets.join(', ')}`);
    return { counters: {}, workload: { targets } };
  },
};
