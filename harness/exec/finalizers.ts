/**
 * Finalizers run in reverse order of registration on normal exit, errors, Ctrl-C and SIGTERM — once.
 * The CLI installs the signal handlers; code that creates things registers how to remove them.
 */
type Finalizer = () => Promise<unknown>;

const stack: { name: string; fn: Finalizer }[] = [];

export function addFinalizer(name: string, fn: Finalizer): () => void {
  const entry = { name, fn };
  stack.push(entry);
  return () => {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
}

export async function runFinalizers(log: (s: string) => void = () => undefined): Promise<void> {
  while (stack.length) {
    const { name, fn } = stack.pop()!;
    try {
      await fn();
    } catch (e) {
      log(`cleanup ${name} failed: ${(e as Error).message}`);
    }
  }
}

let installed = false;

/** Ctrl-C / SIGTERM: clean up, then exit 130 / 143. A second signal while cleaning is ignored. */
export function installSignalHandlers(log: (s: string) => void): void {
  if (installed) return;
  installed = true;
  let cleaning = false;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (cleaning) return;
      cleaning = true;
      log(`\n${sig}: removing everything this run created…`);
      void runFinalizers(log).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
}
