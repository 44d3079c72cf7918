import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICES } from '../../lib/fips/index.js';
import { addonPath } from '../../lib/native.js';
import { runChild } from '../helpers/child.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** 'fips' when the addon under test was built with the FIPS profile. */
const profile = () => runChild(`return qt.fips.status().profile;`, { QUANTUM_TUNNEL_FIPS: '', QUANTUM_TUNNEL_FIPS_DIR: '/nonexistent' }).json?.value;

/**
 * FIPS mode end to end, each case in its own process. The FIPS configuration is generated for this
 * machine into a temporary directory by fips/install.sh (fipsinstall), as a deployment would.
 */
describe('FIPS mode', function () {
  this.timeout(120_000);
  let configDir: string;
  let env: NodeJS.ProcessEnv;

  before(function () {
    try {
      execFileSync('test', ['-f', `${dirname(addonPath)}/ossl-modules/fips.so`]);
    } catch {
      this.skip(); // the addon was built without the FIPS module beside it (cmake-js called directly)
    }
    configDir = mkdtempSync(join(tmpdir(), 'qt-fips-'));
    execFileSync('bash', [join(root, 'fips/install.sh'), dirname(addonPath)], { env: { ...process.env, QUANTUM_TUNNEL_FIPS_DIR: configDir }, stdio: 'pipe' });
    env = { QUANTUM_TUNNEL_FIPS_DIR: configDir, QUANTUM_TUNNEL_FIPS: '' };
  });
  after(() => configDir && rmSync(configDir, { recursive: true, force: true }));

  it('starts: provider POST, integrity, every KAT passed; FIPS provider and base only; indicator per service', () => {
    const r = runChild(`const s = qt.fips.enable(); return { s, info: qt.crypto.info() };`, env);
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    const { s, info } = r.json.value;
    expect(s.mode).to.equal('fips');
    expect(s.provider.name).to.equal('OpenSSL FIPS Provider');
    expect(s.provider.version).to.match(/^3\.5\./);
    expect(s.integrity.verified).to.equal(true);
    expect(s.selfTests.passed).to.equal(true);
    expect(s.selfTests.results.map((x: { name: string }) => x.name)).to.deep.equal([
      'provider', 'ML-KEM-1024 keygen', 'ML-KEM-1024 encapsulate/decapsulate', 'SHAKE-256 KDF', 'SHA3-256', 'AES-256-GCM', 'DRBG',
    ]);
    expect(s.errorState.failed).to.equal(false);
    const approval = Object.fromEntries(s.services.map((x: { service: string; approved: boolean }) => [x.service, x.approved]));
    expect(approval).to.include({ 'ML-KEM-1024': true, X25519: false, 'SHAKE-256': true, 'SHA3-256': true, 'AES-256-GCM': true, 'ChaCha20-Poly1305': false });
    expect(info.providers.map((p: { name: string }) => p.name)).to.deep.equal(['OpenSSL FIPS Provider', 'OpenSSL Base Provider']);
    expect(info.chacha20.available).to.equal(false);
  });

  it('runs a v2 tunnel with P-384 + ML-KEM-1024 and AES-256-GCM only: approved services only, pairwise tests on its key pairs', () => {
    const r = runChild(`
      qt.fips.enable();
      const l = qt.listen({ port: 0 }); await l.ready; l.on('tunnel', (t) => t.pipe(t));
      const t = await qt.dial({ host: '127.0.0.1', port: l.address().port });
      t.write('in fips mode');
      const echo = await new Promise((r) => t.once('data', (d) => r(d.toString())));
      await t.rekey();
      const info = t.info();
      let chacha = null; try { qt.crypto.createAead(2, qt.crypto.randomSecret(32)); } catch (e) { chacha = e.code; }
      let chachaOffer = null; try { await qt.dial('127.0.0.1:1', { ciphers: ['chacha20-poly1305'] }); } catch (e) { chachaOffer = e.code; }
      await t.close(); await l.close({ tunnels: true });
      return { echo, protocol: info.protocol, group: info.group, suite: info.suite, fips: info.fips, approved: info.approvedServicesOnly, rekeys: info.rekeys, chacha, chachaOffer, pct: qt.fips.status().conditionalTests };`, env);
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.include({
      echo: 'in fips mode', protocol: 'v2', group: 'P-384 + ML-KEM-1024', suite: 'AES-256-GCM', fips: true, approved: true, rekeys: 1,
      chacha: 'ERR_QT_UNSUPPORTED_ALGORITHM', chachaOffer: 'ERR_QT_INVALID_ARGUMENT',
    });
    expect(r.json.value.pct.pairwiseTests).to.be.greaterThanOrEqual(2); // the client's shares: handshake and kem KeyUpdate (P-384's run natively)
    expect(r.json.value.pct.failures).to.equal(0);
  });

  it('an X25519 group or legacy v1 runs in (non-strict) FIPS mode and says it used a non-approved service', () => {
    const r = runChild(`
      qt.fips.enable();
      const out = {};
      for (const [name, opts] of [['x25519', { groups: ['x25519-mlkem1024'] }], ['v1', { legacyV1: true }]]) {
        const l = qt.listen({ port: 0, legacyV1: opts.legacyV1 }); await l.ready; l.on('tunnel', (t) => t.pipe(t));
        const t = await qt.dial({ host: '127.0.0.1', port: l.address().port }, opts);
        out[name] = { protocol: t.info().protocol, approved: t.info().approvedServicesOnly };
        await t.close(); await l.close({ tunnels: true });
      }
      return out;`, env);
    expect(r.json?.value, r.stdout + r.stderr).to.deep.equal({ x25519: { protocol: 'v2', approved: false }, v1: { protocol: 'v1', approved: false } });
  });

  it('strict mode works end to end with v2 (P-384 + ML-KEM-1024), and refuses X25519 groups and legacy v1 with clear errors', () => {
    const r = runChild(`
      qt.fips.enable({ strict: true });
      const l = qt.listen({ port: 0, legacyV1: true }); await l.ready; l.on('tunnel', (t) => t.pipe(t));
      const port = l.address().port;
      const t = await qt.dial({ host: '127.0.0.1', port });
      t.write('strict');
      const echo = await new Promise((r) => t.once('data', (d) => r(d.toString())));
      await t.rekey({ mode: 'kem' });
      const info = t.info();
      await t.close();
      let groupOption = null; try { await qt.dial({ host: '127.0.0.1', port }, { groups: ['x25519-mlkem1024'] }); } catch (e) { groupOption = e.code; }
      let v1 = null, v1Message = ''; try { await qt.dial({ host: '127.0.0.1', port }, { legacyV1: true }); } catch (e) { v1 = e.code; v1Message = e.message; }
      await l.close({ tunnels: true });
      return { echo, group: info.group, approved: info.approvedServicesOnly, groupOption, v1, v1Message };`, env);
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.include({ echo: 'strict', group: 'P-384 + ML-KEM-1024', approved: true, groupOption: 'ERR_QT_INVALID_ARGUMENT', v1: 'ERR_QT_FIPS_NOT_APPROVED' });
    expect(r.json.value.v1Message).to.include('X25519');
  });

  it('the FIPS build profile compiles ChaCha20-Poly1305 out; a standard build keeps it', () => {
    const r = runChild(`return { profile: qt.fips.status().profile, compiled: qt.crypto.info().chacha20.compiled };`, env);
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value.compiled).to.equal(r.json.value.profile !== 'fips');
  });

  it('the `fips` option of listen() and dial() switches the process to FIPS mode', () => {
    const r = runChild(`
      const l = qt.listen({ port: 0, fips: true }); await l.ready; l.on('tunnel', (t) => t.pipe(t));
      const t = await qt.dial({ host: '127.0.0.1', port: l.address().port }, { fips: true });
      const info = t.info(); await t.close(); await l.close({ tunnels: true });
      return { mode: qt.fips.status().mode, fips: info.fips };`, env);
    expect(r.json?.value, r.stdout + r.stderr).to.deep.equal({ mode: 'fips', fips: true });
  });

  it('QUANTUM_TUNNEL_FIPS=1 enables it when the package loads', () => {
    const r = runChild(`return qt.fips.status().mode;`, { ...env, QUANTUM_TUNNEL_FIPS: '1' });
    expect(r.json).to.deep.equal({ ok: true, value: 'fips' });
  });

  it('an explicit enable() without a FIPS configuration on this machine refuses, and changes nothing', function () {
    if (profile() === 'fips') this.skip(); // a FIPS build has no standard mode to stay in: see the next test
    const r = runChild(`try { qt.fips.enable({ configDir: '/nonexistent' }); } catch (e) { return { code: e.code, state: qt.fips.status().errorState.failed, works: qt.crypto.randomBytes(4).length }; }`, env);
    expect(r.json?.value).to.deep.equal({ code: 'ERR_QT_FIPS_UNAVAILABLE', state: false, works: 4 });
  });

  it('FIPS mode requested at load without a configuration fails closed: error state, startupError, no standard fallback', () => {
    const r = runChild(`let op = 'ran'; try { qt.crypto.randomBytes(4); } catch (e) { op = e.code; } const s = qt.fips.status(); return { startup: s.startupError?.code, failed: s.errorState.failed, op };`,
      { ...env, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_DIR: '/nonexistent' });
    expect(r.json?.value).to.deep.equal({ startup: 'ERR_QT_FIPS_UNAVAILABLE', failed: true, op: 'ERR_QT_FIPS_SELFTEST_FAILED' });
  });

  // Each injected failure: FIPS mode refuses to start, and every crypto call fails afterwards.
  // Injected through the test-only environment hook, so this runs the same way in the FIPS build
  // profile (which enables FIPS mode as the package loads).
  for (const [failure, code] of [
    ['provider', 'ERR_QT_FIPS_SELFTEST_FAILED'],
    ['ML-KEM-1024 keygen', 'ERR_QT_FIPS_SELFTEST_FAILED'],
    ['ML-KEM-1024 encapsulate/decapsulate', 'ERR_QT_FIPS_SELFTEST_FAILED'],
    ['SHAKE-256 KDF', 'ERR_QT_FIPS_SELFTEST_FAILED'],
    ['SHA3-256', 'ERR_QT_FIPS_SELFTEST_FAILED'],
    ['AES-256-GCM', 'ERR_QT_FIPS_SELFTEST_FAILED'],
    ['DRBG', 'ERR_QT_FIPS_SELFTEST_FAILED'],
    ['integrity', 'ERR_QT_FIPS_INTEGRITY_FAILED'],
    ['provider-load', 'ERR_QT_FIPS_UNAVAILABLE'],
  ] as const) {
    it(`a failing "${failure}" check refuses FIPS mode and locks the module (${code})`, () => {
      const r = runChild(`
        const after = [];
        for (const op of [() => qt.crypto.randomBytes(8), () => qt.crypto.sha3_256(Buffer.alloc(1)), () => qt.crypto.mlkem1024.generateKeyPair(), () => qt.crypto.x25519.generateKeyPair()]) {
          try { op(); after.push('ran'); } catch (e) { after.push(e.code); }
        }
        const s = qt.fips.status();
        return { startup: s.startupError?.code, after, failed: s.errorState.failed, mode: s.mode };`,
      { ...env, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_TEST_INJECT: failure });
      expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
      expect(r.json.value.startup).to.equal(code);
      expect(r.json.value.mode).to.equal('standard');
      expect(r.json.value.failed).to.equal(true);
      expect(r.json.value.after).to.deep.equal(Array(4).fill('ERR_QT_FIPS_SELFTEST_FAILED'));
    });
  }

  it('a failed pairwise consistency test during a handshake locks the module', () => {
    const r = runChild(`
      qt.fips.enable();
      qt.fips.testing.injectFailure('pairwise');
      let code = null; try { qt.crypto.chkem.generateKeyPair(); } catch (e) { code = e.code; }
      let later = null; try { qt.crypto.randomBytes(4); } catch (e) { later = e.code; }
      return { code, later, failures: qt.fips.status().conditionalTests.failures };`, env);
    expect(r.json?.value).to.deep.equal({ code: 'ERR_QT_FIPS_SELFTEST_FAILED', later: 'ERR_QT_FIPS_SELFTEST_FAILED', failures: 1 });
  });

  it('the continuous RNG test catches a repeated DRBG block and locks the module', () => {
    const r = runChild(`
      qt.fips.enable();
      qt.crypto.randomBytes(1000);
      qt.fips.testing.repeatNextRandomBlock();
      let code = null; try { qt.crypto.randomBytes(1000); qt.crypto.randomBytes(1000); } catch (e) { code = e.code; }
      return { code, state: qt.fips.status().errorState.failed };`, env);
    expect(r.json?.value).to.deep.equal({ code: 'ERR_QT_FIPS_SELFTEST_FAILED', state: true });
  });

  it('the failure hooks work only when QUANTUM_TUNNEL_TESTING=1 was set as the package loaded, not set later', () => {
    const production = { ...env, QUANTUM_TUNNEL_TESTING: '' }; // (runChild adds its env to this process's)
    const r = runChild(`
      process.env.QUANTUM_TUNNEL_TESTING = '1'; // too late: read as the package loaded
      const codes = [];
      for (const hook of [() => qt.fips.testing.injectFailure('pairwise'), () => qt.fips.testing.repeatNextRandomBlock()]) {
        try { hook(); codes.push(null); } catch (e) { codes.push(e.code); }
      }
      qt.crypto.randomBytes(1000); qt.crypto.randomBytes(1000);
      return { codes, failed: qt.fips.status().errorState.failed };`, production);
    expect(r.json?.value, r.stdout + r.stderr).to.deep.equal({ codes: ['ERR_QT_INVALID_STATE', 'ERR_QT_INVALID_STATE'], failed: false });
  });

  it('refuses to start when one byte of the addon changed (HMAC-SHA256 integrity check)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qt-addon-'));
    try {
      cpSync(dirname(addonPath), dir, { recursive: true });
      const copy = join(dir, 'quantum_tunnel.node');
      const bytes = readFileSync(copy);
      const at = bytes.indexOf(Buffer.from('GCC: ('));
      expect(at).to.be.greaterThan(0); // a byte of the .comment section: the addon still loads
      bytes[at + 1] = bytes[at + 1]! ^ 0x01;
      writeFileSync(copy, bytes);
      const r = runChild(`const s = qt.fips.status(); return { code: s.startupError?.code, integrity: s.integrity };`, { ...env, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_ADDON: copy });
      expect(r.json?.value?.code, r.stdout + r.stderr).to.equal('ERR_QT_FIPS_INTEGRITY_FAILED');
      expect(r.json.value.integrity.verified).to.equal(false);
      // The unmodified copy passes: the check is about the bytes, not the path.
      copyFileSync(addonPath, copy);
      const ok = runChild(`return qt.fips.enable().integrity.verified;`, { ...env, QUANTUM_TUNNEL_ADDON: copy });
      expect(ok.json?.value).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on an integrity record that is valid JSON but not a record (null, a number, an array)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qt-addon-'));
    try {
      cpSync(dirname(addonPath), dir, { recursive: true });
      const copy = join(dir, 'quantum_tunnel.node');
      for (const record of ['null', '42', '[]']) {
        writeFileSync(`${copy}.hmac`, record);
        const r = runChild(`const s = qt.fips.status(); return { code: s.startupError?.code, integrity: s.integrity };`, { ...env, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_ADDON: copy });
        expect(r.json?.value?.code, `${record}: ${r.stdout}${r.stderr}`).to.equal('ERR_QT_FIPS_INTEGRITY_FAILED');
        expect(r.json.value.integrity, record).to.deep.include({ verified: false, reason: 'the integrity record is malformed' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start when the module configuration (module MAC) was altered', () => {
    const bad = mkdtempSync(join(tmpdir(), 'qt-fipscfg-'));
    try {
      const module = readFileSync(join(configDir, 'fipsmodule.cnf'), 'utf8').replace(/module-mac = ([0-9A-F:]{2})/, (_m, h) => `module-mac = ${h === '00' ? '01' : '00'}`);
      writeFileSync(join(bad, 'fipsmodule.cnf'), module);
      writeFileSync(join(bad, 'openssl-fips.cnf'), readFileSync(join(configDir, 'openssl-fips.cnf'), 'utf8').replace(join(configDir, 'fipsmodule.cnf'), join(bad, 'fipsmodule.cnf')));
      const r = runChild(`return qt.fips.status().startupError;`, { ...env, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_DIR: bad });
      expect(r.json?.value?.code, r.stdout + r.stderr).to.equal('ERR_QT_FIPS_UNAVAILABLE');
      expect(r.json.value.message).to.include('FIPS provider could not be loaded');
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});

describe('fips.status().services and docs/FIPS.md', () => {
  it('list the same services with the same approval (the table is what deployers read)', () => {
    const doc = readFileSync(new URL('../../docs/FIPS.md', import.meta.url), 'utf8');
    const table = doc.slice(doc.indexOf('## Approved and non-approved services'));
    const rows = new Map<string, string>();
    for (const line of table.split('\n').slice(4)) {
      if (!line.startsWith('| ')) break;
      const cells = line.split('|').map((c) => c.trim());
      rows.set(cells[1]!, cells[3]!);
    }
    expect([...rows.keys()].sort()).to.deep.equal(SERVICES.map((s) => s.service).sort());
    for (const s of SERVICES) {
      const approved = rows.get(s.service)!;
      expect(approved.startsWith('yes'), `${s.service}: "${approved}" in docs/FIPS.md`).to.equal(s.approved);
    }
  });
});
