import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import { ConfigError, VxError } from '../errors.ts';

/**
 * Strict load: YAML syntax errors and schema problems (unknown fields included) are collected and reported
 * all at once, each with file:line:col, the way kind decodes its config.
 */
export function loadYaml<S extends z.ZodType>(file: string, schema: S, text?: string): z.output<S> {
  return loadYamlLocated(file, schema, text).data;
}

/** Where a value sits in its file: `line:col: ` for a path into the document ('' when unknown). */
export type Locator = (path: readonly (string | number)[]) => string;

/** As loadYaml, and a locator so that checks after the schema can still say file:line. */
export function loadYamlLocated<S extends z.ZodType>(file: string, schema: S, text?: string): { data: z.output<S>; at: Locator } {
  let source: string;
  try {
    source = text ?? readFileSync(file, 'utf8');
  } catch (e) {
    throw new VxError('E_CONFIG_READ', `cannot read ${file}: ${(e as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return '';
    const p = lines.linePos(offset);
    return `${p.line}:${p.col}: `;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `${at(e.pos[0])}${e.message.split('\n')[0]}`));
  }
  const data = doc.toJS();
  const parsed = schema.safeParse(data ?? {});
  const locate: Locator = (path) => {
    const node = doc.getIn([...path], true);
    return at((isNode(node) ? node.range?.[0] : undefined) ?? findParentOffset(doc, path.map(String)));
  };
  if (parsed.success) return { data: parsed.data, at: locate };
  const problems = parsed.error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    return keys.map((key) => {
      const full = key === undefined ? path : [...path, key];
      const node = doc.getIn(full, true);
      const offset = isNode(node) ? node.range?.[0] : undefined;
      // For an unknown key, point at the key itself.
      const keyOffset = key !== undefined ? findKeyOffset(doc, path, key) : undefined;
      const where = at(keyOffset ?? offset ?? findParentOffset(doc, path));
      const name = full.reduce<string>((acc, k) => (/^\d+$/.test(k) ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), '') || '(root)';
      const msg = key !== undefined ? `unknown field "${key}"` : issue.message;
      return `${where}${name}: ${msg}`;
    });
  });
  throw new ConfigError(file, problems);
}

function findKeyOffset(doc: ReturnType<typeof parseDocument>, path: string[], key: string): number | undefined {
  const parent = path.length ? doc.getIn(path, true) : doc.contents;
  const items = (parent as { items?: { key?: { value?: unknown; range?: [number] } }[] } | null)?.items;
  const pair = items?.find((p) => p.key?.value === key);
  return pair?.key?.range?.[0];
}

function findParentOffset(doc: ReturnType<typeof parseDocument>, path: string[]): number | undefined {
  for (let i = path.length - 1; i >= 0; i--) {
    const node = doc.getIn(path.slice(0, i), true);
    if (isNode(node)) return node.range?.[0];
  }
  return undefined;
}
