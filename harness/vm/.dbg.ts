import { AgentClient, GuestHost } from './guest-host.ts';
const c = await AgentClient.connect(process.argv[2]!);
const h = new GuestHost(c, 'dbg');
for (const cmd of process.argv.slice(3)) { const r = await h.run(['sh', '-c', cmd], { nothrow: true }); console.log(`$ ${cmd}\n${r.stdout}${r.stderr}[${r.exitCode}]`); }
c.close();
