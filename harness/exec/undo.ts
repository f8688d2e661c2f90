/**
 * A cell's undo stack. Every change a fault or mitigation makes to the cluster registers its undo the moment
 * the change is made, so a cell that throws half-way still gets back exactly what it changed. Undos run in
 * reverse order; every one runs even when an earlier one fails, and the failures are returned together.
 */
export class UndoStack {
  private readonly entries: { what: string; fn: () => Promise<unknown> }[] = [];

  /** Register the undo of a change that was just made; `what` names it in error messages. */
  push(what: string, fn: () => Promise<unknown>): void {
    this.entries.push({ what, fn });
  }

  get size(): number {
    return this.entries.length;
  }

  /** Runs every undo, newest first, and empties the stack; returns "what: error" for each that failed. */
  async unwind(): Promise<string[]> {
    const problems: string[] = [];
    while (this.entries.length) {
      const { what, fn } = this.entries.pop()!;
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    }
    return problems;
  }
}
