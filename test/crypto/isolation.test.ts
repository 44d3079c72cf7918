import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { crypto } from '../../lib/index.js';
import { addonPath } from '../../lib/native.js';

describe('the addon uses its own OpenSSL 3.5, not Node\'s', () => {
  it('reports its own OpenSSL 3.5.x version, whatever Node bundles', () => {
    const info = crypto.info();
    expect(info.openssl).to.match(/^OpenSSL 3\.5\.\d+ /);
    // The whole suite also runs in FIPS mode (CI's FIPS job), where the providers differ.
    expect(info.providers.map((p) => p.name)).to.deep.equal(
      info.mode === 'fips' ? ['OpenSSL FIPS Provider', 'OpenSSL Base Provider'] : ['OpenSSL Default Provider'],
    );
    expect(info.providers[0]!.version).to.match(/^3\.5\.\d+$/);
    // On Node 20 (OpenSSL 3.0, no ML-KEM) this is the proof that the addon is not calling Node's copy.
    if (process.versions.openssl.startsWith('3.0')) expect(info.openssl).to.not.include(process.versions.openssl);
  });

  it('runs ML-KEM-1024 on every Node version, including Node 20 whose OpenSSL has none', () => {
    const kp = crypto.mlkem1024.generateKeyPair();
    const enc = crypto.mlkem1024.encapsulate(kp.publicKey);
    expect(crypto.timingSafeEqual(crypto.mlkem1024.decapsulate(kp.privateKey, enc.ciphertext), enc.sharedSecret)).to.equal(true);
  });

  it('exports only the two Node-API entry points: every OpenSSL symbol is hidden', () => {
    const out = execFileSync('nm', ['-D', '--defined-only', addonPath], { encoding: 'utf8' });
    const names = out.trim().split('\n').map((l) => l.trim().split(/\s+/).pop());
    expect(names.sort()).to.deep.equal(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
  });

  it('does not depend on libcrypto.so or libssl.so at run time (OpenSSL is linked statically)', () => {
    const out = execFileSync('readelf', ['-d', addonPath], { encoding: 'utf8' });
    expect(out).to.not.match(/libcrypto|libssl/);
  });

  it('ignores OPENSSL_CONF and OPENSSL_MODULES in the environment', () => {
    const script = `
      const { crypto } = await import(${JSON.stringify(new URL('../../lib/index.ts', import.meta.url).href)});
      const kp = crypto.mlkem1024.generateKeyPair();
      console.log(JSON.stringify({ ok: kp.publicKey.length, providers: crypto.info().providers.map((p) => p.name) }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, OPENSSL_CONF: '/nonexistent/openssl.cnf', OPENSSL_MODULES: '/nonexistent' },
    });
    const expected = crypto.info().mode === 'fips' ? ['OpenSSL FIPS Provider', 'OpenSSL Base Provider'] : ['OpenSSL Default Provider'];
    expect(JSON.parse(out.trim().split('\n').pop()!)).to.deep.equal({ ok: 1568, providers: expected });
  });
});
