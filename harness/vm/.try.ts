import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);
import { bootGuest } from './vm.ts';
const t = Date.now();
const g = await bootGuest({ kernel: process.argv[2] ?? 'debian:bookworm', accel: (process.argv[3] as any) ?? 'tcg', log: console.log, record: (r) => console.log('record', JSON.stringify(r)) });
try {
console.log('kernel', JSON.stringify(g.kernel), g.bootMs);
let t1 = Date.now(); console.log((await g.host.run(['uname', '-r'])).stdout.trim(), Date.now() - t1, 'ms');
t1 = Date.now(); await g.host.run(['ip', 'netns', 'add', 'vxc-try-a']); console.log((await g.host.run(['ip', 'netns', 'exec', 'vxc-try-a', 'ip', 'link'])).stdout, Date.now() - t1, 'ms');
t1 = Date.now(); console.log((await g.host.run(['sh', '-c', 'cat /proc/sys/net/netfilter/nf_conntrack_max; lsmod | grep -c .; cat /proc/sys/net/bridge/bridge-nf-call-iptables; ls /sys/kernel/tracing | head -3'])).stdout, Date.now() - t1, 'ms');
console.log(require('node:fs').readFileSync(g.stateDir + '/console.log', 'utf8'));
} finally { await g.stop(); }
console.log('total', Date.now() - t);
