import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentClient, AgentGoneError, GuestHost } from './guest-host.ts';
import { decodeResponse, encodeRequest, LineDecoder } from './protocol.ts';

describe('agent protocol framing', () => {
  it('one request per line, newlines inside strings escaped', () => {
    const line = encodeRequest(7, { op: 'writeFile', path: '/etc/x', content: 'a\nb\n' });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ id: 7, op: 'writeFile', path: '/etc/x', content: 'a\nb\n' });
  });

  it('reassembles lines split anywhere, also inside a multi-byte character', () => {
    const d = new LineDecoder();
    const bytes = Buffer.from('{"id":1,"ok":true,"result":{"content":"ü→"}}\n{"id":2,');
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) out.push(...d.push(bytes.subarray(i, i + 3)));
    out.push(...d.push(Buffer.from('"ok":false,"error":{"message":"ENOENT: x","code":"ENOENT"}}\n')));
    expect(out.map(decodeResponse)).toEqual([
      { id: 1, ok: true, result: { content: 'ü→' } },
      { id: 2, ok: false, error: { message: 'ENOENT: x', code: 'ENOENT' } },
    ]);
  });

  it('ignores lines that are not answers', () => {
    expect(decodeResponse('vxc-agent: listening')).toBeUndefined();
    expect(decodeResponse('{"id":"x","ok":true}')).toBeUndefined();
  });
});

describe('AgentClient over a unix socket', () => {
  it('matches answers to requests by id in any order, and maps exit codes and guest errors like the local host', async () => {
    const sock = join(mkdtempSync(join(tmpdir(), 'vxc-agent-')), 'a.sock');
    const server = createServer((c) => {
      const d = new LineDecoder();
      const held: string[] = [];
      c.on('data', (b: Buffer) => {
        for (const l of d.push(b)) {
          const r = JSON.parse(l) as { id: number; op: string; argv?: string[]; path?: string };
          if (r.op === 'run') {
            const code = r.argv?.[0] === 'false' ? 1 : 0;
            held.push(JSON.stringify({ id: r.id, ok: true, result: { stdout: `${r.argv?.join(' ')}\n`, stderr: '', exitCode: code } }));
          } else if (r.op === 'readFile') {
            held.push(JSON.stringify({ id: r.id, ok: false, error: { message: `ENOENT: no such file, open '${r.path}'`, code: 'ENOENT' } }));
          }
          // Answer in reverse order once three requests are in.
          if (held.length === 3) c.write(`${held.reverse().join('\n')}\n`);
        }
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const client = await AgentClient.connect(sock);
    const h = new GuestHost(client, 'test');
    try {
      const [a, b, c] = await Promise.allSettled([h.run(['echo', 'one']), h.run(['false'], { nothrow: true }), h.readFile('/nope')]);
      expect(a).toMatchObject({ status: 'fulfilled', value: { stdout: 'echo one\n', exitCode: 0 } });
      expect(b).toMatchObject({ status: 'fulfilled', value: { exitCode: 1 } });
      expect(c).toMatchObject({ status: 'rejected', reason: { code: 'ENOENT' } });
      client.close();
      await expect(h.run(['echo'])).rejects.toBeInstanceOf(AgentGoneError);
    } finally {
      client.close();
      server.close();
    }
  });
});
