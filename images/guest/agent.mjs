// vxchaos guest agent: JSON lines over the virtio-serial port "vxc.agent", one request per line, answers
// carry the request's id (requests run concurrently). Runs with the host's node binary over 9p; no imports
// outside node: so it needs nothing but the host root. Protocol: harness/vm/protocol.ts.
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';

const PORT_NAME = 'vxc.agent';
// Longer than the host's 30 ms: under TCG a bad argv takes longer to fail.
const SPAWN_SETTLE_MS = 200;
const log = (m) => process.stderr.write(`vxc-agent: ${m}\n`);

function findPort() {
  const base = '/sys/class/virtio-ports';
  for (const p of fs.existsSync(base) ? fs.readdirSync(base) : []) {
    try {
      if (fs.readFileSync(`${base}/${p}/name`, 'utf8').trim() === PORT_NAME) return `/dev/${p}`;
    } catch {}
  }
  return undefined;
}

function procStart(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function run(argv, opts = {}) {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    let child;
    try {
      child = spawn(cmd, args, { env: { ...process.env, ...(opts.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      return resolve({ stdout: '', stderr: `${cmd}: ${e.message}\n`, exitCode: 127 });
    }
    const out = [];
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdin.on('error', () => undefined); // a command that does not read its stdin
    child.stdin.end(opts.input ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      // As a shell would say it: the harness's own shell seam runs through bash.
      resolve({ stdout: '', stderr: `${cmd}: ${e.code === 'ENOENT' ? 'command not found' : e.message}\n`, exitCode: e.code === 'ENOENT' ? 127 : 126 });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode: code, signal: signal ?? undefined, timedOut });
    });
  });
}

async function spawnDaemon(argv, logFile) {
  const [cmd, ...args] = argv;
  const fh = await fsp.open(logFile, 'a');
  let child;
  try {
    // Detached: its own process group, as on the host.
    child = spawn(cmd, args, { detached: true, stdio: ['ignore', fh.fd, fh.fd] });
    await new Promise((res, rej) => {
      child.once('spawn', res);
      child.once('error', rej);
    });
  } finally {
    await fh.close();
  }
  let exited;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const pid = child.pid;
  const start = procStart(pid) ?? '';
  await new Promise((r) => setTimeout(r, SPAWN_SETTLE_MS));
  return exited === undefined ? { pid, start } : { pid, start, exitedAtOnce: exited };
}

const ops = {
  async hello() {
    // The host's first request: answered once the guest's sysinit (conntrack sizing, br_netfilter) is done.
    for (let t = 0; !fs.existsSync('/run/vxc/sysinit.done'); t += 50) {
      if (t > 120_000) throw new Error('guest sysinit did not finish within 120 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    let clocksource = '';
    try {
      clocksource = fs.readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim();
    } catch {}
    return { release: os.release(), version: os.version(), clocksource, nproc: os.cpus().length, pid: process.pid };
  },
  run: (r) => run(r.argv, r.opts),
  async runMany(r) {
    const results = [];
    for (const c of r.commands) {
      const res = await run(c.argv, c.opts);
      results.push(res);
      if (res.exitCode !== 0 && !c.opts?.nothrow) break;
    }
    return { results };
  },
  async writeFile(r) {
    await fsp.writeFile(r.path, r.content, r.mode !== undefined ? { mode: r.mode } : undefined);
    return {};
  },
  async appendFile(r) {
    const fh = await fsp.open(r.path, 'a');
    try {
      await fh.appendFile(r.content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return {};
  },
  readFile: async (r) => ({ content: await fsp.readFile(r.path, 'utf8') }),
  async mkdir(r) {
    await fsp.mkdir(r.path, { recursive: true });
    return {};
  },
  async remove(r) {
    await fsp.rm(r.path, { recursive: true, force: true });
    return {};
  },
  exists: async (r) => ({ exists: await fsp.access(r.path).then(() => true, () => false) }),
  spawn: (r) => spawnDaemon(r.argv, r.log),
  procStart: async (r) => ({ start: procStart(r.pid) ?? null }),
  async kill(r) {
    try {
      process.kill(r.pid, r.signal);
      return { ok: true };
    } catch {
      return { ok: false };
    }
  },
  async poweroff() {
    // Immediate power-off once the answer is out: the guest holds nothing that must survive.
    setTimeout(() => fs.writeFileSync('/proc/sysrq-trigger', 'o'), 50);
    return {};
  },
};

const portPath = findPort();
if (!portPath) {
  log(`no virtio-serial port named ${PORT_NAME}`);
  process.exit(1);
}
const fd = fs.openSync(portPath, 'r+');
let writing = Promise.resolve();
function send(obj) {
  const buf = Buffer.from(`${JSON.stringify(obj)}\n`);
  writing = writing.then(async () => {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await new Promise((res, rej) =>
        fs.write(fd, buf, off, buf.length - off, null, (e, n) => (e ? rej(e) : res({ bytesWritten: n }))),
      );
      off += bytesWritten;
    }
  }).catch((e) => log(`write: ${e.message}`));
}

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return log(`bad request line: ${line.slice(0, 200)}`);
  }
  const op = ops[req.op];
  if (!op) return send({ id: req.id, ok: false, error: { message: `unknown op ${req.op}`, code: 'E_AGENT_OP' } });
  try {
    send({ id: req.id, ok: true, result: await op(req) });
  } catch (e) {
    send({ id: req.id, ok: false, error: { message: e.message, code: e.code } });
  }
}

const decoder = new StringDecoder('utf8');
let pending = '';
const buf = Buffer.alloc(1 << 16);
function readLoop() {
  fs.read(fd, buf, 0, buf.length, null, (e, n) => {
    if (e) {
      log(`read: ${e.message}`);
      return setTimeout(readLoop, 200);
    }
    // 0 bytes: the host side is not connected (yet, or any more); poll until it is.
    if (n === 0) return setTimeout(readLoop, 50);
    pending += decoder.write(buf.subarray(0, n));
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      if (line.trim()) void handle(line);
    }
    readLoop();
  });
}
log(`listening on ${portPath} at ${os.uptime()} s`);
readLoop();
