/**
 * Protocol v2 test vectors (Appendix B of docs/PROTOCOL.md): every value of
 * test/fixtures/v2-vectors.json reproduced by the specification step by step (over the library's
 * primitives and over the node:crypto / @noble reference), every wire byte by the real state
 * machines driven with the fixture's inputs, and docs/PROTOCOL-V2-VECTORS.md checked to be the
 * rendering of the fixture. Regenerate both files with `npm run vectors:v2`.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
// The package's entry point: QUANTUM_TUNNEL_FIPS=1 turns FIPS mode on as it loads, also when this
// file runs alone (then the ChaCha20-Poly1305 case, and in strict mode the X25519 groups, drop out).
import '../../lib/index.js';
import {
  chachaAvailable,
  deriveDocument,
  describe as describeField,
  differences,
  FIELD_DESCRIPTIONS,
  groupPermitted,
  leaves,
  libraryPrimitives,
  referencePrimitives,
  runStateMachines,
} from '../helpers/v2Vectors.js';
import { renderV2Vectors } from '../helpers/v2VectorsRender.js';

const FIXTURE = new URL('../fixtures/v2-vectors.json', import.meta.url);
const DOC = new URL('../../docs/PROTOCOL-V2-VECTORS.md', import.meta.url);
const CERTIFICATES = new URL('../fixtures/v2-vector-certificates.json', import.meta.url);

const fixtureText = readFileSync(FIXTURE, 'utf8');
const fixture = JSON.parse(fixtureText) as Record<string, unknown>;
const chacha = chachaAvailable();
/** Every case can run here: not so without ChaCha20-Poly1305 (FIPS mode) or the X25519 groups (strict FIPS mode). */
const complete = chacha && (fixture.cases as Array<{ group: string }>).every((c) => groupPermitted(parseInt(c.group, 16)));
const options = { chacha, group: groupPermitted };

/** The fixture, less the cases this build or mode cannot run: ChaCha20-Poly1305, groups it does not permit. */
function expected(): Record<string, unknown> {
  if (complete) return fixture;
  const cases = (fixture.cases as Array<{ suiteName: string; group: string }>).filter((c) => (chacha || c.suiteName !== 'chacha20-poly1305') && groupPermitted(parseInt(c.group, 16)));
  return { ...fixture, cases };
}

function noDifferences(diffs: string[]): void {
  expect(diffs.length, `${diffs.length} differences:\n${diffs.slice(0, 25).join('\n')}`).to.equal(0);
}

describe('protocol v2: test vectors (docs/PROTOCOL-V2-VECTORS.md)', () => {
  it('has every case: each group with no authentication, an external PSK and resumption, ChaCha20-Poly1305, each group with pinned keys (server key; both keys), and the ML-KEM-1024 groups with certificates (server; both ways)', () => {
    const names = (fixture.cases as Array<{ name: string }>).map((c) => c.name);
    expect(names).to.deep.equal([
      'x25519-mlkem1024/none/aes-256-gcm',
      'x25519-mlkem1024/psk/aes-256-gcm',
      'x25519-mlkem1024/resumption/aes-256-gcm',
      'p384-mlkem1024/none/aes-256-gcm',
      'p384-mlkem1024/psk/aes-256-gcm',
      'p384-mlkem1024/resumption/aes-256-gcm',
      'x25519-mlkem768/none/aes-256-gcm',
      'x25519-mlkem768/psk/aes-256-gcm',
      'x25519-mlkem768/resumption/aes-256-gcm',
      'x25519-mlkem1024/none/chacha20-poly1305',
      'x25519-mlkem1024/key/aes-256-gcm',
      'x25519-mlkem1024/key-mutual/aes-256-gcm',
      'p384-mlkem1024/key/aes-256-gcm',
      'p384-mlkem1024/key-mutual/aes-256-gcm',
      'x25519-mlkem768/key/aes-256-gcm',
      'x25519-mlkem768/key-mutual/aes-256-gcm',
      'x25519-mlkem1024/certificate/aes-256-gcm',
      'x25519-mlkem1024/certificate-mutual/aes-256-gcm',
      'p384-mlkem1024/certificate/aes-256-gcm',
      'p384-mlkem1024/certificate-mutual/aes-256-gcm',
    ]);
  });

  it('the specification step by step over the library\'s primitives reproduces every value, and the file byte for byte', () => {
    const doc = deriveDocument(libraryPrimitives(), options);
    noDifferences(differences(expected(), doc, true));
    if (complete) expect(`${JSON.stringify(doc, null, 2)}\n` === fixtureText, 'the fixture is not the generator\'s output (npm run vectors:v2)').to.equal(true);
  });

  it('the same steps over an independent reference (node:crypto, @noble/post-quantum) reproduce every value', () => {
    noDifferences(differences(expected(), deriveDocument(referencePrimitives(), options), true));
  });

  it('the state machines, driven with the fixture\'s inputs, produce every message and record on the wire, the secrets, the tickets and the exporter outputs', async () => {
    const want = expected();
    const machines = await runStateMachines(want);
    noDifferences(differences(want, machines, false));
    // Every byte on the wire came from the state machines, not only from the derivation.
    const produced = new Set(leaves(machines).map(([p]) => p));
    const wire = leaves(want).filter(([p]) => /\.(frame|record|newSessionTicket|ticket|output|psk|fingerprint|publicKeyText)$/.test(p) && p.startsWith('cases[') && !p.includes('.inputs.'));
    // Per case: 2 hellos, 3 handshake records, the session's records and 6 exporter outputs; with a
    // ticket (not in the pinned-key and certificate modes, §13.5, §14.4) its record and 3 ticket
    // values; with pinned keys the fingerprint and text form of each long-term key; with
    // certificates 2 more handshake records (Certificate, CertificateVerify) for each side that
    // proves one, and the CertificateRequest record in certificate-mutual.
    (want.cases as Array<{ auth: string }>).forEach((c, i) => {
      const expectedCount =
        { key: 2 + 3 + 13 + 6 + 2, 'key-mutual': 2 + 3 + 13 + 6 + 4, certificate: 2 + 3 + 2 + 13 + 6, 'certificate-mutual': 2 + 3 + 5 + 13 + 6 }[c.auth] ?? 2 + 3 + 14 + 6 + 3;
      expect(wire.filter(([p]) => p.startsWith(`cases[${i}].`)).length, `wire values of case ${i}`).to.equal(expectedCount);
    });
    expect(wire.filter(([p]) => !produced.has(p)).map(([p]) => p)).to.deep.equal([]);
    // The certificate cases' ends reported their peers' certificates by these fingerprints.
    const certificates = (want.global as { certificates: Record<string, { fingerprint: string }> }).certificates;
    const auths = (want.cases as Array<{ auth: string }>).map((c) => c.auth);
    expect(machines.global).to.deep.equal({
      certificates: {
        server: { fingerprint: certificates.server!.fingerprint },
        ...(auths.includes('certificate-mutual') ? { client: { fingerprint: certificates.client!.fingerprint } } : {}),
      },
    });
  });

  it('the certificate cases use the certificates of test/fixtures/v2-vector-certificates.json, which are valid now', () => {
    const kept = JSON.parse(readFileSync(CERTIFICATES, 'utf8')) as { certificates: Record<string, { der: string; pem: string }> };
    const published = (fixture.global as { certificates: Record<string, { der: string; pem: string; notBefore: string; notAfter: string }> }).certificates;
    for (const role of ['ca', 'server', 'client']) {
      expect(published[role]!.der, role).to.equal(kept.certificates[role]!.der);
      expect(published[role]!.pem, role).to.equal(kept.certificates[role]!.pem);
      // The handshakes verify the chains at the current time (their certificate policies take no time).
      const now = new Date().toISOString();
      expect(published[role]!.notBefore <= now && now <= published[role]!.notAfter, `${role} certificate valid now`).to.equal(true);
    }
  });

  it('describes every field, and every description is used', () => {
    const paths = leaves({ ...fixture, $comment: undefined }).map(([p]) => p).filter((p) => !p.startsWith('$comment'));
    expect(paths.filter((p) => describeField(p) === undefined)).to.deep.equal([]);
    const used = new Set<string>();
    for (const p of paths) {
      const generic = p.replace(/\[\d+\]/g, '[]').replace(/\.(shake|hex)$/, '');
      used.add(FIELD_DESCRIPTIONS[generic] !== undefined ? generic : `*${generic.slice(generic.lastIndexOf('.'))}`);
    }
    expect(Object.keys(FIELD_DESCRIPTIONS).filter((k) => !used.has(k))).to.deep.equal([]);
  });

  it('docs/PROTOCOL-V2-VECTORS.md is exactly what the generator renders from the fixture', () => {
    const md = readFileSync(DOC, 'utf8');
    const rendered = renderV2Vectors(fixture as Parameters<typeof renderV2Vectors>[0]);
    if (md !== rendered) {
      const a = md.split('\n');
      const b = rendered.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      expect.fail(`docs/PROTOCOL-V2-VECTORS.md differs from the rendering at line ${line + 1}:\n  ${a[line]}\n  ${b[line]}\n(npm run vectors:v2)`);
    }
  });
});
