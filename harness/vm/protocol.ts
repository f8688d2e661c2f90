import { StringDecoder } from 'node:string_decoder';

/**
 * The guest agent's wire format (images/guest/agent.mjs): one JSON object per line each way. A request
 * carries an id; its answer carries the same id, `ok`, and `result` or `error`. Requests run concurrently
 * in the guest, so answers may come in any order. JSON escapes newlines inside strings: a line is a message.
 */
export interface AgentRunOpts {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  nothrow?: boolean;
}

export interface AgentRunResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal?: string;
  timedOut?: boolean;
}

export type AgentRequest =
  | { op: 'hello' }
  | { op: 'run'; argv: string[]; opts: AgentRunOpts }
  | { op: 'runMany'; commands: { argv: string[]; opts: AgentRunOpts }[] }
  | { op: 'writeFile'; path: string; content: string; mode?: number }
  | { op: 'appendFile'; path: string; content: string }
  | { op: 'readFile'; path: string }
  | { op: 'mkdir'; path: string }
  | { op: 'remove'; path: string }
  | { op: 'exists'; path: string }
  | { op: 'spawn'; argv: string[]; log: string }
  | { op: 'procStart'; pid: number }
  | { op: 'kill'; pid: number; signal: string }
  | { op: 'poweroff' };

export interface AgentResults {
  hello: { release: string; version: string; clocksource: string; nproc: number; pid: number };
  run: AgentRunResult;
  runMany: { results: AgentRunResult[] };
  writeFile: Record<string, never>;
  appendFile: Record<string, never>;
  readFile: { content: string };
  mkdir: Record<string, never>;
  remove: Record<string, never>;
  exists: { exists: boolean };
  spawn: { pid: number; start: string; exitedAtOnce?: number | null };
  procStart: { start: string | null };
  kill: { ok: boolean };
  poweroff: Record<string, never>;
}

export type AgentResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { message: string; code?: string } };

export function encodeRequest(id: number, req: AgentRequest): string {
  return `${JSON.stringify({ id, ...req })}\n`;
}

/** Parses one answer line; undefined for a line that is not an answer (console noise, a cut line). */
export function decodeResponse(line: string): AgentResponse | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.id !== 'number' || typeof o.ok !== 'boolean') return undefined;
  if (o.ok) return { id: o.id, ok: true, result: o.result ?? {} };
  const e = (o.error ?? {}) as { message?: unknown; code?: unknown };
  return { id: o.id, ok: false, error: { message: String(e.message ?? 'agent error'), code: typeof e.code === 'string' ? e.code : undefined } };
}

/** Bytes in, whole lines out: chunks may split a line or a multi-byte character anywhere. */
export class LineDecoder {
  private readonly utf8 = new StringDecoder('utf8');
  private rest = '';

  push(chunk: Buffer): string[] {
    const lines = (this.rest + this.utf8.write(chunk)).split('\n');
    this.rest = lines.pop() ?? '';
    return lines.filter((l) => l.trim() !== '');
  }

  /** A connection that closed mid-line leaves a cut line: drop it. */
  reset(): void {
    this.rest = '';
    this.utf8.end();
  }
}
