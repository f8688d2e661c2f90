import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { compareMatrices, renderCompareMarkdown, type CompareOptions } from './compare.ts';
import { appendJobSummary } from './markdown.ts';
import { loadMatrix, regenerateReports } from './write.ts';

export const COMPARE_FILE = 'compare.md';

type Print = (text: string) => void;
const stdout: Print = (text) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** `vxchaos report <run-dir>`: re-render matrix.md, junit.xml and index.html from the run's matrix.json. */
export async function reportCommand(runDir: string, print: Print = stdout): Promise<string[]> {
  const paths = await regenerateReports(runDir);
  for (const p of paths) print(`wrote ${p}`);
  return paths;
}

/** An --out that names an existing directory (or ends in a slash) gets compare.md inside it. */
async function outFile(out: string): Promise<string> {
  if (out.endsWith('/')) return join(out, COMPARE_FILE);
  const st = await stat(out).catch(() => undefined);
  return st?.isDirectory() ? join(out, COMPARE_FILE) : out;
}

/**
 * `vxchaos compare <baseline> <current>` (each a run directory or a matrix.json): prints the comparison as
 * Markdown, writes it to --out, appends it to the CI job summary, and returns 1 when any cell regressed.
 */
export async function compareCommand(
  baselinePath: string,
  currentPath: string,
  opts: { out?: string } & Partial<CompareOptions> = {},
  print: Print = stdout,
): Promise<number> {
  const { out, ...options } = opts;
  const [baseline, current] = await Promise.all([loadMatrix(baselinePath), loadMatrix(currentPath)]);
  const result = compareMatrices(baseline, current, options);
  const markdown = renderCompareMarkdown(result);
  print(markdown);
  if (out) {
    const file = await outFile(out);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, markdown);
    print(`wrote ${file}`);
  }
  await appendJobSummary(markdown);
  return result.counts.regressed > 0 ? 1 : 0;
}
