import { InterruptedError } from '../errors.ts';

/**
 * Finalizers run in reverse order of registration on errors, Ctrl-C and SIGTERM. On a signal the run is
 * aborted first — the shell seam starts no new command and the ledger records nothing new — so creation
 * cannot race the cleanup; what was in flight is given time to settle and the cleanup runs once more.
 */
type Finalizer = () => Promise<unknown>;

const stack: { name: string; fn: Finalizer }[] = [];
const inflight = new Set<Promise<unknown>>();
let aborted: string | undefined;

export function addFinalizer(name: string, fn: Finalizer): () => void {
  const entry = { name, fn };
  stack.push(entry);
  return () => {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
}

/** Throws once the run is aborted: called before anything is created. */
export function checkAborted(): void {
  if (aborted) throw new InterruptedError(aborted);
}

/** The shell seam registers each running command so an abort can wait for it. */
export function track<T>(p: Promise<T>): Promise<T> {
  inflight.add(p);
  void p.finally(() => inflight.delete(p)).catch(() => undefined);
  return p;
}

async function settle(ms: number): Promise<void> {
  await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, ms))]);
}

export async function runFinalizers(log: (s: string) => void = () => undefined): Promise<void> {
  for (const { name, fn } of [...stack].reverse()) {
    try {
      await fn();
    } catch (e) {
      log(`cleanup ${name} failed: ${(e as Error).message}`);
    }
  }
}

let installed = false;

/** Ctrl-C / SIGTERM: abort, clean up, let in-flight commands settle, clean up again, exit 130 / 143. */
export function installSignalHandlers(log: (s: string) => void): void {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (aborted) return;
      aborted = sig;
      log(`\n${sig}: removing everything this run created…`);
      void (async () => {
        await runFinalizers(log); // kills the run's processes (a probe mid-measurement among them)
        await settle(5000);
        await runFinalizers(log);
        log('cleanup done');
      })().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
}
