import { noFault, type Fault } from './fault.ts';
import { checksumOffload } from './checksum-offload.ts';
import { conntrackRace } from './conntrack-race.ts';
import { deadUpstream } from './dead-upstream.ts';
import { macChurn } from './mac-churn.ts';

export const FAULTS: Record<string, Fault> = {
  [noFault.name]: noFault,
  [macChurn.name]: macChurn,
  [checksumOffload.name]: checksumOffload,
  [conntrackRace.name]: conntrackRace,
  [deadUpstream.name]: deadUpstream,
};
