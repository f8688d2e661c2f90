import { readFileSync } from 'node:fs';

/** The kernel's start time of a process (field 22 of /proc/PID/stat): PIDs are reused, start times are not. */
export function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
