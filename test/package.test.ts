import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('the published bundle (tsup: ESM + CJS + .d.ts)', function () {
  before(function () {
    if (!existsSync(`${root}dist/index.js`)) this.skip(); // `npm test` builds it first
  });

  it('loads as CommonJS and as ESM, both on the addon\'s own OpenSSL', () => {
    const cjs = execFileSync(process.execPath, ['-e', "const q = require('./dist/index.cjs'); console.log(q.crypto.info().openssl, typeof q.QuantumTunnelError)"], { cwd: root, encoding: 'utf8' });
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', "import { crypto, QuantumTunnelError } from './dist/index.js'; console.log(crypto.info().openssl, typeof QuantumTunnelError)"], { cwd: root, encoding: 'utf8' });
    expect(cjs.trim()).to.match(/^OpenSSL 3\.5\.\d+ .* function$/);
    expect(esm.trim()).to.equal(cjs.trim());
  });

  it('ships type declarations for both formats', () => {
    expect(existsSync(`${root}dist/index.d.ts`)).to.equal(true);
    expect(existsSync(`${root}dist/index.d.cts`)).to.equal(true);
  });

  it('errors from the CJS bundle are instances of its QuantumTunnelError', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const q = require('./dist/index.cjs');
      try { q.crypto.createAead(1, q.crypto.randomSecret(16)); } catch (e) { console.log(e instanceof q.QuantumTunnelError, e.code); }`],
    { cwd: root, encoding: 'utf8' });
    expect(out.trim()).to.equal('true ERR_QT_INVALID_KEY');
  });
});
