// A harness that boots a guest, creates something inside it, says so and waits to be killed (vm.e2e.test.ts).
import { bootGuest } from '../vm.ts';

const g = await bootGuest({ kernel: process.argv[2] ?? 'debian:bookworm', accel: 'tcg' });
await g.host.run(['ip', 'netns', 'add', 'vxc-crash-a']);
console.log(JSON.stringify({ id: g.id, pid: g.pid, stateDir: g.stateDir }));
setInterval(() => undefined, 1000);
