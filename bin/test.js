#!/usr/bin/env node
// `npm test` after the typecheck: the unit project always; as root also `vxchaos setup` and the e2e project
// (real namespaces, iptables, conntrack). Extra arguments go to vitest, e.g. `npm test -- --project unit`.
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const root = process.getuid?.() === 0;
const chosen = args.flatMap((a, i) => (a === '--project' ? [args[i + 1]] : a.startsWith('--project=') ? [a.slice(10)] : []));
const e2e = chosen.length === 0 ? root : chosen.includes('e2e');
const dropsE2e = !root && chosen.length === 0;

let child;
// Ctrl-C reaches vitest from the terminal too: wait for it to clean up, then exit with its code.
process.on('SIGINT', () => undefined);
for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => void child?.kill(sig));

/** Runs argv with the terminal attached, bounded by a timeout; resolves to its exit code. */
async function run(argv, timeout) {
  child = $({ cwd: ROOT, stdio: 'inherit', nothrow: true, verbose: false, timeout })`${argv}`;
  const out = await child;
  child = undefined;
  return out.exitCode ?? 1;
}

// The e2e tests need the Debian tools and the probes; setup installs them (apt-get) and fails loudly as root.
if (e2e && root) {
  const status = await run(['node', 'bin/vxchaos.js', 'setup', '--quiet', '--with', 'report,vm'], '30m');
  if (status !== 0) process.exit(status);
}
const status = await run(['npx', 'vitest', 'run', ...(dropsE2e ? ['--project', 'unit'] : []), ...args], '90m');
if (dropsE2e) console.log('e2e tests (*.e2e.test.ts) need root and were not run: run `sudo npm test` to include them.');
process.exit(status);
