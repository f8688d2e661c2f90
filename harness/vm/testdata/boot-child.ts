// A harness that boots a guest, creates something inside it, says so and waits to be killed (vm.e2e.test.ts).
// With --signals it handles Ctrl-C / SIGTERM as the CLI does (finalizers), else it dies like a crash.
import { installSignalHandlers } from '../../exec/finalizers.ts';
import { bootGuest } from '../vm.ts';

if (process.argv.includes('--signals')) installSignalHandlers((l) => process.stderr.write(`${l}\n`));
const g = await bootGuest({ kernel: process.argv[2] ?? 'debian:bookworm', accel: 'tcg' });
await g.host.run(['ip', 'netns', 'add', 'vxc-crash-a']);
console.log(JSON.stringify({ id: g.id, pid: g.pid, stateDir: g.stateDir }));
setInterval(() => undefined, 1000);
