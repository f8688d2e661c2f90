/** Progress lines: "✓ step (ms)" on a terminal and in CI alike; stderr, so stdout stays for data. */
export interface Progress {
  step(name: string): void;
  done(name: string, ms?: number): void;
  info(msg: string): void;
  warn(msg: string): void;
}

export function progress(opts: { quiet?: boolean; stream?: NodeJS.WritableStream } = {}): Progress {
  const out = opts.stream ?? process.stderr;
  const tty = (out as NodeJS.WriteStream).isTTY === true && !process.env.CI;
  // On a terminal a step's line stays open ("\r") until its end is printed; clear it first, whatever comes
  // (clusters side by side print their lines interleaved).
  const write = (s: string) => {
    if (!opts.quiet) out.write(`${tty ? '\r\x1b[2K' : ''}${s}\n`);
  };
  const c = (code: number, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
  return {
    step: (name) => (tty ? out.write(opts.quiet ? '' : `\r\x1b[2K • ${name} …\r`) : write(` • ${name} …`)),
    done: (name, ms) => write(` ${c(32, '✓')} ${name}${ms !== undefined ? c(2, ` (${ms} ms)`) : ''}`),
    info: (msg) => write(`   ${msg}`),
    warn: (msg) => write(` ${c(33, '!')} ${msg}`),
  };
}
