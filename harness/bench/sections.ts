/**
 * Some sections of the bench on their own (`vxchaos bench` runs them all):
 *   npx tsx harness/bench/sections.ts kernels [--quick] [--kernel debian:bookworm …] [--out reports/bench]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { installSignalHandlers, runFinalizers } from '../exec/finalizers.ts';
import { BENCH_SECTIONS, runBench, type BenchSection } from './bench.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: 'boolean', default: false }, kernel: { type: 'string', multiple: true }, out: { type: 'string', default: resolve(import.meta.dirname, '..', '..', 'reports', 'bench') } },
});
const bad = positionals.filter((p) => !(BENCH_SECTIONS as readonly string[]).includes(p));
if (positionals.length === 0 || bad.length) {
  process.stderr.write(`usage: sections.ts <${BENCH_SECTIONS.join('|')}>… [--quick] [--kernel spec]… [--out dir]${bad.length ? ` (unknown: ${bad.join(' ')})` : ''}\n`);
  process.exit(2);
}
const log = (s: string) => process.stderr.write(`${s}\n`);
installSignalHandlers(log);
try {
  const { dir, markdown, result } = await runBench({ out: values.out!, quick: values.quick, sections: positionals as BenchSection[], kernels: values.kernel, log });
  console.log(`\n${markdown}\nbench: ${dir}/bench.json`);
  if (result.errors.length || result.kernels?.runs.some((k) => k.error)) process.exitCode = 1;
} finally {
  await runFinalizers(log);
}
