import { describe, expect, it } from 'vitest';
import { UndoStack } from './undo.ts';

describe('UndoStack', () => {
  it('runs every undo newest first, even after one fails, and collects the failures', async () => {
    const undo = new UndoStack();
    const ran: string[] = [];
    undo.push('a', async () => ran.push('a'));
    undo.push('b', async () => {
      ran.push('b');
      throw new Error('boom');
    });
    undo.push('c', async () => ran.push('c'));
    expect(await undo.unwind()).toEqual(['b: boom']);
    expect(ran).toEqual(['c', 'b', 'a']);
    expect(undo.size).toBe(0);
    expect(await undo.unwind()).toEqual([]);
  });
});
