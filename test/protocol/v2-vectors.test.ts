/**
 * Protocol v2 test vectors (Appendix B of docs/PROTOCOL.md): every value of
 * test/fixtures/v2-vectors.json reproduced by the specification step by step (over the library's
 * primitives and over the node:crypto / @noble reference), every wire byte by the real state
 * machines driven with the fixture's inputs, and docs/PROTOCOL-V2-VECTORS.md checked to be the
 * rendering of the fixture. Regenerate both files with `npm run vectors:v2`.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  chachaAvailable,
  deriveDocument,
  describe as describeField,
  differences,
  FIELD_DESCRIPTIONS,
  leaves,
  libraryPrimitives,
  referencePrimitives,
  runStateMachines,
} from '../helpers/v2Vectors.js';
import { renderV2Vectors } from '../helpers/v2VectorsRender.js';

const FIXTURE = new URL('../fixtures/v2-vectors.json', import.meta.url);
const DOC = new URL('../../docs/PROTOCOL-V2-VECTORS.md', import.meta.url);

const fixtureText = readFileSync(FIXTURE, 'utf8');
const fixture = JSON.parse(fixtureText) as Record<string, unknown>;
const chacha = chachaAvailable();

/** The fixture, less the ChaCha20-Poly1305 case when this build cannot run it. */
function expected(): Record<string, unknown> {
  if (chacha) return fixture;
  const cases = (fixture.cases as Array<{ suiteName: string }>).filter((c) => c.suiteName !== 'chacha20-poly1305');
  return { ...fixture, cases };
}

function noDifferences(diffs: string[]): void {
  expect(diffs.length, `${diffs.length} differences:\n${diffs.slice(0, 25).join('\n')}`).to.equal(0);
}

describe('protocol v2: test vectors (docs/PROTOCOL-V2-VECTORS.md)', () => {
  it('has every case: each group with no authentication, an external PSK and resumption, and ChaCha20-Poly1305', () => {
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
    ]);
  });

  it('the specification step by step over the library\'s primitives reproduces every value, and the file byte for byte', () => {
    const doc = deriveDocument(libraryPrimitives(), { chacha });
    noDifferences(differences(expected(), doc, true));
    if (chacha) expect(`${JSON.stringify(doc, null, 2)}\n` === fixtureText, 'the fixture is not the generator\'s output (npm run vectors:v2)').to.equal(true);
  });

  it('the same steps over an independent reference (node:crypto, @noble/post-quantum) reproduce every value', () => {
    noDifferences(differences(expected(), deriveDocument(referencePrimitives(), { chacha }), true));
  });

  it('the state machines, driven with the fixture\'s inputs, produce every message and record on the wire, the secrets, the tickets and the exporter outputs', async () => {
    const want = expected();
    const machines = await runStateMachines(want);
    noDifferences(differences(want, machines, false));
    // Every byte on the wire came from the state machines, not only from the derivation.
    const produced = new Set(leaves(machines).map(([p]) => p));
    const wire = leaves(want).filter(([p]) => /\.(frame|record|newSessionTicket|ticket|output|psk)$/.test(p) && p.startsWith('cases[') && !p.includes('.inputs.'));
    expect(wire.length).to.be.at.least(28 * (want.cases as unknown[]).length);
    expect(wire.filter(([p]) => !produced.has(p)).map(([p]) => p)).to.deep.equal([]);
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
