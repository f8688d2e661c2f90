import type { SuiteAgreement, SuiteRun } from './model.ts';

/** Per suite, whether its --quick runs gave each cell one verdict. Runs of one suite list the same cells. */
export function verdictAgreement(runs: readonly SuiteRun[]): SuiteAgreement[] {
  const bySuite = new Map<string, SuiteRun[]>();
  for (const r of runs) if (r.quick && r.cellVerdicts) bySuite.set(r.suite, [...(bySuite.get(r.suite) ?? []), r]);
  return [...bySuite].map(([suite, rs]) => {
    const cells = [...new Set(rs.flatMap((r) => Object.keys(r.cellVerdicts!)))];
    const changed = cells
      .map((cell) => ({ cell, verdicts: rs.map((r) => r.cellVerdicts![cell] ?? 'absent') }))
      .filter((c) => new Set(c.verdicts).size > 1);
    return { suite, runs: rs.length, cells: cells.length, unanimous: cells.length - changed.length, changed };
  });
}
