/** The netns provider reaches its machine only through the Host seam (harness/exec/host.ts). */
export type { Host, HostProcess, HostSpawnOptions } from '../../exec/host.ts';
