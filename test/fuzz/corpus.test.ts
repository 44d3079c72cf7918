/**
 * Replays every seed (fuzz/corpus/<target>/) and every past finding (fuzz/regressions/<target>/)
 * through the fuzz targets (fuzz/targets.ts): each may only be refused with a QuantumTunnelError.
 * Also checks that the targets do refuse what they should, so a target that stopped reaching its
 * parser would fail here rather than fuzz nothing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ErrorCode, qtError } from '../../lib/errors.js';
import { refusesTypedSync, TARGETS, type TargetName } from '../../fuzz/targets.js';

const FUZZ = fileURLToPath(new URL('../../fuzz/', import.meta.url));

function inputs(kind: 'corpus' | 'regressions', target: string): Array<[string, Buffer]> {
  const dir = join(FUZZ, kind, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => [`${kind}/${target}/${f}`, readFileSync(join(dir, f))]);
}

describe('fuzz targets: seeds and past findings', () => {
  for (const target of Object.keys(TARGETS) as TargetName[]) {
    it(`${target}: every seed and regression input is handled or refused with a QuantumTunnelError`, async () => {
      const all = [...inputs('corpus', target), ...inputs('regressions', target)];
      expect(all.length, `seeds for ${target}`).to.be.greaterThan(0);
      for (const [name, bytes] of all) {
        try {
          await TARGETS[target](bytes);
        } catch (e) {
          throw new Error(`${name}: ${(e as Error).stack}`);
        }
      }
    });
  }

  it('a typed refusal passes, any other exception is a finding', () => {
    expect(() => refusesTypedSync(() => { throw qtError(ErrorCode.MALFORMED_MESSAGE, 'refused'); })).not.to.throw();
    expect(() => refusesTypedSync(() => { throw new RangeError('out of bounds'); })).to.throw(RangeError);
    // Truncated input reaches each decoder and is refused with a typed error (no throw here).
    for (let i = 0; i < 13; i++) TARGETS.messages(Buffer.from([i, 0xff]));
    TARGETS.identities(Buffer.from([3, 0x30, 0x82]));
  });
});
