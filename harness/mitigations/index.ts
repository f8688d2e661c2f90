import { ethtoolTxOff, kubeProxyFix, noRandomFully } from './checksum.ts';
import { fqdn } from './fqdn.ts';
import { glibcImage } from './glibc-image.ts';
import { noMitigation, type Mitigation } from './mitigation.ts';
import { neighResync } from './neigh-resync.ts';
import { nodeLocalDns } from './nodelocaldns.ts';
import { extraNameserver, ndots, singleRequest, singleRequestReopen, useVc } from './resolv-options.ts';
import { dropDeadUpstream, forwarderPolicy } from './upstreams.ts';

export const MITIGATIONS: Record<string, Mitigation> = {
  [noMitigation.name]: noMitigation,
  [neighResync.name]: neighResync,
  [ethtoolTxOff.name]: ethtoolTxOff,
  [kubeProxyFix.name]: kubeProxyFix,
  [noRandomFully.name]: noRandomFully,
  [singleRequest.name]: singleRequest,
  [singleRequestReopen.name]: singleRequestReopen,
  [useVc.name]: useVc,
  [ndots.name]: ndots,
  [fqdn.name]: fqdn,
  [nodeLocalDns.name]: nodeLocalDns,
  [extraNameserver.name]: extraNameserver,
  [glibcImage.name]: glibcImage,
  [dropDeadUpstream.name]: dropDeadUpstream,
  [forwarderPolicy.name]: forwarderPolicy,
};
