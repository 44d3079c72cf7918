/**
 * docs/ERRORS.md documents every error code of lib/errors.ts, and nothing else: a code added to
 * one and not the other fails here. Also the error fields it documents (`syscallCode`, `cause`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { runChild } from './helpers/child.js';
import { ErrorCode, QuantumTunnelError } from '../lib/errors.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const doc = readFileSync(join(root, 'docs', 'ERRORS.md'), 'utf8');

/** The table rows of docs/ERRORS.md that document a code: `| \`ERR_QT_X\` | meaning | what to do | alert |`. */
function documentedRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\| `(ERR_QT_[A-Z0-9_]+)` \|(.*)\|$/.exec(line);
    if (!m) continue;
    expect(rows.has(m[1]!), `${m[1]} documented twice`).to.equal(false);
    rows.set(m[1]!, m[2]!.split(' | ').map((c) => c.trim()));
  }
  return rows;
}

describe('docs/ERRORS.md', () => {
  it('documents every code of lib/errors.ts, and no code that does not exist', () => {
    const codes = Object.values(ErrorCode).sort();
    const documented = [...documentedRows().keys()].sort();
    expect(documented.filter((c) => !codes.includes(c as (typeof codes)[number])), 'documented but not in lib/errors.ts').to.deep.equal([]);
    expect(codes.filter((c) => !documented.includes(c)), 'in lib/errors.ts but not documented').to.deep.equal([]);
    // Any other mention of a code in the page names a real one too.
    const mentioned = new Set(doc.match(/ERR_QT_[A-Z0-9_]+/g) ?? []);
    for (const c of mentioned) expect(codes, `docs/ERRORS.md mentions ${c}`).to.include(c);
  });

  it('says for each code what it means, what to do, and whether the peer gets an alert', () => {
    for (const [code, cells] of documentedRows()) {
      expect(cells, code).to.have.length(3);
      for (const cell of cells) expect(cell.length, `${code}: an empty cell`).to.be.greaterThan(1);
      expect(cells[2], `${code}: the alert column says yes or no`).to.match(/^(Yes|No)\b|^During a handshake: |^When it ends a tunnel: /);
    }
  });

  it('documents syscallCode and cause, as QuantumTunnelError sets them', () => {
    expect(doc).to.match(/^\| `syscallCode` \| .*`err\.cause\.code`/m);
    expect(doc).to.match(/^\| `cause` \| /m);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const e = new QuantumTunnelError('cannot connect to 127.0.0.1:1', ErrorCode.CONNECTION_FAILED, { cause: refused });
    expect(e.syscallCode).to.equal('ECONNREFUSED');
    expect(e.syscallCode).to.equal((e.cause as { code: string }).code);
    // A cause that is not an operating-system error gives no syscallCode.
    const wrapped = new QuantumTunnelError('rekey failed', ErrorCode.REKEY_FAILED, { cause: new QuantumTunnelError('bad key', ErrorCode.INVALID_KEY) });
    expect(wrapped.syscallCode).to.equal(undefined);
  });

  it('docs/ARCHITECTURE.md points there instead of keeping its own list', () => {
    const architecture = readFileSync(join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');
    const section = /^## Errors\n([\s\S]*?)^## /m.exec(architecture)![1]!;
    expect(section).to.include('docs/ERRORS.md');
    expect(section).not.to.match(/^\| `ERR_QT_/m);
  });

  it('two copies of the package in one process recognise each other\'s errors, native ones included', () => {
    // Two installed copies (two versions in node_modules), or one loaded twice: two classes, one
    // addon (loaded once per process), which throws the class of the copy that loaded last. Each
    // copy must still recognise every error. (The ESM entry is the CommonJS build re-exported, so
    // import + require is one copy: test/package.test.ts. Needs dist/: npm test builds it.)
    const dist = JSON.stringify(join(root, 'dist'));
    const r = runChild(`
      const { createRequire } = await import('node:module');
      const { join } = await import('node:path');
      const req = createRequire(join(${dist}, 'index.cjs'));
      const first = req('./index.cjs');
      for (const key of Object.keys(req.cache)) if (key.startsWith(${dist})) delete req.cache[key];
      const second = req('./index.cjs');
      if (first.QuantumTunnelError === second.QuantumTunnelError) throw new Error('one class: not two copies');
      const caught = (f) => { try { f(); } catch (e) { return e; } };
      const fromNative = caught(() => first.crypto.mlkem1024.decapsulate(first.crypto.mlkem1024.generateKeyPair().privateKey, new Uint8Array(3)));
      const fromSecond = new second.QuantumTunnelError('x', 'ERR_QT_INVALID_ARGUMENT');
      return {
        nativeCode: fromNative.code,
        firstSeesNative: fromNative instanceof first.QuantumTunnelError,
        secondSeesNative: fromNative instanceof second.QuantumTunnelError,
        firstSeesSecond: fromSecond instanceof first.QuantumTunnelError,
        others: new Error('x') instanceof first.QuantumTunnelError || ({ code: 'ERR_QT_X' }) instanceof second.QuantumTunnelError,
      };
    `);
    expect(r.json, r.stderr).to.deep.equal({
      ok: true,
      value: { nativeCode: ErrorCode.INVALID_ARGUMENT, firstSeesNative: true, secondSeesNative: true, firstSeesSecond: true, others: false },
    });
  });
});
