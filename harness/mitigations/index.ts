import { VxError } from '../errors.ts';
import { ethtoolTxOff, kubeProxyFix, noRandomFully } from './checksum.ts';
import { noMitigation, type Mitigation } from './mitigation.ts';
import { neighResync } from './neigh-resync.ts';

export const MITIGATIONS: Record<string, Mitigation> = {
  [noMitigation.name]: noMitigation,
  [neighResync.name]: neighResync,
  [ethtoolTxOff.name]: ethtoolTxOff,
  [kubeProxyFix.name]: kubeProxyFix,
  [noRandomFully.name]: noRandomFully,
};

export function getMitigation(name: string): Mitigation {
  const m = MITIGATIONS[name];
  if (!m) throw new VxError('E_UNKNOWN_MITIGATION', `unknown mitigation "${name}"; known: ${Object.keys(MITIGATIONS).join(', ')}`);
  return m;
}
